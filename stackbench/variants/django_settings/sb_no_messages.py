"""Variant no-messages-mw: the app's own settings with MessageMiddleware removed."""

from sb_overlay import ADMIN_MIDDLEWARE_CHECKS, without

from project.settings import *  # noqa: F403
from project.settings import MIDDLEWARE

MIDDLEWARE = without(MIDDLEWARE, "django.contrib.messages.middleware.MessageMiddleware")
SILENCED_SYSTEM_CHECKS = ADMIN_MIDDLEWARE_CHECKS
