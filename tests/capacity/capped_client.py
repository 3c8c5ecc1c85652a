"""A client that cannot offer more than 40 requests a second: each iteration holds
loadgen's one event loop for 25 ms before it sends GET /plaintext."""

import time

from loadgen.scenario import flow

HOLD_S = 0.025


@flow()
async def plaintext(user):
    until = time.perf_counter() + HOLD_S
    while time.perf_counter() < until:
        pass
    await user.get("/plaintext")
