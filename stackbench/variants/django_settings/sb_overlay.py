"""What the overlays share: a middleware removed only if the app has it, so a renamed or
reordered MIDDLEWARE fails the variant loudly instead of measuring the baseline twice.

Importable only beside an app's ``project`` package (the server's cwd): the harness puts
this directory on the server's PYTHONPATH for a variant's job only.
"""

from django.core.exceptions import ImproperlyConfigured

# The admin's own checks (admin.E408-E410) refuse to start without these three middleware;
# the variants that drop them price the API endpoints, where the admin is not used.
ADMIN_MIDDLEWARE_CHECKS = ["admin.E408", "admin.E409", "admin.E410"]


def without(middleware: list[str], *names: str) -> list[str]:
    missing = [name for name in names if name not in middleware]
    if missing:
        raise ImproperlyConfigured(f"variant: the app has no {', '.join(missing)} to remove")
    return [entry for entry in middleware if entry not in names]
