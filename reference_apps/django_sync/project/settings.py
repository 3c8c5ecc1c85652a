"""Settings for the django_sync reference app: everything that varies comes from the env.

DATABASE_URL (required), UPSTREAM_URL, DB_POOL_SIZE, DB_POOL_TIMEOUT, SECRET_KEY (required),
ALLOWED_HOSTS, DJANGO_DB_DRIVER (psycopg | psycopg2, project/driver.py), PSYCOGREEN (read in
project/wsgi.py), DJANGO_HTTPS.
"""

import math
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from project import driver
from project.concurrency import green_threads

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


def postgresql(url: str, conn_max_age: int = 0) -> dict:
    """DATABASE_URL as a DATABASES entry (dj-database-url; libpq options go to OPTIONS)."""
    try:
        database = dj_database_url.parse(url, conn_max_age=conn_max_age)
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
WSGI_APPLICATION = "project.wsgi.application"

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
DB_DRIVER = driver.select(os.environ.get("DJANGO_DB_DRIVER", ""))
# A sync worker runs one request at a time: one connection. With threads set DB_POOL_SIZE
# to the thread count, with greenlets to the queries a worker may run at once (README).
POOL_SIZE = int(os.environ.get("DB_POOL_SIZE", "1"))
# How long a request waits for a pooled connection; then it is answered 503 with
# Retry-After (circus.views.allow), not left to hang.
POOL_TIMEOUT = positive_number("DB_POOL_TIMEOUT", "10")

if DB_DRIVER == "psycopg":
    DATABASES = {"default": postgresql(required("DATABASE_URL"))}
    # psycopg 3's pool, one per process, fixed size so a benchmark never waits on a
    # connect; requests borrow a connection and return it when the request ends.
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": POOL_SIZE,
        "max_size": POOL_SIZE,
        "timeout": POOL_TIMEOUT,
    }
else:
    # Django has no pool for psycopg2: persistent connections, one per thread. Under
    # gevent/eventlet each request is a new greenlet whose connection would linger after
    # it, so there a connection lives for one request (CONN_MAX_AGE=0; see README).
    DATABASES = {
        "default": postgresql(required("DATABASE_URL"), conn_max_age=0 if green_threads() else 600)
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
