"""Variant no-middleware: the app's own settings with no middleware at all."""

from sb_overlay import ADMIN_MIDDLEWARE_CHECKS, without

from project.settings import *  # noqa: F403
from project.settings import MIDDLEWARE

MIDDLEWARE = without(MIDDLEWARE, *MIDDLEWARE)  # all of them, so none can be missing
SILENCED_SYSTEM_CHECKS = ADMIN_MIDDLEWARE_CHECKS
