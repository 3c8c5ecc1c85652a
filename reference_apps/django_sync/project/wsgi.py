"""WSGI entry point: ``project.wsgi:application``.

With psycopg2 under gevent or eventlet, PSYCOGREEN=gevent|eventlet makes the driver yield to
the event loop while it waits on PostgreSQL (psycogreen). This must happen before the first
connection, so it happens here, before Django loads. psycopg 3 needs no patch under gevent.
"""

import os

from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

green = os.environ.get("PSYCOGREEN", "").strip()
if green:
    if os.environ.get("DJANGO_DB_DRIVER") != "psycopg2":
        raise ImproperlyConfigured("PSYCOGREEN patches psycopg2: set DJANGO_DB_DRIVER=psycopg2.")
    if green == "gevent":
        from psycogreen.gevent import patch_psycopg
    elif green == "eventlet":
        from psycogreen.eventlet import patch_psycopg
    else:
        raise ImproperlyConfigured("PSYCOGREEN must be 'gevent' or 'eventlet' (or unset).")
    patch_psycopg()

application = get_wsgi_application()
