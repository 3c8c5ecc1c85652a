"""Variant no-xframe-mw: the app's own settings with XFrameOptionsMiddleware removed."""

from sb_overlay import without

from project.settings import *  # noqa: F403
from project.settings import MIDDLEWARE

MIDDLEWARE = without(MIDDLEWARE, "django.middleware.clickjacking.XFrameOptionsMiddleware")
