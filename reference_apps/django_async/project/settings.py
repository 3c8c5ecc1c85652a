"""Settings for the django_async reference app: everything that varies comes from the env.

DATABASE_URL (required), UPSTREAM_URL, DB_POOL_SIZE, DB_POOL_TIMEOUT, SECRET_KEY (required),
ALLOWED_HOSTS, DJANGO_HTTPS.
"""

import math
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


# What a missing variable's one-line error shows as an example.
EXAMPLES = {
    "DATABASE_URL": "postgresql://user:password@127.0.0.1:5432/dbname",
    "SECRET_KEY": "$(python -c 'import secrets; print(secrets.token_urlsafe(50))')",
}


def required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        example = f"{name}={EXAMPLES[name]}"
        raise ImproperlyConfigured(f"Set the {name} environment variable, e.g. {example}")
    return value


def positive_number(name: str, default: str) -> float:
    raw = os.environ.get(name, "").strip() or default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ImproperlyConfigured(f"{name} must be a number above 0, not {raw!r}")
    return value


def postgresql(url: str) -> dict:
    """DATABASE_URL as a DATABASES entry (dj-database-url; libpq options go to OPTIONS)."""
    try:
        database = dj_database_url.parse(url)
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL: {exc}") from None
    database.setdefault("OPTIONS", {})  # libpq options and the pool go here
    if database["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_URL must look like postgresql://user@host:5432/db")
    return database


SECRET_KEY = required("SECRET_KEY")  # one per deployment, shared by all workers
DEBUG = False
ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "circus",
]

# What the admin needs, plus the security headers; all of it is lazy for the JSON API
# (the session and user are loaded only when a view touches them, so /db reads no session).
# Around an async view, Django 5.2 still runs each one's process_request/process_response
# through sync_to_async (a thread hop): part of what this app measures (see README).
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",  # Content-Length, /admin -> /admin/
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
ASGI_APPLICATION = "project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
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

# --- Database -------------------------------------------------------------------------
POOL_SIZE = int(os.environ.get("DB_POOL_SIZE", "10"))
# How long a request waits for a pooled connection; then it is answered 503 with
# Retry-After (circus.views.allow), not left to hang.
POOL_TIMEOUT = positive_number("DB_POOL_TIMEOUT", "10")

DATABASES = {"default": postgresql(required("DATABASE_URL"))}
# psycopg 3's pool, one per process, fixed size so a benchmark never waits on a connect.
# The async ORM runs each query in a worker thread (one per request), which borrows a
# connection from this pool and returns it when the request ends.
DATABASES["default"]["OPTIONS"]["pool"] = {
    "min_size": POOL_SIZE,
    "max_size": POOL_SIZE,
    "timeout": POOL_TIMEOUT,
}

# The shared tables use 32-bit serial ids.
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

UPSTREAM_URL = os.environ.get("UPSTREAM_URL", "").rstrip("/")

# --- Sessions, auth, security ---------------------------------------------------------
SESSION_ENGINE = "django.contrib.sessions.backends.db"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# CSRF's refusals answer JSON, and a method the view does not serve is 405 before that.
CSRF_FAILURE_VIEW = "circus.views.csrf_failure"
# The benchmark serves plain HTTP on loopback; behind TLS set DJANGO_HTTPS=1.
HTTPS = os.environ.get("DJANGO_HTTPS", "") == "1"
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = 31_536_000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS

# Bodies beyond this are refused (413) before they are parsed; a troupe fits in a few KB.
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
# The admin's CSS/JS: run `manage.py collectstatic` and serve STATIC_ROOT from a web server.
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    # Every 4xx is logged as a warning, and a bad Host header with a traceback, by
    # default: under load that is noise and I/O. Server errors are still logged.
    "loggers": {
        "django.request": {"level": "ERROR"},
        "django.security.DisallowedHost": {"level": "CRITICAL"},
    },
}
