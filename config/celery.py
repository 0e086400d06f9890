"""The Celery app "config": broker, queues and beat schedule come from Django settings."""

from __future__ import annotations

import os

from celery import Celery

from config import kombu_redis

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
kombu_redis.install()

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
