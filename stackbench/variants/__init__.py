"""Bench variants (docs/feature-prices.md): an app served with one production feature
changed, to price that feature side by side with the app as shipped. Not a fork: the
app's directory is untouched, the change lives here.

For the Django apps a variant is a settings overlay, a module in ``django_settings/``
that does ``from project.settings import *`` and changes one thing. A job served with a
variant gets ``DJANGO_SETTINGS_MODULE`` set to the overlay and the overlay's directory
on ``PYTHONPATH``; the app's directory stays the cwd, so ``project.settings`` still
imports. Standard library only: the noxfile may import it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

OVERLAYS = Path(__file__).resolve().parent / "django_settings"
DJANGO_APPS = ("django_sync", "django_async")  # their settings share MIDDLEWARE and the pool
_MW = "django.middleware."


@dataclass(frozen=True)
class Variant:
    name: str
    changes: str  # one line: what differs from the app as shipped
    settings: str  # the overlay module (its file in django_settings/)
    apps: tuple[str, ...] = DJANGO_APPS

    def env(self, inherited_pythonpath: str | None = None) -> dict[str, str]:
        """What the server's (and its setup commands') environment gets on top of the app's."""
        path = [str(OVERLAYS), *([inherited_pythonpath] if inherited_pythonpath else [])]
        return {"DJANGO_SETTINGS_MODULE": self.settings, "PYTHONPATH": os.pathsep.join(path)}


def _without(middleware: str) -> str:
    return f"without {middleware.rpartition('.')[2]}"


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("no-security-mw", _without(_MW + "security.SecurityMiddleware"), "sb_no_security"),
        Variant(
            "no-session-mw",
            "without SessionMiddleware, and so without the Authentication and Message "
            "middleware that cannot run without a session",
            "sb_no_session",
        ),
        Variant("no-common-mw", _without(_MW + "common.CommonMiddleware"), "sb_no_common"),
        Variant("no-csrf-mw", _without(_MW + "csrf.CsrfViewMiddleware"), "sb_no_csrf"),
        Variant("no-auth-mw", "without AuthenticationMiddleware", "sb_no_auth"),
        Variant("no-messages-mw", "without MessageMiddleware", "sb_no_messages"),
        Variant(
            "no-xframe-mw",
            _without(_MW + "clickjacking.XFrameOptionsMiddleware"),
            "sb_no_xframe",
        ),
        Variant("no-middleware", "MIDDLEWARE = [] (all seven removed)", "sb_no_middleware"),
        Variant(
            "persistent-conns",
            "psycopg 3 without its pool: one persistent connection per thread "
            "(CONN_MAX_AGE=None), as TechEmpower's Django app does",
            "sb_persistent_conns",
        ),
    )
}


class VariantError(ValueError):
    """An unknown variant, or one for an app it does not apply to: one line, exit 2."""


def get_variant(name: str, apps: list[str] | tuple[str, ...] = ()) -> Variant:
    """The variant, checked against every app it will be served with."""
    try:
        variant = VARIANTS[name]
    except KeyError:
        raise VariantError(
            f"unknown variant {name!r}; valid variants: {', '.join(VARIANTS)}"
        ) from None
    for app in apps:
        if app not in variant.apps:
            raise VariantError(
                f"variant {name!r} does not apply to {app}; it applies to {', '.join(variant.apps)}"
            )
    return variant
