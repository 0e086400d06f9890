from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = _("Messaging")

    def ready(self) -> None:
        from core import metrics
        from messaging import tasks  # noqa: F401 - registers the tasks the services queue by name
        from messaging.metrics import QueueDepthCollector

        metrics.collector_register(QueueDepthCollector())
