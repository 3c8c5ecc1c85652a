"""A log-linear (HdrHistogram-style) latency histogram.

Values are integers in nanoseconds.  The layout is HdrHistogram's with a lowest
discernible value of 1 ns and 3 significant digits: 2048 sub-buckets per power of
two (the lower half shared with the previous bucket), so every value is stored with a
relative error below 1/1024 (< 0.1 %).  The range is 0 .. 2**42 - 1 ns (about 73
minutes); larger values are clamped to the top and counted in ``saturated``.

Memory is fixed (one ``array('q')`` of 33 792 counters, 270 kB) and merging two
histograms is an exact element-wise sum.  Percentiles follow HdrHistogram's rule: the
value at percentile p is the (highest equivalent value of the) smallest recorded value
whose cumulative count reaches ceil(p/100 * N); it is then clamped to the recorded
[min, max], so p0 and p100 are the exact min and max.

The hot path of the load generator never touches this class: it appends raw
integers to lists, and :meth:`Histogram.record_sorted` folds a sorted batch in one
pass that costs one bisection per distinct bucket, not one Python step per value.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from itertools import compress
from typing import Any

SUB_BITS = 10  # half the sub-buckets: 1024 -> 3 significant digits
SUB_HALF = 1 << SUB_BITS
SUB_COUNT = SUB_HALF << 1
MAX_BITS = 42  # 2**42 ns = 73.3 minutes > 1 h
HIGHEST_TRACKABLE = (1 << MAX_BITS) - 1
N_BUCKETS = MAX_BITS - SUB_BITS  # 32 buckets of 1024 (the first holds 2048)
COUNTS_LEN = (N_BUCKETS + 1) * SUB_HALF  # 33792
PRECISION = 1.0 / SUB_HALF  # worst relative error of a stored value

# Coarse (2 significant digits, 128 sub-buckets, relative error < 1/128) indices for
# the per-second series; a coarse bucket is the union of 8 fine buckets.
COARSE_SHIFT = 3


def index_of(v: int) -> int:
    """Bucket index of value ``v`` (ns), clamped to the trackable range."""
    if v < SUB_COUNT:
        return v if v > 0 else 0
    if v > HIGHEST_TRACKABLE:
        v = HIGHEST_TRACKABLE
    b = v.bit_length() - SUB_BITS - 1
    return (b << SUB_BITS) + (v >> b)


def lowest_of(i: int) -> int:
    """Smallest value that maps to bucket ``i``."""
    if i < SUB_COUNT:
        return i
    b = (i >> SUB_BITS) - 1
    return ((i & (SUB_HALF - 1)) + SUB_HALF) << b


def highest_of(i: int) -> int:
    """Largest value that maps to bucket ``i``."""
    if i < SUB_COUNT:
        return i
    b = (i >> SUB_BITS) - 1
    return (((i & (SUB_HALF - 1)) + SUB_HALF) << b) + (1 << b) - 1


def coarse_highest(ci: int) -> int:
    return highest_of((ci << COARSE_SHIFT) + (1 << COARSE_SHIFT) - 1)


def rank_for(p: float, n: int) -> int:
    """1-based rank of percentile ``p`` (0..100) among ``n`` values: ceil(p/100*n), >= 1."""
    if n <= 0:
        return 0
    r = math.ceil(Fraction(str(p)) * n / 100)
    return min(max(r, 1), n)


class Histogram:
    """Fixed-size log-linear histogram of non-negative integer values (ns)."""

    __slots__ = ("count", "counts", "max", "min", "saturated", "total")

    def __init__(self) -> None:
        self.counts = array("q", bytes(8 * COUNTS_LEN))
        self.count = 0
        self.total = 0  # exact sum of recorded values (for the mean)
        self.min = 0
        self.max = 0
        self.saturated = 0

    # -- recording -----------------------------------------------------------------
    def record(self, v: int, n: int = 1) -> None:
        v = int(v)
        if v < 0:
            v = 0
        if v > HIGHEST_TRACKABLE:
            self.saturated += n
            v = HIGHEST_TRACKABLE
        self.counts[index_of(v)] += n
        if self.count == 0 or v < self.min:
            self.min = v
        if v > self.max:
            self.max = v
        self.count += n
        self.total += v * n

    def record_many(self, values: Iterable[int]) -> None:
        vals = sorted(values)
        self.record_sorted(vals)

    def record_sorted(self, vals: Sequence[int], coarse: dict[int, int] | None = None) -> None:
        """Fold an ascending sequence of values in one pass (bisect per bucket).

        If ``coarse`` is given, the same values are also counted into it as a sparse
        coarse (2-digit) histogram {coarse index: count}."""
        n = len(vals)
        if n == 0:
            return
        lo_v = vals[0]
        hi_v = vals[-1]
        if lo_v < 0:
            vals = [0 if v < 0 else v for v in vals]
            lo_v = 0
        counts = self.counts
        pos = 0
        while pos < n:
            v = vals[pos]
            if v > HIGHEST_TRACKABLE:
                rest = n - pos
                counts[COUNTS_LEN - 1] += rest
                self.saturated += rest
                if coarse is not None:
                    ci = (COUNTS_LEN - 1) >> COARSE_SHIFT
                    coarse[ci] = coarse.get(ci, 0) + rest
                break
            # index_of(v) and highest_of(i), inline (once per distinct bucket)
            if v < SUB_COUNT:
                i = hi = v
            else:
                b = v.bit_length() - SUB_BITS - 1
                i = (b << SUB_BITS) + (v >> b)
                hi = (((v >> b) + 1) << b) - 1
            end = bisect_right(vals, hi, pos)
            counts[i] += end - pos
            if coarse is not None:
                ci = i >> COARSE_SHIFT
                coarse[ci] = coarse.get(ci, 0) + end - pos
            pos = end
        if hi_v > HIGHEST_TRACKABLE:
            hi_v = HIGHEST_TRACKABLE
        if self.count == 0 or lo_v < self.min:
            self.min = lo_v
        if hi_v > self.max:
            self.max = hi_v
        self.count += n
        if hi_v < HIGHEST_TRACKABLE:
            self.total += sum(vals)
        else:
            self.total += sum(min(v, HIGHEST_TRACKABLE) for v in vals)

    def merge(self, other: Histogram) -> None:
        """Add ``other`` into ``self`` (exact)."""
        if other.count == 0:
            return
        a = self.counts
        b = other.counts
        for i, c in enumerate(b):
            if c:
                a[i] += c
        if self.count == 0 or other.min < self.min:
            self.min = other.min
        if other.max > self.max:
            self.max = other.max
        self.count += other.count
        self.total += other.total
        self.saturated += other.saturated

    def copy(self) -> Histogram:
        h = Histogram()
        h.merge(self)
        return h

    # -- queries -------------------------------------------------------------------
    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def nonzero(self) -> Iterator[tuple[int, int]]:
        """(bucket index, count) for every non-empty bucket, ascending."""
        counts = self.counts
        for i in compress(range(COUNTS_LEN), counts):  # the scan in C
            yield i, counts[i]

    def percentiles(self, ps: Iterable[float]) -> dict[float, int]:
        """Values (ns) at each percentile in ``ps`` by HdrHistogram's rule."""
        plist = sorted(set(ps))
        out: dict[float, int] = {}
        if self.count == 0:
            return dict.fromkeys(plist, 0)
        ranks = []
        for p in plist:
            r = rank_for(p, self.count)
            if r == 1:  # the smallest and largest values are known exactly
                out[p] = self.min
            elif r == self.count:
                out[p] = self.max
            else:
                ranks.append((r, p))
        k = 0
        cum = 0
        for i, c in self.nonzero() if ranks else ():
            cum += c
            while k < len(ranks) and cum >= ranks[k][0]:
                v = highest_of(i)
                out[ranks[k][1]] = min(max(v, self.min), self.max)
                k += 1
            if k == len(ranks):
                break
        return {p: out[p] for p in plist}

    def percentile(self, p: float) -> int:
        return self.percentiles([p])[p]

    def stdev(self) -> float:
        if self.count < 2:
            return 0.0
        m = self.mean
        acc = 0.0
        for i, c in self.nonzero():
            mid = (lowest_of(i) + highest_of(i)) / 2
            acc += c * (mid - m) ** 2
        return math.sqrt(acc / self.count)

    def linear_bins(self, nbins: int = 10) -> list[tuple[float, int]]:
        """hey's response-time histogram: (upper edge ns, count) for nbins linear bins
        between min and max (each HDR bucket is attributed by its lowest value)."""
        if self.count == 0:
            return []
        lo, hi = self.min, self.max
        width = (hi - lo) / nbins if hi > lo else 1.0
        edges = [lo + width * k for k in range(nbins + 1)]
        counts = [0] * (nbins + 1)
        for i, c in self.nonzero():
            v = min(max(lowest_of(i), lo), hi)
            k = int((v - lo) / width) if hi > lo else 0
            counts[min(k, nbins)] += c
        return list(zip(edges, counts, strict=True))

    # -- serialisation -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Sparse form: ``buckets`` is a list of [lowest value ns, count]."""
        return {
            "unit": "ns",
            "significant_digits": 3,
            "count": self.count,
            "min": self.min,
            "max": self.max,
            "sum": self.total,
            "saturated": self.saturated,
            "buckets": [[lowest_of(i), c] for i, c in self.nonzero()],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Histogram:
        h = cls()
        for v, c in d["buckets"]:
            h.counts[index_of(int(v))] += int(c)
        h.count = int(d["count"])
        h.min = int(d["min"])
        h.max = int(d["max"])
        h.total = int(d["sum"])
        h.saturated = int(d.get("saturated", 0))
        return h

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return (
            self.counts == other.counts
            and self.count == other.count
            and self.min == other.min
            and self.max == other.max
            and self.total == other.total
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Histogram count={self.count} min={self.min} max={self.max}>"


def percentiles_from_coarse(coarse: dict[int, int], ps: Sequence[float]) -> list[int]:
    """Percentiles (ns, upper edge of the coarse bucket) from a sparse coarse histogram."""
    n = sum(coarse.values())
    if n == 0:
        return [0 for _ in ps]
    items = sorted(coarse.items())
    out = []
    for p in ps:
        r = rank_for(p, n)
        cum = 0
        for ci, c in items:
            cum += c
            if cum >= r:
                out.append(coarse_highest(ci))
                break
    return out
