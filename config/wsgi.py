"""WSGI entry point (gunicorn config.wsgi)."""

import gc
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

# What is loaded now (modules, classes, the URL and template machinery: a few hundred thousand
# objects) lives as long as the process. Frozen, the cyclic garbage collector stops walking it on
# every oldest-generation collection that requests trigger; in gunicorn's --preload master it also
# keeps forked workers from touching (and so copying) those pages. Garbage first, so none is kept.
gc.collect()
gc.freeze()
