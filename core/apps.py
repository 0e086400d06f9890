from django.apps import AppConfig
from django.core import checks


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from core import metrics, tracing

        tracing.connect_celery_signals()
        metrics.connect_celery_signals()
        checks.register(handlers_bound_check)


def handlers_bound_check(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    """Every named handler an app declared is bound by the app that does its work."""
    from core.handlers import handlers_declared, handlers_unbound

    declared = handlers_declared()
    return [
        checks.Error(
            f"The handler {name} is not bound.",
            hint=f"{declared[name].bound_by} binds it when Django starts.",
            id="core.E001",
        )
        for name in handlers_unbound()
    ]
