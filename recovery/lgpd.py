"""LGPD requests (SPEC §14): find the person a phone names (erased records included), export
everything Sara stores about them, and erase every copy of it.

A person's data is spread over many rows: the customer, their carts' external ids, their
messages (texts, WhatsApp ids, profile names, wamids), the platforms' cart rows, the raw
webhook payloads of every type (a checkout's, a platform's with e-mail and CPF, a Meta batch
that also carries other people's messages) and the admin's history. `person_find` gathers
them once; the export reads that, and the erasure scrubs it. What an erased identity becomes
(a keyed digest) is policy (`compliance.lgpd`); closing what is open is the lifecycle's.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Model, Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from compliance.gate import Reason
from compliance.lgpd import erased_id, is_erased, phone_digest
from core.phones import InvalidPhone, normalize_phone
from messaging.models import Message, StatusUpdate, WebhookEvent
from recovery import lifecycle
from recovery.models import Abandonment, Conversation, Customer, SourceCheckout

logger = logging.getLogger(__name__)


def customer_for_phone(phone: str) -> Customer | None:
    """The customer with this phone, or the erased record that keeps it blocked."""
    return (
        Customer.objects.filter(phone__in=[phone, phone_digest(phone)])
        .order_by("-opted_out", "-created_at")
        .first()
    )


def customer_for_request(raw_phone: str) -> Customer:
    """The customer a data-subject request names, by a phone typed any way; ValueError if none."""
    try:
        phone = normalize_phone(raw_phone)
    except InvalidPhone as exc:
        raise ValueError(f"Not a valid phone number: {exc}") from exc
    customer = customer_for_phone(phone)
    if customer is None:
        raise ValueError("No customer with this phone.")
    return customer


@dataclass(frozen=True)
class PhoneCheck:
    """What Sara knows about a typed phone number, for support answering "is it blocked?"."""

    phone: str  # the canonical E.164 form of what was typed
    customer: Customer | None

    @property
    def blocked(self) -> bool:
        # An erased person is never contacted again, opted out or not (SPEC §14).
        return bool(self.customer and (self.customer.opted_out or is_erased(self.customer)))

    @property
    def erased(self) -> bool:
        return bool(self.customer and is_erased(self.customer))


def phone_check(*, raw_phone: str) -> PhoneCheck:
    """Look a typed phone up, erased records included (by the keyed digest: no phone is stored).

    Raises ValueError for something that is not a phone number.
    """
    try:
        phone = normalize_phone(raw_phone)
    except InvalidPhone as exc:
        raise ValueError(str(exc)) from exc
    return PhoneCheck(phone=phone, customer=customer_for_phone(phone))


# --- identities ---------------------------------------------------------------------------------


def identity_digests(customer: Customer) -> dict[str, str]:
    """The customer's identities, each as the keyed digest an erased record keeps in its place.

    The one list of the identities a person is recognised by: a new cart or message from any of
    them finds the erased record and is refused. Another identity (the WhatsApp BSUID) is one
    more entry here, keyed the same way.
    """
    digests = {}
    if customer.phone:
        digests["phone"] = phone_digest(customer.phone)
    if customer.whatsapp_user_id:
        digests["whatsapp_user_id"] = phone_digest(customer.whatsapp_user_id)
    return digests


def phone_forms(phone: str) -> set[str]:
    """The digit strings a phone takes in payloads: with and without the country code, and for
    a Brazilian mobile with and without the ninth digit (WhatsApp ids often lack it)."""
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return {"".join(ch for ch in phone if ch.isdigit())}
    country = str(number.country_code)
    national = str(number.national_number)
    nationals = {national}
    if number.country_code == 55 and len(national) == 11 and national[2] == "9":
        nationals.add(national[:2] + national[3:])
    return nationals | {country + n for n in nationals}


# Keys under which the platforms' payloads carry a buyer's e-mail, document and name.
_EMAIL_KEY = re.compile(r"e-?mail", re.I)
_DOCUMENT_KEYS = {"document", "cpf", "cnpj", "doc", "document_number", "documentnumber", "tax_id"}
_NAME_KEYS = {"name", "full_name", "first_name", "last_name", "customer_name", "buyer_name", "nome"}


@dataclass
class Person:
    """Everything that names one person, and the rows that hold their data."""

    customer: Customer
    phones: set[str]  # digit forms (phone_forms)
    emails: set[str] = field(default_factory=set)
    documents: set[str] = field(default_factory=set)  # digits only
    names: set[str] = field(default_factory=set)
    profile_names: set[str] = field(default_factory=set)
    abandonment_ids: list[int] = field(default_factory=list)
    conversation_ids: list[int] = field(default_factory=list)
    message_ids: list[int] = field(default_factory=list)
    source_checkout_ids: list[int] = field(default_factory=list)
    # Raw webhook events holding their data: the event and, for a Meta batch, only their part.
    events: list[tuple[WebhookEvent, Any]] = field(default_factory=list)

    def mentioned_in(self, value: Any) -> bool:
        """Whether any text in `value` is one of this person's phones, e-mails or documents."""
        for text in _strings(value):
            if "@" in text and text.strip().lower() in self.emails:
                return True
            digits = "".join(ch for ch in text if ch.isdigit())
            if digits and (digits in self.phones or digits in self.documents):
                return True
        return False

    def is_wa_id(self, value: Any) -> bool:
        return isinstance(value, (str, int)) and str(value) in self.phones


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, (str, int)) and not isinstance(value, bool):
        yield str(value)


