"""Body checks are drawn at random, never at a fixed stride: a server that is wrong
periodically (every 20th response, say) cannot hide between the checked responses."""

from __future__ import annotations

import asyncio

from loadgen import Config
from loadgen.fastpath import FastRun
from loadgen.scenario import load_scenario


def _checked_positions(sample_every: int) -> list[int]:
    scenario = load_scenario("db", {"sample": str(sample_every)})
    config = Config(url="http://127.0.0.1:9/", duration=1.0, concurrency=1)
    loop = asyncio.new_event_loop()
    try:
        run = FastRun(config, loop, scenario=scenario)
        return [i for i, request in enumerate(run.seq) if request.sample]
    finally:
        loop.close()


def test_checked_responses_have_no_fixed_stride() -> None:
    checked = _checked_positions(16)
    cycle = len(_checked_positions(1))
    # about one in 16 of the cycle is checked ...
    assert 0.5 * cycle / 16 < len(checked) < 2 * cycle / 16
    # ... at positions that fall on every residue of a period a fault could have: a stride
    # of 16 checks only positions ≡ 0 (mod 16), and a fault every 20th never aligns with
    # more than one residue in 4 of them.
    for period in (16, 20):
        assert len({i % period for i in checked}) == period


def test_every_response_is_checked_when_asked() -> None:
    assert _checked_positions(1) == list(range(len(_checked_positions(1))))
