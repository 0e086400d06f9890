from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from core import metrics, tracing

        tracing.connect_celery_signals()
        metrics.connect_celery_signals()
