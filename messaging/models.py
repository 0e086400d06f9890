"""Messages, the statuses Meta reports for them, the audit of signed webhooks, and templates."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Message(models.Model):
    class Direction(models.TextChoices):
        IN = "in", _("Received")
        OUT = "out", _("Sent")

    class Kind(models.TextChoices):
        TEXT = "text", _("Text")
        TEMPLATE = "template", _("Template")
        BUTTON = "button", _("Button")
        INTERACTIVE = "interactive", _("Interactive")
        IMAGE = "image", _("Image")
        AUDIO = "audio", _("Audio")
        VIDEO = "video", _("Video")
        DOCUMENT = "document", _("Document")
        STICKER = "sticker", _("Sticker")
        LOCATION = "location", _("Location")
        CONTACTS = "contacts", _("Contacts")
        REACTION = "reaction", _("Reaction")
        UNSUPPORTED = "unsupported", _("Unsupported")
        EDIT = "edit", _("Edit")
        REVOKE = "revoke", _("Deleted by the customer")
        SYSTEM = "system", _("WhatsApp notice")
        # Not messages but Meta updates about the person, kept as inbound rows so that they are
        # stored once, processed after commit and re-driven by the sweep like any message.
        PREFERENCES = "user_preferences", _("Marketing preference")
        USER_ID_UPDATE = "user_id_update", _("WhatsApp user id changed")

    # Inbound kinds that carry words Sara can read.
    TEXT_KINDS = (Kind.TEXT, Kind.BUTTON, Kind.INTERACTIVE)
    # Media whose caption is the customer's words; without one, at most one ask for text.
    CAPTIONED_KINDS = (Kind.IMAGE, Kind.VIDEO, Kind.DOCUMENT)
    WORDLESS_KINDS = (Kind.IMAGE, Kind.VIDEO, Kind.DOCUMENT, Kind.LOCATION, Kind.CONTACTS)
    # Stored and shown, never answered nor counted as an exchange (SPEC §4.5).
    NOT_TURN_KINDS = (
        Kind.REACTION,
        Kind.STICKER,
        Kind.EDIT,
        Kind.REVOKE,
        Kind.UNSUPPORTED,
        Kind.SYSTEM,
        Kind.PREFERENCES,
        Kind.USER_ID_UPDATE,
    )

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        PROCESSED = "processed", _("Processed")
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        READ = "read", _("Read")
        FAILED = "failed", _("Failed")

    class Purpose(models.TextChoices):
        """Why Sara sends an outbound message; decides which send-time rules apply."""

        FIRST_CONTACT = "first_contact", _("First contact")
        FOLLOWUP = "followup", _("Follow-up")
        REPLY = "reply", _("Reply")
        FAREWELL = "farewell", _("Farewell")
        HANDOFF = "handoff", _("Hand-off note")
        THANK_YOU = "thank_you", _("Thank-you")
        STAFF_REPLY = "staff_reply", _("Staff reply")  # a person, in the back-office or through the API

    PROACTIVE_PURPOSES = (Purpose.FIRST_CONTACT, Purpose.FOLLOWUP)
    # What Sara says on her own; a conversation waiting for a person hears none of it (SPEC §8).
    SARA_PURPOSES = (Purpose.FIRST_CONTACT, Purpose.FOLLOWUP, Purpose.REPLY)

    # The recovery's conversation, by name: messaging imports no recovery module.
    conversation = models.ForeignKey(
        "recovery.Conversation",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="messages",
        verbose_name=_("conversation"),
    )
    direction = models.CharField(max_length=3, choices=Direction, verbose_name=_("direction"))
    kind = models.CharField(max_length=20, choices=Kind, default=Kind.TEXT, verbose_name=_("kind"))
    purpose = models.CharField(max_length=20, choices=Purpose, blank=True, verbose_name=_("purpose"))
    wa_id = models.CharField(
        max_length=20, blank=True, help_text=_("The customer's WhatsApp id."), verbose_name=_("WhatsApp id")
    )
    text = models.TextField(blank=True, verbose_name=_("text"))
    whatsapp_message_id = models.CharField(
        max_length=200, unique=True, null=True, blank=True, verbose_name=_("WhatsApp message id")
    )
    status = models.CharField(max_length=10, choices=Status, verbose_name=_("status"))
    error_code = models.CharField(max_length=50, blank=True, verbose_name=_("error code"))
    error_detail = models.TextField(blank=True, verbose_name=_("error detail"))
    attempts = models.PositiveSmallIntegerField(default=0, verbose_name=_("attempts"))
    intent = models.CharField(max_length=20, blank=True, verbose_name=_("intent"))
    sentiment = models.CharField(max_length=10, blank=True, verbose_name=_("sentiment"))
    tokens_used = models.PositiveIntegerField(default=0, verbose_name=_("tokens used"))
    # Defaults in the database too, so that a plain INSERT may leave these columns out
    # (messaging.sql builds its statements from the fields and their defaults).
    # The chat model that spent tokens_used, priced by SARA_MODEL_PRICES_USD.
    ai_model = models.CharField(max_length=100, blank=True, default="", db_default="")
    # Meta's `pricing` block from this message's status webhooks (SPEC §13); null/blank until
    # one arrives (the console backend and Meta's older statuses send none).
    pricing_billable = models.BooleanField(null=True, blank=True)
    pricing_category = models.CharField(max_length=40, blank=True, default="", db_default="")
    pricing_model = models.CharField(max_length=10, blank=True, default="", db_default="")
    pricing_type = models.CharField(max_length=40, blank=True, default="", db_default="")
    metadata = models.JSONField(default=dict, blank=True, verbose_name=_("metadata"))
    # Quiet hours defer a proactive send to this moment instead of dropping it.
    send_after = models.DateTimeField(null=True, blank=True, verbose_name=_("send after"))
    # Set when a worker takes the send; a claim older than the lease is an unknown outcome.
    claimed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("claimed at"))
    possible_duplicate = models.BooleanField(
        default=False,
        help_text=_(
            "Re-sent after a send whose outcome was unknown: the customer may have received it twice."
        ),
        verbose_name=_("possibly sent twice"),
    )
    # The staff member who wrote a staff reply; the transcript shows their name.
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="staff_messages",
        verbose_name=_("sent by"),
    )
    whatsapp_timestamp = models.DateTimeField(null=True, blank=True, verbose_name=_("WhatsApp timestamp"))
    sent_at = models.DateTimeField(null=True, blank=True, verbose_name=_("sent at"))
    delivered_at = models.DateTimeField(null=True, blank=True, verbose_name=_("delivered at"))
    read_at = models.DateTimeField(null=True, blank=True, verbose_name=_("read at"))
    failed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("failed at"))
    # Ops looked at a failed send and decided nothing more is to be done: it leaves their list.
    dismissed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("dismissed at"))
    processed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("processed at"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        # Ops-only admin actions; support staff can read messages but not trigger sends.
        permissions = [
            ("retry_send", _("Can retry failed sends")),
            ("redrive_work", _("Can re-drive stuck work")),
        ]
        indexes = [
            models.Index(fields=["conversation", "created_at"], name="message_conversation_created"),
            # Behind sweep_stuck: the due work is a handful of rows in a large table.
            models.Index(
                fields=["created_at"],
                name="message_inbound_unprocessed",
                condition=Q(direction="in", status="received"),
            ),
            models.Index(
                fields=["created_at"],
                name="message_outbound_pending",
                condition=Q(direction="out", status="pending"),
            ),
            models.Index(fields=["failed_at"], name="message_failed", condition=Q(status="failed")),
        ]

    def __str__(self) -> str:
        return str(
            _("Message %(id)s, %(direction)s: %(kind)s (%(status)s)")
            % {
                "direction": self.get_direction_display().lower(),
                "id": self.pk,
                "kind": self.get_kind_display().lower(),
                "status": self.get_status_display().lower(),
            }
        )

    @property
    def is_proactive(self) -> bool:
        return self.purpose in self.PROACTIVE_PURPOSES


class StatusUpdate(models.Model):
    """A Meta status for a wamid Sara has not stored yet; applied when the wamid appears."""

    whatsapp_message_id = models.CharField(
        max_length=200, db_index=True, verbose_name=_("WhatsApp message id")
    )
    status = models.CharField(max_length=10, verbose_name=_("status"))
    timestamp = models.DateTimeField(null=True, blank=True, verbose_name=_("timestamp"))
    errors = models.JSONField(default=list, blank=True, verbose_name=_("errors"))
    pricing = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("early status update")
        verbose_name_plural = _("early status updates")
        constraints = [
            models.UniqueConstraint(
                fields=["whatsapp_message_id", "status"], name="statusupdate_unique_per_status"
            )
        ]
        # Behind the sweep's purge of statuses older than Meta's retry horizon.
        indexes = [models.Index(fields=["created_at"], name="statusupdate_created")]


class WebhookEvent(models.Model):
    class Type(models.TextChoices):
        ABANDONMENT = "abandonment", _("Abandonment")
        WHATSAPP = "whatsapp", _("WhatsApp")
        PAYMENT = "payment", _("Payment")
        SOURCE = "source", _("Checkout platform")

    type = models.CharField(max_length=20, choices=Type, verbose_name=_("type"))
    external_id = models.CharField(max_length=200, null=True, blank=True, verbose_name=_("external id"))
    # The abandonment a payment names: a payment that arrives first is found by it later.
    reference = models.CharField(max_length=200, blank=True, db_index=True, verbose_name=_("reference"))
    payload = models.JSONField(default=dict, blank=True, verbose_name=_("payload"))
    processed = models.BooleanField(default=False, verbose_name=_("processed"))
    error = models.TextField(blank=True, verbose_name=_("error"))
    # What a platform's event did (SPEC §11): opened, converted, duplicate, skipped...
    # A database default too: the cart path inserts its audit row with plain SQL.
    outcome = models.CharField(
        max_length=30, blank=True, default="", db_default="", verbose_name=_("outcome")
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        constraints = [
            models.UniqueConstraint(
                fields=["type", "external_id"],
                condition=Q(external_id__isnull=False),
                name="webhookevent_unique_external_id",
            )
        ]
        indexes = [
            models.Index(
                fields=["created_at"],
                name="webhookevent_unprocessed",
                condition=Q(processed=False, type="whatsapp"),
            ),
            # A platform's events, found by the prefix of their reference ("shopify:...").
            models.Index(
                fields=["reference"],
                name="webhookevent_source_ref",
                opclasses=["varchar_pattern_ops"],
                condition=Q(type="source"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_type_display()} {self.external_id or self.pk}"


class Template(models.Model):
    """A WhatsApp message template as Meta last reported it (SPEC §15).

    Kept current by Meta's `message_template_status_update` and `message_template_quality_update`
    webhooks and by `manage.py sync_templates`. A template Sara has never heard about from Meta
    is taken as approved: that is how a shop sent it before Sara tracked templates at all.
    """

    class Category(models.TextChoices):
        MARKETING = "marketing", _("Marketing")
        UTILITY = "utility", _("Utility")
        AUTHENTICATION = "authentication", _("Authentication")

    class Status(models.TextChoices):
        APPROVED = "approved", _("Approved")
        PENDING = "pending", _("In review")
        REJECTED = "rejected", _("Rejected")
        PAUSED = "paused", _("Paused")
        DISABLED = "disabled", _("Disabled")
        FLAGGED = "flagged", _("Flagged")
        IN_APPEAL = "in_appeal", _("In appeal")
        ARCHIVED = "archived", _("Archived")
        DELETED = "deleted", _("Deleted")
        PENDING_DELETION = "pending_deletion", _("Being deleted")
        LIMIT_EXCEEDED = "limit_exceeded", _("Template limit reached")
        LOCKED = "locked", _("Locked")

    # Meta accepts sends of these: FLAGGED is a warning before a pause, LOCKED only stops edits.
    SENDABLE = (Status.APPROVED, Status.FLAGGED, Status.LOCKED)

    class Quality(models.TextChoices):
        GREEN = "green", _("High")
        YELLOW = "yellow", _("Medium")
        RED = "red", _("Low")
        UNKNOWN = "unknown", _("Not rated yet")

    name = models.CharField(max_length=512, verbose_name=_("name"))
    language = models.CharField(max_length=20, default="pt_BR", verbose_name=_("language"))
    category = models.CharField(
        max_length=20, choices=Category, default=Category.MARKETING, verbose_name=_("category")
    )
    status = models.CharField(
        max_length=20, choices=Status, default=Status.APPROVED, verbose_name=_("status")
    )
    quality = models.CharField(
        max_length=10, choices=Quality, default=Quality.UNKNOWN, verbose_name=_("quality")
    )
    # Meta's words on the last change ("FIRST_PAUSE: paused for 3 hours…", a rejection reason).
    status_reason = models.CharField(max_length=500, blank=True, verbose_name=_("reason"))
    # When Meta made the change last applied: webhooks arrive out of order, an older one is ignored.
    status_at = models.DateTimeField(null=True, blank=True, verbose_name=_("status changed at"))
    meta_id = models.CharField(max_length=40, blank=True, verbose_name=_("Meta template id"))
    body = models.TextField(
        blank=True,
        help_text=_("The approved body text; {{1}} is the first name, {{2}} the product."),
        verbose_name=_("body text"),
    )
    # The template's quick-reply buttons as approved by Meta, in order: Sara sends a payload
    # for each so a tap reads as an intent.
    buttons = models.JSONField(default=list, blank=True, verbose_name=_("quick-reply buttons"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        ordering = ["name", "language"]
        verbose_name = _("WhatsApp template")
        verbose_name_plural = _("WhatsApp templates")
        constraints = [
            models.UniqueConstraint(fields=["name", "language"], name="template_unique_name_language")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.language})"

    @property
    def sendable(self) -> bool:
        return self.status in self.SENDABLE
