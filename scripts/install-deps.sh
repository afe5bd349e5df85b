#!/usr/bin/env bash
# Installs the Debian 12 packages kd needs to build, test and train on the default data.
# Idempotent and quiet when everything is present. Run as root (or with sudo).
set -euo pipefail
pkgs=(build-essential cmake ccache libeigen3-dev libxsimd-dev doctest-dev nlohmann-json3-dev zlib1g-dev
      clang libomp-dev dataset-fashion-mnist)
# The aarch64 cross build, tested under qemu (scripts/test-aarch64.sh); zlib from Debian multiarch.
if [ "$(dpkg --print-architecture)" != arm64 ]; then
  pkgs+=(g++-aarch64-linux-gnu qemu-user zlib1g-dev:arm64)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
if [[ " ${missing[*]} " == *":arm64 "* ]] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $SUDO dpkg --add-architecture arm64  # its package lists come with the apt-get update below
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
