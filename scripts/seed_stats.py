#!/usr/bin/env python3
"""Means over seeds and the differences between them, as bench/RESULTS.md reports them.

Each argument is a group, NAME=ACC,ACC,... (NAME in letters, digits and _; test accuracies in %,
one per seed, in seed order), or a comparison of two groups named before it: NAME1-NAME2 by
Welch's standard error of the difference of means, NAME1~NAME2 paired by seed (the first
min(n1, n2) values of each: the mean and standard error of the per-seed differences). Standard
library only.

  python3 scripts/seed_stats.py kd=93.37,93.40,93.68 pt=93.46,93.46,93.16 kd-pt kd~pt

The sd is the sample standard deviation (n - 1); z = difference / se. With few seeds z is only a
rough guide (no t correction), and many comparisons of one data set inflate the chance of a
large |z|: RESULTS says how many looks a figure had.
"""
import math
import re
import statistics
import sys


def main(args):
    if not args or any(a in ("-h", "--help") for a in args):
        sys.exit(__doc__)
    groups, out = {}, []
    for a in args:
        if "=" in a:
            name, vals = a.split("=", 1)
            if not re.fullmatch(r"[A-Za-z0-9_]+", name):
                sys.exit("seed_stats: group name %r: letters, digits and _ only ('-' and '~' compare groups)" % name)
            try:
                groups[name] = [float(v) for v in vals.split(",") if v]
            except ValueError:
                sys.exit("seed_stats: group %r: values must be numbers separated by commas, got %r" % (name, vals))
            if len(groups[name]) < 2:
                sys.exit("seed_stats: group %r needs at least two values" % name)
            g = groups[name]
            out.append("%-20s n %2d  mean %.3f  sd %.3f  se %.3f" % (name, len(g), statistics.mean(g),
                                                                      statistics.stdev(g), statistics.stdev(g) / math.sqrt(len(g))))
            continue
        paired = "~" in a
        names = a.split("~" if paired else "-")
        if len(names) != 2 or any(n not in groups for n in names):
            sys.exit("seed_stats: %r: compare two groups defined before it, as A-B (Welch) or A~B (paired)" % a)
        x, y = groups[names[0]], groups[names[1]]
        if paired:
            n = min(len(x), len(y))
            d = [p - q for p, q in zip(x[:n], y[:n])]
            diff, se = statistics.mean(d), statistics.stdev(d) / math.sqrt(n)
            how = "paired, %d seeds" % n
        else:
            diff = statistics.mean(x) - statistics.mean(y)
            se = math.sqrt(statistics.variance(x) / len(x) + statistics.variance(y) / len(y))
            how = "Welch, %d and %d" % (len(x), len(y))
        out.append("%-20s diff %+.3f  se %.3f  z %+.2f  (%s)" % (a, diff, se, diff / se, how))
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1:])
