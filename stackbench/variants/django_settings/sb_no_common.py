"""Variant no-common-mw: the app's own settings with CommonMiddleware removed."""

from sb_overlay import without

from project.settings import *  # noqa: F403
from project.settings import MIDDLEWARE

MIDDLEWARE = without(MIDDLEWARE, "django.middleware.common.CommonMiddleware")
