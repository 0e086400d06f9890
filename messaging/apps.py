from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        from core import metrics
        from messaging.metrics import QueueDepthCollector

        metrics.collector_register(QueueDepthCollector())
