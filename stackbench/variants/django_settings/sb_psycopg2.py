"""Variant psycopg2: psycopg2 instead of psycopg 3 and its pool, with one persistent
connection per thread, never closed (CONN_MAX_AGE=None): the driver and the connections of
TechEmpower's Django app. The switch is the app's own (DJANGO_DB_DRIVER=psycopg2, which
the variant sets in the server's environment); this overlay checks that it happened and
makes the connections persistent."""

from django.core.exceptions import ImproperlyConfigured

from project.settings import *  # noqa: F403
from project.settings import DATABASES, DB_DRIVER

if DB_DRIVER != "psycopg2" or "pool" in DATABASES["default"]["OPTIONS"]:
    raise ImproperlyConfigured(
        "variant psycopg2: the app is still on psycopg 3 (DJANGO_DB_DRIVER is not psycopg2)"
    )
DATABASES["default"]["CONN_MAX_AGE"] = None
