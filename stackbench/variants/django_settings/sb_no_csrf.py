"""Variant no-csrf-mw: the app's own settings with CsrfViewMiddleware removed."""

from sb_overlay import without

from project.settings import *  # noqa: F403
from project.settings import MIDDLEWARE

MIDDLEWARE = without(MIDDLEWARE, "django.middleware.csrf.CsrfViewMiddleware")