def _collect_identity(person: Person, value: Any) -> None:
    """The e-mails, documents and names a platform's payload gives for its (one) buyer."""
    if isinstance(value, list):
        for item in value:
            _collect_identity(person, item)
        return
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        if isinstance(item, (dict, list)):
            _collect_identity(person, item)
            continue
        if not isinstance(item, str) or not item.strip():
            continue
        lowered = key.lower()
        if _EMAIL_KEY.search(lowered) and "@" in item:
            person.emails.add(item.strip().lower())
        elif lowered in _DOCUMENT_KEYS:
            digits = "".join(ch for ch in item if ch.isdigit())
            if len(digits) >= 11:  # a CPF (11) or CNPJ (14); anything shorter would match too much
                person.documents.add(digits)
        elif lowered in _NAME_KEYS:
            person.names.add(item.strip())


def person_find(customer: Customer) -> Person:
    """Gather every row and raw payload that holds this person's data."""
    person = Person(
        customer=customer,
        phones=phone_forms(customer.phone) if customer.phone and not is_erased(customer) else set(),
    )
    if customer.name:
        person.names.add(customer.name)
    person.abandonment_ids = list(Abandonment.objects.filter(customer=customer).values_list("pk", flat=True))
    person.conversation_ids = list(
        Conversation.objects.filter(customer=customer).values_list("pk", flat=True)
    )
    messages = Message.objects.filter(Q(conversation_id__in=person.conversation_ids))
    if person.phones:
        # Messages from their number that never reached a conversation are theirs too.
        messages = Message.objects.filter(
            Q(conversation_id__in=person.conversation_ids)
            | Q(conversation__isnull=True, wa_id__in=person.phones)
        )
    for pk, wa_id, metadata in messages.values_list("pk", "wa_id", "metadata"):
        person.message_ids.append(pk)
        if wa_id:
            person.phones.add(wa_id)
        profile = (metadata or {}).get("profile_name")
        if profile:
            person.profile_names.add(profile)
    carts = SourceCheckout.objects.filter(abandonment_id__in=person.abandonment_ids)
    person.source_checkout_ids = list(carts.values_list("pk", flat=True))
    person.events = _person_events(person)
    return person


