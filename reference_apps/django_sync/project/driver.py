"""Which PostgreSQL driver Django loads. Benchmark-only (README, "What to strip").

Django's backend imports psycopg 3 whenever it can, and has no setting to choose psycopg2:
a deployment installs the one driver it runs. A benchmark compares both from one
environment, so DJANGO_DB_DRIVER=psycopg2 hides psycopg 3 before Django's backend loads.
"""

import sys

from django.core.exceptions import ImproperlyConfigured

DRIVERS = ("psycopg", "psycopg2")


def select(name: str) -> str:
    """'psycopg' (3, the default) or 'psycopg2', made the one Django imports."""
    name = name.strip() or "psycopg"
    if name not in DRIVERS:
        raise ImproperlyConfigured("DJANGO_DB_DRIVER must be 'psycopg' or 'psycopg2'.")
    if name == "psycopg2":
        sys.modules["psycopg"] = None  # type: ignore[assignment]  # an import of it fails
    return name
