"""The templates Sara is configured with, named for staff by their role, not by their Meta name."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext as _


def template_label(name: str) -> str:
    """The configured templates by their role; a template the shop named otherwise keeps its name."""
    roles = {
        settings.WHATSAPP_TEMPLATE_NAME: _("first-contact invitation"),
        settings.WHATSAPP_FOLLOWUP_TEMPLATE_NAME: _("follow-up reminder"),
    }
    return roles.get(name, name)
