#!/usr/bin/env bash
# Installs the Debian 12 packages kd needs to build, test and train on the default data.
# Idempotent and quiet when everything is present. Run as root (or with sudo).
set -euo pipefail
pkgs=(build-essential cmake ccache libeigen3-dev libxsimd-dev doctest-dev nlohmann-json3-dev zlib1g-dev
      clang libomp-dev dataset-fashion-mnist)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
