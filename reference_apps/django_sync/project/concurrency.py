"""Which concurrency this process runs on: gevent or eventlet greenlets, or OS threads.

gunicorn's gevent and eventlet workers monkey-patch the standard library before they load
the app, so the settings and the views can ask at import time. Benchmark-only: a
deployment that runs one worker class can drop this and write down what it runs.
"""

import sys


def green_threads() -> str | None:
    """'gevent' or 'eventlet' when the server made this process's threads green, else None."""
    gevent_monkey = sys.modules.get("gevent.monkey")
    if gevent_monkey is not None and gevent_monkey.is_module_patched("threading"):
        return "gevent"
    eventlet_patcher = sys.modules.get("eventlet.patcher")
    if eventlet_patcher is not None and eventlet_patcher.is_monkey_patched("thread"):
        return "eventlet"
    return None
