"""Histogram: precision against an exact sort, HdrHistogram's percentile rule, exact merge."""

from __future__ import annotations

import math
import random

import pytest

from loadgen.histogram import (
    COUNTS_LEN,
    HIGHEST_TRACKABLE,
    PRECISION,
    Histogram,
    highest_of,
    index_of,
    lowest_of,
    percentiles_from_coarse,
    rank_for,
)

PS = [0, 0.1, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 99.999, 100]


def exact(values: list[int], p: float) -> int:
    s = sorted(values)
    return s[rank_for(p, len(s)) - 1]


def distributions() -> dict[str, list[int]]:
    rng = random.Random(7)
    us, ms, s = 1_000, 1_000_000, 1_000_000_000
    return {
        "uniform_us_to_s": [rng.randint(us, s) for _ in range(20_000)],
        "lognormal": [int(rng.lognormvariate(math.log(10 * ms), 1.0)) for _ in range(20_000)],
        "exponential": [int(rng.expovariate(1 / (5 * ms))) + 1 for _ in range(20_000)],
        "constant": [12_345_678] * 1000,
        "two_spikes": [1 * ms] * 9_990 + [3_600 * s] * 10,  # 1 ms and 1 h
        "bucket_edges": [v for b in range(11, 41) for v in ((1 << b) - 1, 1 << b, (1 << b) + 1)],
        "tiny": [1, 2, 3, 999, 1000, 1001, 2047, 2048, 2049],
        "single": [42_000],
        "powers_of_ten": [10**k for k in range(3, 13)] * 3,
        "all_in_one_bucket_but_max": [5 * ms] * 100_000 + [2 * s],
    }


@pytest.mark.parametrize("name", list(distributions()))
def test_percentiles_within_precision_of_exact_sort(name: str) -> None:
    values = distributions()[name]
    h = Histogram()
    h.record_many(values)
    assert h.count == len(values)
    assert h.min == min(values) and h.max == max(values)
    assert h.total == sum(values)
    got = h.percentiles(PS)
    for p in PS:
        e = exact(values, p)
        # never below the exact value, above it by less than one bucket width (< 0.1 %)
        assert e <= got[p] <= e + e * PRECISION, (name, p, e, got[p])
    assert got[100] == max(values) and got[0] == min(values)


def test_percentile_rule_is_hdrs_ceil() -> None:
    # 1..1000: p99.9 must be the 999th value (ceil(0.999*1000) = 999), not the 1000th
    h = Histogram()
    h.record_many(range(1, 1001))
    assert h.percentile(99.9) == 999
    assert h.percentile(50) == 500
    assert h.percentile(0.05) == 1
    assert rank_for(99.9, 1000) == 999
    assert rank_for(99.99, 10_000) == 9_999
    assert rank_for(50, 3) == 2


def test_record_one_by_one_equals_batch_and_unsorted_batches() -> None:
    rng = random.Random(3)
    values = [int(rng.paretovariate(1.2) * 50_000) for _ in range(10_000)]
    a, b, c = Histogram(), Histogram(), Histogram()
    for v in values:
        a.record(v)
    b.record_many(values)
    for i in range(0, len(values), 777):
        c.record_many(values[i : i + 777])
    assert a == b == c


def test_merge_of_parts_equals_the_whole() -> None:
    rng = random.Random(11)
    values = [int(rng.lognormvariate(15, 2)) for _ in range(30_000)]
    whole = Histogram()
    whole.record_many(values)
    parts = [Histogram() for _ in range(7)]
    for i, v in enumerate(values):
        parts[i % 7].record(v)
    merged = Histogram()
    for p in parts:
        merged.merge(p)
    assert merged == whole
    assert merged.percentiles(PS) == whole.percentiles(PS)


def test_serialisation_roundtrip_is_exact() -> None:
    rng = random.Random(5)
    h = Histogram()
    h.record_many(int(rng.expovariate(1e-6)) for _ in range(5000))
    d = h.to_dict()
    assert d["count"] == 5000 and sum(c for _, c in d["buckets"]) == 5000
    assert Histogram.from_dict(d) == h


def test_range_and_fixed_memory() -> None:
    # 1 us .. 1 h with 3 significant digits, fixed number of counters
    for v in (1_000, 1_001, 999_999, 3_600_000_000_000):
        i = index_of(v)
        assert lowest_of(i) <= v <= highest_of(i)
        assert highest_of(i) - lowest_of(i) <= v * PRECISION
    assert HIGHEST_TRACKABLE >= 3_600 * 10**9
    h = Histogram()
    assert len(h.counts) == COUNTS_LEN
    h.record_many([10**15, 5])  # beyond the range: clamped and counted
    assert h.saturated == 1 and h.count == 2 and len(h.counts) == COUNTS_LEN
    h.record(-3)  # negative: clamped to 0
    assert h.min == 0


def test_coarse_percentiles_are_within_one_percent() -> None:
    rng = random.Random(9)
    values = sorted(int(rng.lognormvariate(16, 0.7)) for _ in range(20_000))
    coarse: dict[int, int] = {}
    Histogram().record_sorted(values, coarse)
    p50, p99 = percentiles_from_coarse(coarse, (50, 99))
    for got, p in ((p50, 50), (p99, 99)):
        e = exact(values, p)
        assert e <= got <= e * 1.01
