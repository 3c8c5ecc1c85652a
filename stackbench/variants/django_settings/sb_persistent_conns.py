"""Variant persistent-conns: the app's own settings with psycopg 3's pool replaced by
Django's persistent connections, one per thread, never closed (CONN_MAX_AGE=None), as
TechEmpower's Django app connects. The driver stays psycopg 3: only the pool changes."""

from django.core.exceptions import ImproperlyConfigured

from project.settings import *  # noqa: F403
from project.settings import DATABASES

_options = DATABASES["default"]["OPTIONS"]
if "pool" not in _options:
    raise ImproperlyConfigured("variant persistent-conns: the app has no pool to replace")
del _options["pool"]
DATABASES["default"]["CONN_MAX_AGE"] = None
DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
