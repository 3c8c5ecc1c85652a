"""Variant no-session-mw: the app's own settings without SessionMiddleware, and so without
the two middleware that cannot run without a session (Authentication, Message)."""

from sb_overlay import ADMIN_MIDDLEWARE_CHECKS, without

from project.settings import *  # noqa: F403
from project.settings import MIDDLEWARE

MIDDLEWARE = without(
    MIDDLEWARE,
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
)
SILENCED_SYSTEM_CHECKS = ADMIN_MIDDLEWARE_CHECKS
