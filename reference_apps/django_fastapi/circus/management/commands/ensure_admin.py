"""Create or update the staff superuser from the environment (idempotent, no defaults)."""

from __future__ import annotations

import os
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

VARIABLES = ("DJANGO_SUPERUSER_USERNAME", "DJANGO_SUPERUSER_PASSWORD")


class Command(BaseCommand):
    help = (
        "Create or update the admin user from DJANGO_SUPERUSER_USERNAME, "
        "DJANGO_SUPERUSER_PASSWORD and DJANGO_SUPERUSER_EMAIL (optional)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        missing = [name for name in VARIABLES if not os.environ.get(name)]
        if missing:
            raise CommandError(f"Set {' and '.join(missing)}: there is no default admin password.")
        username = os.environ["DJANGO_SUPERUSER_USERNAME"]
        email = os.environ.get("DJANGO_SUPERUSER_EMAIL", "")
        user, created = get_user_model().objects.get_or_create(username=username)
        user.email = email
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(os.environ["DJANGO_SUPERUSER_PASSWORD"])
        user.save()
        self.stdout.write(f"{'created' if created else 'updated'} admin user {username!r}")
