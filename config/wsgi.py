"""WSGI entry point (gunicorn config.wsgi)."""

import os
from importlib import import_module

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# Django imports the URL modules (and through them the views, the stats code and SciPy) on the
# first request, which then takes seconds; importing them here makes a gunicorn worker pay that
# before it accepts a connection.
import_module(settings.ROOT_URLCONF)
