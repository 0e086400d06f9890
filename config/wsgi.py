"""WSGI entry point: `gunicorn config.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

# Set before settings are read: a web process gets the web's database configuration (one
# persistent connection, no pool; config/settings.py), whoever starts it and however.
os.environ.setdefault("SARA_PROCESS", "web")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()