def _person_events(person: Person) -> list[tuple[WebhookEvent, Any]]:
    """The raw webhook events that hold this person's data, with their part of each."""
    abandonments = list(
        Abandonment.objects.filter(pk__in=person.abandonment_ids).values_list("external_id", "payment_id")
    )
    external_ids = {external_id for external_id, _ in abandonments}
    payment_ids = {payment_id for _, payment_id in abandonments if payment_id}
    source_refs = {
        f"{platform}:{checkout_id}"
        for platform, checkout_id in SourceCheckout.objects.filter(
            pk__in=person.source_checkout_ids
        ).values_list("platform", "checkout_id")
    }
    linked = (
        Q(type=WebhookEvent.Type.ABANDONMENT, external_id__in=external_ids)
        | Q(type=WebhookEvent.Type.PAYMENT, reference__in=external_ids)
        | Q(type=WebhookEvent.Type.PAYMENT, external_id__in=payment_ids)
        | Q(type=WebhookEvent.Type.SOURCE, reference__in=source_refs)
    )
    found: dict[int, tuple[WebhookEvent, Any]] = {}
    for event in WebhookEvent.objects.filter(linked).exclude(type=WebhookEvent.Type.WHATSAPP):
        # A checkout or platform payload is about one buyer: its e-mail and CPF find the
        # person's other events (an order paid with the same e-mail, a later cart).
        _collect_identity(person, event.payload)
        found[event.pk] = (event, event.payload)
    if not person.phones and not person.emails and not person.documents:
        return list(found.values())
    # Any other payload that names them: narrowed in the database by text, confirmed here.
    needles = {phone[-4:] for phone in person.phones} | person.emails | person.documents
    as_text = Q()
    for needle in needles:
        as_text |= Q(payload_text__icontains=needle)
    candidates = (
        WebhookEvent.objects.alias(payload_text=Cast("payload", TextField()))
        .filter(as_text)
        .exclude(pk__in=found)
    )
    for event in candidates.iterator(chunk_size=200):
        if event.type == WebhookEvent.Type.WHATSAPP:
            part = _whatsapp_part(event.payload, person)
            if part is not None:
                found[event.pk] = (event, part)
        elif person.mentioned_in(event.payload):
            _collect_identity(person, event.payload)
            found[event.pk] = (event, event.payload)
    return sorted(found.values(), key=lambda pair: pair[0].pk)


# Where Meta's webhook names a person: the contact (wa_id, profile name, BSUID), a message's
# sender, a status's recipient.
_META_LISTS = {"contacts": "wa_id", "messages": "from", "statuses": "recipient_id"}


def _meta_values(payload: Any) -> Iterator[dict[str, Any]]:
    if not isinstance(payload, dict):
        return
    for entry in payload.get("entry") or []:
        if not isinstance(entry, dict):
            continue
        for change in entry.get("changes") or []:
            value = change.get("value") if isinstance(change, dict) else None
            if isinstance(value, dict):
                yield value


def _whatsapp_part(payload: Any, person: Person) -> Any:
    """This person's contacts, messages and statuses in a Meta body, or None when it has none.

    A body Meta's shape does not fit (kept unparsed) is theirs whole if it names them.
    """
    part: dict[str, list[Any]] = {}
    for value in _meta_values(payload):
        for key, id_field in _META_LISTS.items():
            items = value.get(key)
            if isinstance(items, list):
                part.setdefault(key, []).extend(
                    item for item in items if isinstance(item, dict) and person.is_wa_id(item.get(id_field))
                )
    part = {key: items for key, items in part.items() if items}
    if part:
        for contact in part.get("contacts", []):
            profile = contact.get("profile")
            if isinstance(profile, dict) and profile.get("name"):
                person.profile_names.add(str(profile["name"]))
        return part
    if not any(True for _ in _meta_values(payload)) and person.mentioned_in(payload):
        return payload
    return None


def _without_person(payload: Any, person: Person) -> Any:
    """A Meta body with this person's contacts, messages and statuses taken out; everyone else's
    stay as Meta sent them (a batch not yet fanned out still delivers them)."""
    if not any(True for _ in _meta_values(payload)):
        return {"erased": True}
    for value in _meta_values(payload):
        for key, id_field in _META_LISTS.items():
            items = value.get(key)
            if isinstance(items, list):
                value[key] = [
                    item
                    for item in items
                    if not (isinstance(item, dict) and person.is_wa_id(item.get(id_field)))
                ]
    return payload


