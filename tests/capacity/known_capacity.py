"""The app whose capacity is known by construction (paced_app/, declared in its directory).

One gunicorn sync worker answers at most one request per service time: 1 / service time
requests a second.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from stackbench.apps import App, load_app

APP_DIR = Path(__file__).resolve().parent / "paced_app"
SERVER = "gunicorn-sync"
CAPPED_CLIENT = Path(__file__).resolve().parent / "capped_client.py"  # at most 40 req/s


def paced_app(service_time_s: float = 0.010) -> App:
    """The app answering one request per ``service_time_s`` (its capacity: the inverse)."""
    declared = load_app(APP_DIR)
    return dataclasses.replace(declared, environment=(("SERVICE_TIME_S", f"{service_time_s:g}"),))
