"""Which concurrency this process runs on: gevent or eventlet greenlets, or OS threads.

gunicorn's gevent and eventlet workers monkey-patch the standard library before they load
the app, so settings (connection lifetime) and views (fanout) can ask at import time.
"""

import sys


def green_threads() -> str | None:
    """'gevent' or 'eventlet' when the server monkey-patched this process, else None."""
    if "gevent" in sys.modules:
        from gevent import monkey

        if monkey.is_module_patched("socket"):
            return "gevent"
    if "eventlet" in sys.modules:
        from eventlet import patcher

        if patcher.is_monkey_patched("socket"):
            return "eventlet"
    return None