# --- export ---------------------------------------------------------------------------------------


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def customer_export(*, customer: Customer) -> dict[str, Any]:
    """Everything stored about one person, as JSON-ready data (the data subject's copy).

    Raw events are included as Sara keeps them; of a Meta batch, only this person's part.
    """
    person = person_find(customer)
    abandonments = Abandonment.objects.filter(pk__in=person.abandonment_ids).select_related("product")
    conversations = Conversation.objects.filter(pk__in=person.conversation_ids).prefetch_related("messages")
    loose = Message.objects.filter(pk__in=person.message_ids, conversation__isnull=True)
    return {
        "exported_at": timezone.now().isoformat(),
        "customer": {
            "phone": customer.phone,
            "name": customer.name,
            "names": sorted(person.names),
            "emails": sorted(person.emails),
            "documents": sorted(person.documents),
            "whatsapp_profile_names": sorted(person.profile_names),
            "opted_out": customer.opted_out,
            "opted_out_at": _iso(customer.opted_out_at),
            "opted_out_reason": customer.opted_out_reason,
            "opt_out_note": customer.opt_out_note,
            "created_at": customer.created_at.isoformat(),
        },
        "abandonments": [
            {
                "abandonmentId": a.external_id,
                "userId": a.external_user_id,
                "productId": a.external_product_id,
                "product": a.product.name if a.product else None,
                "value": f"{a.value:.2f}",
                "payment_link": a.payment_link,
                "status": a.status,
                "discount_offers": a.discount_offers,
                "quotes": a.quotes,
                "payment_id": a.payment_id,
                "paid_amount": f"{a.paid_amount:.2f}" if a.paid_amount is not None else None,
                "converted_at": _iso(a.converted_at),
                "created_at": a.created_at.isoformat(),
            }
            for a in abandonments
        ],
        "conversations": [
            {
                "id": c.pk,
                "status": c.status,
                "close_reason": c.close_reason,
                "created_at": c.created_at.isoformat(),
                "messages": [_message_export(m) for m in c.messages.all()],
            }
            for c in conversations
        ],
        "messages_without_conversation": [_message_export(m) for m in loose],
        "raw_events": [
            {
                "type": event.type,
                "external_id": event.external_id,
                "created_at": event.created_at.isoformat(),
                "payload": part,
            }
            for event, part in person.events
        ],
    }


def _message_export(m: Message) -> dict[str, Any]:
    return {
        "direction": m.direction,
        "kind": m.kind,
        "text": m.text,
        "whatsapp_id": m.wa_id,
        "profile_name": (m.metadata or {}).get("profile_name", ""),
        "status": m.status,
        "intent": m.intent,
        "sentiment": m.sentiment,
        "sent_by": m.sent_by.get_username() if m.sent_by_id and m.sent_by else None,
        "created_at": m.created_at.isoformat(),
    }


# --- erasure --------------------------------------------------------------------------------------


def _kept_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """What the money page reads of a message, and nothing that names or quotes the person."""
    kept: dict[str, Any] = {}
    template = metadata.get("template")
    if isinstance(template, dict):
        # The template's name stays for the per-variant figures; its parameters hold a first name.
        kept["template"] = {k: template[k] for k in ("name", "language") if k in template}
    if "tokens" in metadata:
        kept["tokens"] = metadata["tokens"]
    return kept


@transaction.atomic
def customer_erase(*, customer: Customer, reason: str = "") -> Customer:
    """Erase every copy of a person's data (SPEC §14), keeping the figures and their block.

    Their identities become keyed digests (`identity_digests`), so a new cart or message from
    them is still recognised and refused; carts, values, conversions and message counts stay.
    The customer row is locked first: a send already leaving holds it (messaging.services
    .outbound), so nothing reaches Meta after the erasure commits.
    """
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if is_erased(customer):
        return customer
    now = timezone.now()
    person = person_find(customer)
    _messages_erase(person, now=now)
    _carts_erase(person)
    _events_erase(person)
    lifecycle.conversations_erase(conversation_ids=person.conversation_ids, now=now)
    lifecycle.customer_erased(customer=customer, digests=identity_digests(customer), reason=reason, now=now)
    # Last: the history's labels are written from the rows as they now read.
    _history_erase(person)
    logger.info("customer erased", extra={"customer_id": customer.pk, "opted_out": customer.opted_out})
    return customer


