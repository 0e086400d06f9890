from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecoveryConfig(AppConfig):
    name = "recovery"
    verbose_name = _("Recovery")

    def ready(self) -> None:
        from messaging.services import outbound
        from recovery import lifecycle

        # The send path records a first contact's outcome; what it does to the conversation is
        # the lifecycle's (see messaging.services.outbound.on_first_contact_settled).
        outbound.on_first_contact_settled(lifecycle.first_contact_settled)
