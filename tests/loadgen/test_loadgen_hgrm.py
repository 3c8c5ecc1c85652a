"""``--hgrm``: HdrHistogram's percentile distribution text, read back and compared with
the JSON report."""

from __future__ import annotations

import json
import math
import re
from fractions import Fraction

from loadgen.hgrm import format_hgrm
from loadgen.histogram import Histogram

FOOTER_RE = re.compile(
    r"#\[Mean    = +([0-9.]+), StdDeviation   = +([0-9.]+)\]\n"
    r"#\[Max     = +([0-9.]+), Total count    = +(\d+)\]\n"
    r"#\[Buckets = +(\d+), SubBuckets     = +(\d+)\]\n$"
)


def parse_hgrm(
    text: str,
) -> tuple[list[tuple[float, Fraction, int, float | None]], dict[str, float]]:
    """Rows (value ms, percentile 0..1 as written, total count, 1/(1-p) or None) and
    the footer."""
    lines = text.splitlines()
    assert lines[0].split() == ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
    assert lines[1] == ""
    rows = []
    for line in lines[2:]:
        if line.startswith("#"):
            break
        cols = line.split()
        assert len(cols) in (3, 4), line
        inv = float(cols[3]) if len(cols) == 4 else None
        rows.append((float(cols[0]), Fraction(cols[1]), int(cols[2]), inv))
    m = FOOTER_RE.search(text)
    assert m, text[-300:]
    keys = ("mean", "stdev", "max", "count", "buckets", "sub_buckets")
    return rows, dict(zip(keys, map(float, m.groups()), strict=True))


def test_format_of_a_known_histogram() -> None:
    h = Histogram()
    for v in range(1, 101):  # 1..100 ns: every value in its own exact bucket
        h.record(v)
    text = format_hgrm(h)
    lines = text.splitlines()
    assert lines[:4] == [
        "       Value     Percentile TotalCount 1/(1-Percentile)",
        "",
        "    0.000001 0.000000000000          1           1.00",
        "    0.000010 0.100000000000         10           1.11",
    ]
    # 5 ticks per half distance: 10 % steps to 50 %, 5 % to 75 %, 2.5 % to 87.5 %, ...
    levels = [float(p * 100) for _, p, _, _ in parse_hgrm(text)[0]]
    assert levels[:14] == [0, 10, 20, 30, 40, 50, 55, 60, 65, 70, 75, 77.5, 80, 82.5]
    assert lines[-6:] == [
        "    0.000099 0.989062500000         99          91.43",
        "    0.000100 0.990625000000        100         106.67",
        "    0.000100 1.000000000000        100",
        "#[Mean    =     0.000051, StdDeviation   =     0.000029]",
        "#[Max     =     0.000100, Total count    =          100]",
        "#[Buckets =           32, SubBuckets     =         2048]",
    ]


def test_empty_histogram_has_no_rows() -> None:
    rows, footer = parse_hgrm(format_hgrm(Histogram()))
    assert rows == [] and footer["count"] == 0 and footer["max"] == 0


def _check_against_json(text: str, block: dict) -> None:
    rows, footer = parse_hgrm(text)
    n = block["count"]
    assert n > 100
    # the footer
    assert footer["count"] == n
    assert round(footer["max"] * 1e6) == block["max_ns"]
    assert abs(round(footer["mean"] * 1e6) - block["mean_ns"]) <= 1
    assert abs(round(footer["stdev"] * 1e6) - block["stdev_ns"]) <= 1
    assert (footer["buckets"], footer["sub_buckets"]) == (32, 2048)
    # the rows: levels ascending, the last one at 100 % with every sample
    assert rows[0][1] == 0 and rows[-1][1:] == (1.0, n, None)
    assert [r[1] for r in rows] == sorted(r[1] for r in rows)
    # each row's value is the JSON's percentile wherever the JSON has that level
    pct = {float(k): v for k, v in block["percentiles_ns"].items()}
    seen = {}
    for value, p, _count, inv in rows:
        level = float(p * 100)
        if level in pct:
            seen[level] = round(value * 1e6)
        if inv is not None:
            assert abs(inv - 1 / (1 - float(p))) <= 0.006
    assert 50.0 in seen and 100.0 in seen
    assert seen == {lv: pct[lv] for lv in seen}
    # each row's total count is the cumulative count of the bucket where its rank falls
    cum = []
    total = 0
    for _lowest, c in block["histogram"]["buckets"]:
        total += c
        cum.append(total)
    assert total == n
    for _value, p, count, _inv in rows:
        rank = max(1, math.ceil(p * n))
        assert count == next(c for c in cum if c >= rank), (p, count)
        assert round(_value * 1e6) >= block["min_ns"]


def test_hgrm_files_agree_with_the_json_report(cli, server, tmp_path) -> None:
    prefix = tmp_path / "run"
    out = tmp_path / "r.json"
    p = cli(
        "-z",
        "1s",
        "-c",
        "8",
        "-R",
        "600",
        "--json",
        str(out),
        "--hgrm",
        str(prefix),
        "-q",
        server.url("/fixed?ms=2"),
    )
    assert p.returncode == 0, p.stderr
    lat = json.loads(out.read_text())["latency"]
    for name in ("uncorrected", "corrected"):
        _check_against_json((tmp_path / f"run.{name}.hgrm").read_text(), lat[name])


def test_closed_model_writes_only_the_uncorrected_file(cli, server, tmp_path) -> None:
    prefix = tmp_path / "closed"
    out = tmp_path / "c.json"
    p = cli(
        "-n", "300", "-c", "4", "--json", str(out), "--hgrm", str(prefix), "-q", server.url("/fast")
    )
    assert p.returncode == 0, p.stderr
    assert sorted(f.name for f in tmp_path.glob("closed.*")) == ["closed.uncorrected.hgrm"]
    lat = json.loads(out.read_text())["latency"]
    _check_against_json((tmp_path / "closed.uncorrected.hgrm").read_text(), lat["uncorrected"])