def _messages_erase(person: Person, *, now: Any) -> None:
    messages = list(Message.objects.filter(pk__in=person.message_ids))
    wamids = [m.whatsapp_message_id for m in messages if m.whatsapp_message_id]
    for message in messages:
        message.text = ""
        message.wa_id = ""
        message.error_detail = ""
        message.metadata = _kept_metadata(message.metadata or {})
        if message.whatsapp_message_id:
            # A wamid encodes the phone (base64); its digest keeps "sent once" and its uniqueness.
            message.whatsapp_message_id = erased_id(message.whatsapp_message_id)
        if message.direction == Message.Direction.OUT and message.status == Message.Status.PENDING:
            # Queued before the erasure: never sent (the send-time gate is the second line).
            message.status = Message.Status.FAILED
            message.error_code = Reason.ERASED
            message.failed_at = now
            message.claimed_at = None
    Message.objects.bulk_update(
        messages,
        [
            "text",
            "wa_id",
            "error_detail",
            "metadata",
            "whatsapp_message_id",
            "status",
            "error_code",
            "failed_at",
            "claimed_at",
        ],
        batch_size=500,
    )
    StatusUpdate.objects.filter(whatsapp_message_id__in=wamids).delete()


def _carts_erase(person: Person) -> None:
    abandonments = list(Abandonment.objects.filter(pk__in=person.abandonment_ids))
    for abandonment in abandonments:
        abandonment.external_id = erased_id(abandonment.external_id)
        abandonment.external_user_id = ""
        # A checkout link often carries the buyer's cart token: it opens their cart.
        abandonment.payment_link = ""
        if abandonment.payment_id:
            abandonment.payment_id = erased_id(abandonment.payment_id)
    Abandonment.objects.bulk_update(
        abandonments, ["external_id", "external_user_id", "payment_link", "payment_id"], batch_size=500
    )
    carts = list(SourceCheckout.objects.filter(pk__in=person.source_checkout_ids))
    for cart in carts:
        cart.checkout_id = erased_id(cart.checkout_id)
        cart.token = cart.phone = cart.name = cart.link = ""
    SourceCheckout.objects.bulk_update(
        carts, ["checkout_id", "token", "phone", "name", "link"], batch_size=500
    )


def _events_erase(person: Person) -> None:
    for event, _part in person.events:
        if event.type == WebhookEvent.Type.WHATSAPP:
            event.payload = _without_person(event.payload, person)
        else:
            event.payload = {"erased": True}
            if event.external_id:
                platform, _, _ = event.external_id.partition(":")
                # A platform's events stay listed under it (the Sources page reads the prefix).
                prefix = f"{platform}:" if event.type == WebhookEvent.Type.SOURCE else ""
                event.external_id = prefix + erased_id(event.external_id)
            if event.reference:
                platform, sep, _ = event.reference.partition(":")
                event.reference = f"{platform}{sep}" if event.type == WebhookEvent.Type.SOURCE else ""
        if person.mentioned_in(event.error):
            event.error = ""
    WebhookEvent.objects.bulk_update(
        [event for event, _ in person.events],
        ["payload", "external_id", "reference", "error"],
        batch_size=200,
    )


def _history_erase(person: Person) -> None:
    """The admin's history names objects as they read then ("Maria (+55XXXXXXX881)"): each entry
    about this person's rows is relabelled as they read now, and any free text dropped."""
    rows: list[tuple[type[Model], list[int]]] = [
        (Customer, [person.customer.pk]),
        (Abandonment, person.abandonment_ids),
        (Conversation, person.conversation_ids),
        (Message, person.message_ids),
        (SourceCheckout, person.source_checkout_ids),
        (WebhookEvent, [event.pk for event, _ in person.events]),
    ]
    for model, ids in rows:
        if not ids:
            continue
        content_type = ContentType.objects.get_for_model(model)
        labels = {str(obj.pk): str(obj)[:200] for obj in model._default_manager.filter(pk__in=ids)}
        entries = list(LogEntry.objects.filter(content_type=content_type, object_id__in=list(labels)))
        for entry in entries:
            entry.object_repr = labels[str(entry.object_id)]
            # Django's own change messages are JSON lists of field names; anything else was
            # typed by a person (a reason, a note) and may name the customer.
            if not entry.change_message.startswith("["):
                entry.change_message = ""
        LogEntry.objects.bulk_update(entries, ["object_repr", "change_message"], batch_size=500)
