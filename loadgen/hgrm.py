"""``--hgrm PREFIX``: each latency histogram as an HdrHistogram percentile
distribution (``.hgrm``), the text that HdrHistogram's ``outputPercentileDistribution``
writes and its plotters read (e.g. HdrHistogram's ``plotFiles.html``)::

           Value     Percentile TotalCount 1/(1-Percentile)

        0.512345 0.000000000000          1           1.00
        ...
        2.345678 1.000000000000      10000
    #[Mean    =     0.612345, StdDeviation   =     0.101234]
    #[Max     =     2.345678, Total count    =        10000]
    #[Buckets =           32, SubBuckets     =         2048]

The rows are HdrHistogram's percentile iteration (5 ticks per half distance to 100%,
then a last row at 100%): a row at each level L where the cumulative count first
reaches L% of the total.  Values are in milliseconds; they are loadgen's own
percentiles at those levels (the same rule as the JSON report, so both agree), printed
with 6 decimals, i.e. to the nanosecond (HdrHistogram prints as many decimals as it has
significant digits, 3, which would round loadgen's nanoseconds to microseconds).  The
mean is exact (HdrHistogram estimates it from bucket midpoints), the standard
deviation is loadgen's (from bucket midpoints), Max the exact maximum.  Buckets and
SubBuckets describe loadgen's layout, which is HdrHistogram's for 1 ns .. 2**42 ns with
3 significant digits.
"""

from __future__ import annotations

import math

from .histogram import N_BUCKETS, SUB_COUNT, Histogram

TICKS_PER_HALF_DISTANCE = 5
UNIT_NS = 1_000_000  # values are written in milliseconds


def percentile_rows(h: Histogram, ticks: int = TICKS_PER_HALF_DISTANCE) -> list[tuple[float, int]]:
    """(percentile level 0..100, total count up to that row) of HdrHistogram's
    percentile iteration over ``h``."""
    n = h.count
    rows: list[tuple[float, int]] = []
    if n == 0:
        return rows
    level = 0.0
    cum = 0
    for _i, c in h.nonzero():
        cum += c
        # a row whenever this bucket reaches the next level (several levels may fall in
        # one bucket); the iteration stops at the first row of the last bucket
        while 100.0 * cum / n >= level:
            rows.append((level, cum))
            if cum >= n:
                break
            half_distances = int(math.log(100.0 / (100.0 - level)) / math.log(2))
            level += 100.0 / (ticks * 2 ** (half_distances + 1))
        if cum >= n:
            break
    rows.append((100.0, n))
    return rows


def format_hgrm(h: Histogram, ticks: int = TICKS_PER_HALF_DISTANCE) -> str:
    """``h`` (nanoseconds) as HdrHistogram's percentile distribution text."""
    rows = percentile_rows(h, ticks)
    values = h.percentiles(level for level, _ in rows)
    out = [f"{'Value':>12} {'Percentile':>14} {'TotalCount':>10} {'1/(1-Percentile)':>14}", ""]
    for level, cum in rows:
        v = values[level] / UNIT_NS
        if level != 100.0:
            inv = 1.0 / (1.0 - level / 100.0)
            out.append(f"{v:12.6f} {level / 100.0:2.12f} {cum:10d} {inv:14.2f}")
        else:
            out.append(f"{v:12.6f} {level / 100.0:2.12f} {cum:10d}")
    mean = h.mean / UNIT_NS
    std = h.stdev() / UNIT_NS
    out.append(f"#[Mean    = {mean:12.6f}, StdDeviation   = {std:12.6f}]")
    out.append(f"#[Max     = {h.max / UNIT_NS:12.6f}, Total count    = {h.count:12d}]")
    out.append(f"#[Buckets = {N_BUCKETS:12d}, SubBuckets     = {SUB_COUNT:12d}]")
    return "\n".join(out) + "\n"


def write_hgrm(prefix: str, histograms: dict[str, Histogram]) -> list[str]:
    """Write ``PREFIX.NAME.hgrm`` for each named histogram; returns the paths."""
    paths = []
    for name, h in histograms.items():
        path = f"{prefix}.{name}.hgrm"
        with open(path, "w") as f:
            f.write(format_hgrm(h))
        paths.append(path)
    return paths
