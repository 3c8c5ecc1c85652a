"""Variant no-middleware-psycopg2: both priced features TechEmpower's Django app goes
without, removed together: no middleware (as no-middleware) on psycopg2 with persistent
connections (as psycopg2, whose check that the app switched driver runs on import). What
is left between this and TechEmpower's app is not a priced production feature."""

from sb_overlay import ADMIN_MIDDLEWARE_CHECKS, without
from sb_psycopg2 import *  # noqa: F403
from sb_psycopg2 import MIDDLEWARE

MIDDLEWARE = without(MIDDLEWARE, *MIDDLEWARE)  # all of them, so none can be missing
SILENCED_SYSTEM_CHECKS = ADMIN_MIDDLEWARE_CHECKS
