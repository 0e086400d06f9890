"""ASGI entry point."""

import os

from django.core.asgi import get_asgi_application

# Set before settings are read: a web process gets the web's database configuration (one
# persistent connection, no pool; config/settings.py), whoever starts it and however.
os.environ.setdefault("SARA_PROCESS", "web")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_asgi_application()
