"""Choose the PostgreSQL driver before Django (or anything else) loads one.

``DJANGO_DB_DRIVER=psycopg`` (default): psycopg 3, pooled by Django's own psycopg_pool.
``DJANGO_DB_DRIVER=psycopg2``: psycopg2, which green-thread servers need (eventlet cannot
make psycopg 3 cooperative). ``PSYCOGREEN=gevent|eventlet`` then patches psycopg2 with
psycogreen so its waits yield to the hub; unset, psycopg2 blocks the whole worker (which is
what the ``gunicorn-gevent-blocking`` server measures).

This runs from ``project.settings``, i.e. before the first connection is made.
"""

from __future__ import annotations

import os
import sys

from django.core.exceptions import ImproperlyConfigured

DRIVERS = ("psycopg", "psycopg2")
GREEN_LIBRARIES = ("gevent", "eventlet")


def configure() -> str:
    """Select the driver (and patch it); returns the driver's name."""
    driver = os.environ.get("DJANGO_DB_DRIVER", "").strip() or "psycopg"
    if driver not in DRIVERS:
        raise ImproperlyConfigured(
            f"DJANGO_DB_DRIVER={driver!r} is not supported: use one of {', '.join(DRIVERS)}"
        )
    green = os.environ.get("PSYCOGREEN", "").strip()
    if green and green not in GREEN_LIBRARIES:
        raise ImproperlyConfigured(
            f"PSYCOGREEN={green!r} is not supported: use one of {', '.join(GREEN_LIBRARIES)}"
        )
    if driver == "psycopg2":
        try:
            import psycopg2  # noqa: F401
        except ImportError as exc:
            raise ImproperlyConfigured(
                "DJANGO_DB_DRIVER=psycopg2 needs psycopg2 (pip install psycopg2-binary)"
            ) from exc
        # Django's backend prefers psycopg 3 when it can import it: hide it.
        sys.modules["psycopg"] = None  # type: ignore[assignment]
        if green:
            _patch_psycopg2(green)
    elif green:
        raise ImproperlyConfigured(
            "PSYCOGREEN patches psycopg2 only: set DJANGO_DB_DRIVER=psycopg2 "
            "(psycopg 3 is already cooperative under gevent)"
        )
    return driver


def _patch_psycopg2(green: str) -> None:
    try:
        if green == "gevent":
            from psycogreen.gevent import patch_psycopg
        else:
            from psycogreen.eventlet import patch_psycopg
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"PSYCOGREEN={green} needs psycogreen and {green} installed"
        ) from exc
    patch_psycopg()
