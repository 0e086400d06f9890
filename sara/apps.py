from django.apps import AppConfig


class SaraConfig(AppConfig):
    name = "sara"
    verbose_name = "Sara"

    def ready(self) -> None:
        from sara import metrics, tracing

        tracing.connect_celery_signals()
        metrics.connect_celery_signals()
