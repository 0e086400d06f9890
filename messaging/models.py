"""Conversations, their messages, and the audit of signed webhooks."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from recovery.models import Abandonment, Customer


class Conversation(models.Model):
    class Status(models.TextChoices):
        AWAITING_RESPONSE = "awaiting_response"
        ACTIVE = "active"
        CLOSED = "closed"
        ERROR = "error"

    OPEN_STATUSES = (Status.AWAITING_RESPONSE, Status.ACTIVE, Status.ERROR)

    class CloseReason(models.TextChoices):
        CONVERTED = "converted"
        OPTED_OUT = "opted_out"
        EXPIRED = "expired"
        SUPERSEDED = "superseded"
        MANUAL = "manual"
        RESOLVED = "resolved"  # a person finished the conversation from the back-office
        ERASED = "erased"  # the customer's data was erased (LGPD)

    class HandoffReason(models.TextChoices):
        """Why a conversation waits for a person (SPEC §8)."""

        EXCHANGE_LIMIT = "exchange_limit"
        ASKED_FOR_PERSON = "human"
        PAYMENT_MISMATCH = "payment_mismatch"
        MANUAL = "manual"

    abandonment = models.OneToOneField(Abandonment, on_delete=models.PROTECT, related_name="conversation")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="conversations")
    status = models.CharField(max_length=20, choices=Status, default=Status.AWAITING_RESPONSE)
    close_reason = models.CharField(max_length=200, blank=True)
    message_count = models.PositiveIntegerField(default=0)
    exchanges = models.PositiveSmallIntegerField(default=0)
    needs_human = models.BooleanField(default=False, help_text="Waiting for a person; Sara stays silent.")
    handoff_reason = models.CharField(max_length=20, choices=HandoffReason, blank=True)
    # When the conversation started waiting for a person: the inbox orders by this wait.
    handoff_at = models.DateTimeField(null=True, blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_conversations",
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_user_message_at = models.DateTimeField(null=True, blank=True)
    followup_sent = models.BooleanField(default=False)
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["customer", "status"], name="conversation_customer_status"),
            # Behind sweep_windows: only conversations still open are ever due.
            models.Index(
                fields=["status", "created_at"],
                name="conversation_open_idx",
                condition=Q(status__in=["awaiting_response", "active", "error"]),
            ),
        ]
        constraints = [
            # One open conversation per customer: a new abandonment supersedes the old one.
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(status__in=["awaiting_response", "active", "error"]),
                name="conversation_one_open_per_customer",
            )
        ]

    def __str__(self) -> str:
        return f"Conversation {self.pk} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class Message(models.Model):
    class Direction(models.TextChoices):
        IN = "in"
        OUT = "out"

    class Kind(models.TextChoices):
        TEXT = "text"
        TEMPLATE = "template"
        BUTTON = "button"
        INTERACTIVE = "interactive"
        IMAGE = "image"
        AUDIO = "audio"
        VIDEO = "video"
        DOCUMENT = "document"
        STICKER = "sticker"
        LOCATION = "location"
        CONTACTS = "contacts"
        REACTION = "reaction"
        UNSUPPORTED = "unsupported"

    # Inbound kinds that carry words Sara can read.
    TEXT_KINDS = (Kind.TEXT, Kind.BUTTON, Kind.INTERACTIVE)

    class Status(models.TextChoices):
        RECEIVED = "received"
        PROCESSED = "processed"
        PENDING = "pending"
        SENT = "sent"
        DELIVERED = "delivered"
        READ = "read"
        FAILED = "failed"

    class Purpose(models.TextChoices):
        """Why Sara sends an outbound message; decides which send-time rules apply."""

        FIRST_CONTACT = "first_contact"
        FOLLOWUP = "followup"
        REPLY = "reply"
        FAREWELL = "farewell"
        HANDOFF = "handoff"
        THANK_YOU = "thank_you"

    PROACTIVE_PURPOSES = (Purpose.FIRST_CONTACT, Purpose.FOLLOWUP)

    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.CASCADE, related_name="messages"
    )
    direction = models.CharField(max_length=3, choices=Direction)
    kind = models.CharField(max_length=20, choices=Kind, default=Kind.TEXT)
    purpose = models.CharField(max_length=20, choices=Purpose, blank=True)
    wa_id = models.CharField(max_length=20, blank=True, help_text="The customer's WhatsApp id.")
    text = models.TextField(blank=True)
    whatsapp_message_id = models.CharField(max_length=200, unique=True, null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status)
    error_code = models.CharField(max_length=50, blank=True)
    error_detail = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    intent = models.CharField(max_length=20, blank=True)
    sentiment = models.CharField(max_length=10, blank=True)
    tokens_used = models.PositiveIntegerField(default=0)
    metadata = models.JSONField(default=dict, blank=True)
    # Quiet hours defer a proactive send to this moment instead of dropping it.
    send_after = models.DateTimeField(null=True, blank=True)
    # Set when a worker takes the send; a claim older than the lease is an unknown outcome.
    claimed_at = models.DateTimeField(null=True, blank=True)
    possible_duplicate = models.BooleanField(
        default=False, help_text="Re-sent after a send whose outcome was unknown."
    )
    whatsapp_timestamp = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        # Ops-only admin actions; support staff can read messages but not trigger sends.
        permissions = [
            ("retry_send", "Can retry failed sends"),
            ("redrive_work", "Can re-drive stuck work"),
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
        return f"{self.direction} {self.kind} {self.pk} ({self.status})"

    @property
    def is_proactive(self) -> bool:
        return self.purpose in self.PROACTIVE_PURPOSES


class StatusUpdate(models.Model):
    """A Meta status for a wamid Sara has not stored yet; applied when the wamid appears."""

    whatsapp_message_id = models.CharField(max_length=200, db_index=True)
    status = models.CharField(max_length=10)
    timestamp = models.DateTimeField(null=True, blank=True)
    errors = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["whatsapp_message_id", "status"], name="statusupdate_unique_per_status"
            )
        ]
        # Behind the sweep's purge of statuses older than Meta's retry horizon.
        indexes = [models.Index(fields=["created_at"], name="statusupdate_created")]


class WebhookEvent(models.Model):
    class Type(models.TextChoices):
        ABANDONMENT = "abandonment"
        WHATSAPP = "whatsapp"
        PAYMENT = "payment"
        SOURCE = "source"

    type = models.CharField(max_length=20, choices=Type)
    external_id = models.CharField(max_length=200, null=True, blank=True)
    # The abandonment a payment names: a payment that arrives first is found by it later.
    reference = models.CharField(max_length=200, blank=True, db_index=True)
    payload = models.JSONField(default=dict, blank=True)
    processed = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    # What a platform's event did (SPEC §11): opened, converted, duplicate, skipped...
    # A database default too: the cart path inserts its audit row with plain SQL.
    outcome = models.CharField(max_length=30, blank=True, default="", db_default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
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
        return f"{self.type} {self.external_id or self.pk}"
