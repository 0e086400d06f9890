"""Work waiting, read by Prometheus at scrape time: outbound/inbound rows due and Celery's queues."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.conf import settings
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from messaging.models import Message

logger = logging.getLogger(__name__)


class QueueDepthCollector(Collector):
    """Work waiting, read at scrape time: Celery's Redis queue and the rows still due."""

    def describe(self) -> list:
        return []  # nothing to read at registration: the database may not be there yet

    def collect(self) -> Iterator[GaugeMetricFamily]:
        rows = GaugeMetricFamily("sara_work_waiting", "Rows waiting for a worker, by kind.", labels=["kind"])
        try:
            rows.add_metric(["inbound"], Message.objects.filter(direction="in", status="received").count())
            rows.add_metric(["outbound"], Message.objects.filter(direction="out", status="pending").count())
        except Exception:  # a scrape must not fail because the database is away
            logger.warning("queue depth: database unavailable")
        yield rows
        if settings.REDIS_URL:
            import redis

            depth = GaugeMetricFamily(
                "sara_queue_depth", "Tasks waiting in the Celery queue.", labels=["queue"]
            )
            try:
                client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1)
                for queue in settings.CELERY_TASK_QUEUES:
                    depth.add_metric([queue], client.llen(queue))
            except redis.RedisError:
                logger.warning("queue depth: redis unavailable")
            yield depth
