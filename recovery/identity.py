"""Who a WhatsApp sender is: the phone, Meta's business-scoped user id (BSUID), and their moves.

Meta identifies a user by phone and by BSUID, and may send only the BSUID for a user with a
username. A message is matched by whichever it carries; a BSUID seen beside a known phone is
kept on that customer, so that a later message carrying the BSUID alone still finds them. A
number change or a new BSUID moves the identity, keeping the opt-out (SPEC §4.5).
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.phones import InvalidPhone, phone_from_wa_id
from recovery.lifecycle import customer_find, customer_number_retire, optout_register
from recovery.models import Customer

logger = logging.getLogger(__name__)


def sender_phone(wa_id: str) -> str:
    """The sender's canonical phone, or "" when the message carries none (or no valid one)."""
    if not wa_id:
        return ""
    try:
        return phone_from_wa_id(wa_id)
    except InvalidPhone:
        return ""


def customer_identity_note(customer: Customer, *, user_id: str, username: str) -> None:
    """Keep the BSUID and username a message carried beside the customer's phone.

    A BSUID another record holds is left where it is (a BSUID-only opt-out): that record's
    opt-out is carried over, so the person stays out whichever way Meta names them next.
    """
    if username and username != customer.whatsapp_username:
        Customer.objects.filter(pk=customer.pk).update(whatsapp_username=username)
        customer.whatsapp_username = username
    if not user_id or customer.whatsapp_user_id == user_id:
        return
    other = Customer.objects.filter(whatsapp_user_id=user_id).exclude(pk=customer.pk).first()
    if other is not None:
        if other.opted_out and not customer.opted_out and customer.phone:
            optout_register(phone=customer.phone, reason=other.opted_out_reason or "keyword")
            customer.refresh_from_db()
        return
    if customer.whatsapp_user_id:
        return  # a changed BSUID arrives as user_id_update or a system notice, not here
    try:
        # A savepoint: a concurrent message noting the same BSUID must not undo this turn.
        with transaction.atomic():
            Customer.objects.filter(pk=customer.pk, whatsapp_user_id__isnull=True).update(
                whatsapp_user_id=user_id
            )
    except IntegrityError:
        logger.info("BSUID already noted by a concurrent message", extra={"customer_id": customer.pk})
        return
    customer.whatsapp_user_id = user_id


def number_change(
    *, old_phone: str, new_phone: str, new_user_id: str, previous_user_id: str
) -> Customer | None:
    """The person changed their WhatsApp number (and Meta gave them a new BSUID).

    The customer moves to the new number in place; queued replies then leave for the new
    number. When another record already holds it, the old record's open work stops instead and
    an opt-out is carried over to the new one. None when Sara never met this person.
    """
    customer = customer_find(phone=old_phone, user_id=previous_user_id)
    if customer is None or not new_phone:
        return customer
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    holder = Customer.objects.filter(phone=new_phone).exclude(pk=customer.pk).first()
    if holder is None:
        customer.phone = new_phone
        fields = ["phone", "updated_at"]
        if (
            new_user_id
            and not Customer.objects.filter(whatsapp_user_id=new_user_id).exclude(pk=customer.pk).exists()
        ):
            customer.whatsapp_user_id = new_user_id
            fields.append("whatsapp_user_id")
        customer.save(update_fields=fields)
        logger.info("customer moved to a new number", extra={"customer_id": customer.pk})
        return customer
    customer_number_retire(customer=customer, now=timezone.now())
    if customer.opted_out and not holder.opted_out:
        optout_register(phone=new_phone, reason=customer.opted_out_reason or "keyword")
    logger.info(
        "customer moved to a number another record holds",
        extra={"customer_id": customer.pk, "holder_id": holder.pk},
    )
    return holder


def user_id_change(*, previous: str, current: str, phone: str) -> Customer | None:
    """Meta gave the person a new BSUID: the customer keeps everything under the new one."""
    customer = customer_find(phone="", user_id=previous) or customer_find(phone=phone, user_id="")
    if customer is None or not current:
        return customer
    holder = Customer.objects.filter(whatsapp_user_id=current).exclude(pk=customer.pk).first()
    if holder is not None:
        # Already known under the new id (a BSUID-only record): the opt-out follows the person.
        if holder.opted_out and not customer.opted_out:
            optout_register(
                phone=customer.phone, whatsapp_user_id=previous, reason=holder.opted_out_reason or "keyword"
            )
        return customer
    Customer.objects.filter(pk=customer.pk).update(whatsapp_user_id=current, updated_at=timezone.now())
    customer.whatsapp_user_id = current
    logger.info("customer's WhatsApp user id changed", extra={"customer_id": customer.pk})
    return customer
