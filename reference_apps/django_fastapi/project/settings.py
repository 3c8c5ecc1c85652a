"""Settings, all from the environment (see README.md); DEBUG is always off."""

from __future__ import annotations

import math
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from project import driver

BASE_DIR = Path(__file__).resolve().parent.parent

# Before anything can open a connection: psycopg 3, or psycopg2 (+ psycogreen).
DB_DRIVER = driver.configure()


# What a missing variable's one-line error shows as an example.
EXAMPLES = {
    "DATABASE_URL": "postgresql://user:password@127.0.0.1:5432/dbname",
    "SECRET_KEY": "$(python -c 'import secrets; print(secrets.token_urlsafe(50))')",
}


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        example = f"{name}={EXAMPLES[name]}"
        raise ImproperlyConfigured(f"Set the {name} environment variable, e.g. {example}")
    return value


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ImproperlyConfigured(f"{name} must be a positive integer, not {raw!r}")
    return value


def _positive_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ImproperlyConfigured(f"{name} must be a number above 0, not {raw!r}")
    return value


def _database(url: str, pool_size: int, pool_timeout: float) -> dict[str, object]:
    """DATABASE_URL (postgresql://user[:password]@host[:port]/dbname) as Django settings.

    dj-database-url reads it; libpq options in its query string go to OPTIONS. psycopg2 has
    no pool in Django: a connection per request (CONN_MAX_AGE=0, dj-database-url's default).
    Persistent connections would be per thread, and green threads die with their request.
    """
    try:
        database = dj_database_url.parse(url)
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL: {exc}") from None
    if database["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(
            "DATABASE_URL must look like postgresql://user[:password]@host[:port]/dbname"
        )
    options = database.setdefault("OPTIONS", {})
    if DB_DRIVER == "psycopg":
        # Django's own psycopg_pool pool, one per process, sized by DB_POOL_SIZE (all of it
        # opened up front so a benchmark does not measure connection set-up). Each request
        # borrows a connection and returns it at request end (CONN_MAX_AGE must stay 0); one
        # that gets none within DB_POOL_TIMEOUT seconds is told 503 (circus.views).
        options["pool"] = {"min_size": pool_size, "max_size": pool_size, "timeout": pool_timeout}
    # The server already speaks UTC: no "SET TIME ZONE" on new connections.
    options.setdefault("options", "-c TimeZone=UTC")
    return dict(database)


SECRET_KEY = _required("SECRET_KEY")
DEBUG = False
ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
    if host.strip()
]

DB_POOL_SIZE = _positive_int("DB_POOL_SIZE", 10)
DB_POOL_TIMEOUT = _positive_number("DB_POOL_TIMEOUT", 10.0)
DATABASES = {"default": _database(_required("DATABASE_URL"), DB_POOL_SIZE, DB_POOL_TIMEOUT)}
UPSTREAM_URL = os.environ.get("UPSTREAM_URL", "").strip().rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "circus",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

# Request bodies: the API's JSON bodies are small; larger ones get 413 before parsing.
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
MAX_REQUEST_BODY = DATA_UPLOAD_MAX_MEMORY_SIZE  # the FastAPI half applies the same cap

# Hardening that does not depend on TLS (the benchmark serves plain HTTP on loopback;
# see README.md for the HTTPS settings `check --deploy` asks about).
SESSION_COOKIE_HTTPONLY = True
# CSRF's refusals answer JSON, and a method the view does not serve is 405 before that.
CSRF_FAILURE_VIEW = "circus.views.csrf_failure"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
HTTPS = os.environ.get("DJANGO_HTTPS", "").strip().lower() in ("1", "true", "yes")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = 31_536_000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
