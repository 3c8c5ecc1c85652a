"""A WSGI app whose capacity is known: one sync worker answers at most one request per
SERVICE_TIME_S seconds (default 0.010: 100 requests a second).

Each answer is due SERVICE_TIME_S after the previous one was due, and the worker holds the
request until then. An answer that comes late (the worker's own overhead, or a machine too
busy to wake it on time) makes the next ones due sooner until it has caught up, by at most
CATCH_UP_S, which is also how far ahead a worker that has been idle may answer at once.
Under a backlog the answers therefore leave exactly SERVICE_TIME_S apart on average,
whatever the per-request overhead, as long as it stays below SERVICE_TIME_S. A view that
only slept SERVICE_TIME_S would serve 1 / (SERVICE_TIME_S + overhead), and the overhead
moves with whatever else a shared machine runs (here it read 91 req/s, not 100).
"""

import os
import time

SERVICE_TIME_S = float(os.environ.get("SERVICE_TIME_S", "0.010"))
CATCH_UP_S = 0.05
_due = [0.0]  # when the last answer was due (the worker serves one request at a time)


def application(environ, start_response):
    if environ.get("PATH_INFO") == "/health":
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"status": "ok"}']
    now = time.monotonic()
    _due[0] = max(_due[0] + SERVICE_TIME_S, now - CATCH_UP_S)
    time.sleep(max(_due[0] - now, 0.0))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello, World!"]
