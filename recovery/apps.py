from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecoveryConfig(AppConfig):
    name = "recovery"
    verbose_name = _("Recovery")

    def ready(self) -> None:
        # What messaging's and compliance's tasks and send path call is the recovery's work:
        # they declare it as named handlers and import nothing of recovery (docs/architecture.md).
        from compliance import handlers as compliance_handlers
        from messaging import handlers as messaging_handlers
        from recovery import followups, inbound, lifecycle, outbox, services
        from recovery.money import tasks as money_tasks  # noqa: F401 - registers the money sweep
        from recovery.sources import tasks  # noqa: F401 - registers the sources' tasks (queued by name)

        messaging_handlers.inbound_process.bind(inbound.process_inbound)
        messaging_handlers.payments_kept_reconcile.bind(services.early_payments_reconcile)
        messaging_handlers.outbound_load.bind(outbox.outbound_load)
        messaging_handlers.first_contact_settled.bind(lifecycle.first_contact_settled)
        compliance_handlers.windows_sweep.bind(followups.sweep_windows)
