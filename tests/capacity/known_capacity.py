"""The app whose capacity is known by construction (paced_app/), defined in this one place.

One gunicorn sync worker answers at most one request per service time: 1 / service time
requests a second. Branch i21-apps replaces ``App(...)`` by a declaration file in the app's
directory; this module is then the one line that reads it.
"""

from __future__ import annotations

from pathlib import Path

from stackbench.apps import WSGI, App

APP_DIR = Path(__file__).resolve().parent / "paced_app"
SERVER = "gunicorn-sync"
CAPPED_CLIENT = Path(__file__).resolve().parent / "capped_client.py"  # at most 40 req/s


def paced_app(service_time_s: float = 0.010) -> App:
    """The app answering one request per ``service_time_s`` (its capacity: the inverse)."""
    return App(
        "paced",
        {WSGI: "app:application"},
        "one sync worker answering at most one request per service time",
        env=(("SERVICE_TIME_S", f"{service_time_s:g}"),),
        home=APP_DIR,
        smoke_paths=("/health",),
    )
