"""Create or update the staff superuser from the environment (idempotent).

    DJANGO_SUPERUSER_USERNAME=... DJANGO_SUPERUSER_PASSWORD=... \
    DJANGO_SUPERUSER_EMAIL=... python manage.py ensure_admin

There is no default password: without these variables the command fails.
"""

import os

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

VARIABLES = ("DJANGO_SUPERUSER_USERNAME", "DJANGO_SUPERUSER_PASSWORD")


class Command(BaseCommand):
    help = "Create or update the staff superuser from DJANGO_SUPERUSER_* variables."

    def handle(self, *args, **options):
        missing = [name for name in VARIABLES if not os.environ.get(name)]
        if missing:
            raise CommandError(f"Set {' and '.join(missing)} (there is no default admin).")
        username = os.environ["DJANGO_SUPERUSER_USERNAME"]
        password = os.environ["DJANGO_SUPERUSER_PASSWORD"]
        email = os.environ.get("DJANGO_SUPERUSER_EMAIL", "")
        User = get_user_model()
        try:
            validate_password(password, User(username=username, email=email))
        except ValidationError as exc:
            raise CommandError("DJANGO_SUPERUSER_PASSWORD: " + " ".join(exc.messages)) from None
        with transaction.atomic():
            user, created = User.objects.get_or_create(username=username)
            user.email = email
            user.is_staff = user.is_superuser = user.is_active = True
            user.set_password(password)
            user.save()
        self.stdout.write(f"{'Created' if created else 'Updated'} staff superuser {username!r}.")
