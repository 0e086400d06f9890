"""Work waiting, read by Prometheus at scrape time: outbound/inbound rows due and Celery's queues."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.conf import settings
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.broker import broker_kind, queue_depths
from messaging.models import Message

logger = logging.getLogger(__name__)


class QueueDepthCollector(Collector):
    """Work waiting, read at scrape time: Celery's queues (Redis or RabbitMQ) and the rows still due."""

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
        kind = broker_kind()
        if kind == "memory":
            return
        depth = GaugeMetricFamily("sara_queue_depth", "Tasks waiting in the Celery queue.", labels=["queue"])
        depths = queue_depths(list(settings.CELERY_TASK_QUEUES))
        for queue, count in (depths or {}).items():
            depth.add_metric([queue], count)
        yield depth
        # An empty gauge could mean "nothing waiting" or "could not look": this says which.
        up = GaugeMetricFamily(
            "sara_broker_up", "1 when Celery's broker answered the queue-depth read.", labels=["broker"]
        )
        up.add_metric([kind], 0 if depths is None else 1)
        yield up
