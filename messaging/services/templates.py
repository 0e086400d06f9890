"""Message templates as Meta reports them: its webhooks and `sync_templates` keep each row current."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from messaging import queue
from messaging.models import Message, Template, WebhookEvent
from messaging.whatsapp import TemplateInfo, get_backend
from messaging.whatsapp.events import TemplateEvent

logger = logging.getLogger(__name__)

# Sends waiting because every template of their step was unavailable (messaging.services.outbound).
TEMPLATE_UNAVAILABLE = "template_unavailable"


def template_event_apply(event: TemplateEvent) -> Template:
    """Record Meta's status or quality news about a template; a template back to approved frees
    the sends that waited for it.

    Meta retries and reorders webhooks: news older than what the row holds changes nothing.
    Each piece of news is kept as a WebhookEvent (once, however often Meta repeats it), so ops
    can see when and why a template was paused, applied or not.
    """
    with transaction.atomic():
        template, _ = Template.objects.select_for_update().get_or_create(
            name=event.name, language=event.language or "pt_BR"
        )
        stale = event.at is not None and template.status_at is not None and event.at < template.status_at
        _template_event_keep(event, stale=stale)
        if stale:
            logger.info("stale template news ignored", extra={"template": template.name})
            return template
        fields = {"updated_at"}
        if event.status:
            template.status = event.status
            template.status_reason = event.reason
            fields |= {"status", "status_reason"}
        if event.quality:
            template.quality = event.quality
            fields.add("quality")
        if event.category in Template.Category.values:
            template.category = event.category
            fields.add("category")
        if event.meta_id:
            template.meta_id = event.meta_id
            fields.add("meta_id")
        template.status_at = event.at or timezone.now()
        fields.add("status_at")
        template.save(update_fields=sorted(fields))
        if template.sendable:
            waiting_sends_release()
    logger.info(
        "template news",
        extra={"template": template.name, "status": template.status, "quality": template.quality},
    )
    return template


def _template_event_keep(event: TemplateEvent, *, stale: bool) -> WebhookEvent:
    """The audit row of one template update; Meta's repeat of the same update finds the first."""
    news = event.status or event.quality
    stamp = int(event.at.timestamp()) if event.at is not None else None
    external_id = (
        f"template:{event.name}:{event.language}:{news}:{stamp}"[:200] if stamp is not None else None
    )
    fields = {
        "payload": {"time": stamp, **event.raw},
        "processed": True,
        "outcome": "template_stale" if stale else f"template_{news}"[:30],
    }
    if external_id is None:
        return WebhookEvent.objects.create(type=WebhookEvent.Type.WHATSAPP, **fields)
    kept, _ = WebhookEvent.objects.get_or_create(
        type=WebhookEvent.Type.WHATSAPP, external_id=external_id, defaults=fields
    )
    return kept


def waiting_sends_release() -> int:
    """Sends that waited for an approved template go now (the send path picks the variant)."""
    ids = list(
        Message.objects.filter(
            direction=Message.Direction.OUT, status=Message.Status.PENDING, error_code=TEMPLATE_UNAVAILABLE
        ).values_list("pk", flat=True)[:5000]
    )
    if not ids:
        return 0
    Message.objects.filter(pk__in=ids, status=Message.Status.PENDING).update(send_after=None)
    transaction.on_commit(lambda: _queue_sends(ids), robust=True)
    return len(ids)


def _queue_sends(ids: list[int]) -> None:
    for message_id in ids:
        queue.send_message(message_id)


def templates_sync(*, now: datetime | None = None) -> list[Template]:
    """Read the WhatsApp Business Account's templates from Meta and store what it says of each."""
    now = now or timezone.now()
    infos: list[TemplateInfo] = get_backend().list_templates()
    stored: list[Template] = []
    with transaction.atomic():
        for info in infos:
            template, _ = Template.objects.select_for_update().get_or_create(
                name=info.name, language=info.language
            )
            template.status = info.status if info.status in Template.Status.values else template.status
            template.quality = info.quality if info.quality in Template.Quality.values else template.quality
            if info.category in Template.Category.values:
                template.category = info.category
            template.meta_id = info.meta_id
            template.body = info.body or template.body
            template.buttons = info.quick_replies
            template.status_at = now
            template.save()
            stored.append(template)
        if any(t.sendable for t in stored):
            waiting_sends_release()
    return stored
