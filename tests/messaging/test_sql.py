"""Each statement of messaging/sql.py against the ORM query it replaces (SPEC §12).

Every case runs the statement and its ORM equivalent on the same rows, each inside a
savepoint rolled back afterwards, and compares what they return and the rows they leave.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper, F, Q
from django.forms.models import model_to_dict
from django.utils import timezone

from messaging import sql
from messaging.models import Message, StatusUpdate, WebhookEvent
from messaging.statuses import FORWARD_FROM
from tests.factories import InboundMessageFactory, OutboundMessageFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

NOW = timezone.now().replace(microsecond=0)
S = Message.Status


def _rows() -> list[dict[str, Any]]:
    return list(Message.objects.order_by("pk").values())


def effect(run: Callable[[], Any]) -> tuple[Any, list[dict[str, Any]]]:
    """What `run` returns and the messages it leaves, undone afterwards."""
    point = transaction.savepoint()
    try:
        return run(), _rows()
    finally:
        transaction.savepoint_rollback(point)


@pytest.fixture
def messages() -> list[Message]:
    """Outbound messages in every state a statement may meet, and an inbound one."""
    conversation = OutboundMessageFactory().conversation
    made = [Message.objects.get()]
    lease = timedelta(seconds=120)
    for i, fields in enumerate(
        [
            {"claimed_at": NOW - timedelta(seconds=5)},
            {"claimed_at": NOW - 2 * lease, "possible_duplicate": False},
            {"send_after": NOW + timedelta(seconds=30)},
            {"send_after": NOW - timedelta(seconds=30), "attempts": 2},
            {"status": S.PENDING, "whatsapp_message_id": "wamid.pending"},
            *({"status": status, "whatsapp_message_id": f"wamid.{status}"} for status in FORWARD_FROM),
            {"status": S.DELIVERED, "whatsapp_message_id": "wamid.dup", "delivered_at": NOW},
        ]
    ):
        made.append(OutboundMessageFactory(conversation=conversation, text=f"m{i}", **fields))
    made.append(InboundMessageFactory(whatsapp_message_id="wamid.in"))
    StatusUpdate.objects.create(whatsapp_message_id="wamid.kept", status=S.DELIVERED)
    return made


@pytest.mark.parametrize("due_only", [False, True], ids=["retrying", "due"])
def test_send_claim_does_what_the_orm_update_does(messages: list[Message], due_only: bool) -> None:
    stale = NOW - timedelta(seconds=120)

    def orm(message_id: int) -> bool:
        claimable = Message.objects.filter(
            Q(claimed_at=None) | Q(claimed_at__lt=stale),
            pk=message_id,
            direction=Message.Direction.OUT,
            status=S.PENDING,
            whatsapp_message_id=None,
        )
        if due_only:
            claimable = claimable.filter(Q(send_after=None) | Q(send_after__lte=NOW))
        return bool(
            claimable.update(
                claimed_at=NOW,
                attempts=F("attempts") + 1,
                possible_duplicate=ExpressionWrapper(
                    Q(claimed_at__isnull=False) | Q(possible_duplicate=True), output_field=BooleanField()
                ),
            )
        )

    claimed = 0
    for message in messages:
        raw = effect(
            lambda m=message: sql.send_claim(message_id=m.pk, now=NOW, stale=stale, due_only=due_only)
        )
        assert raw == effect(lambda m=message: orm(m.pk))
        claimed += raw[0]
    assert claimed == (3 if due_only else 4)  # the cases differ, so the comparison means something


@pytest.mark.parametrize("early", [False, True], ids=["sent", "sent-early"])
@pytest.mark.parametrize("wamid", ["wamid.new", "wamid.kept"])
def test_message_sent_does_what_the_orm_update_does(messages: list[Message], early: bool, wamid: str) -> None:
    message = messages[1]
    statement = sql.message_sent_early if early else sql.message_sent

    def orm() -> bool | int:
        changed = Message.objects.filter(pk=message.pk).update(
            whatsapp_message_id=wamid,
            status=S.SENT,
            sent_at=NOW,
            claimed_at=None,
            send_after=None,
            error_code="",
            error_detail="",
        )
        return StatusUpdate.objects.filter(whatsapp_message_id=wamid).exists() if early else changed

    raw = effect(lambda: statement(message_id=message.pk, wamid=wamid, sent_at=NOW))
    assert raw == effect(orm)
    assert raw[1] != _rows()


PRICING = {
    "pricing_billable": True,
    "pricing_category": "utility",
    "pricing_model": "PMP",
    "pricing_type": "regular",
}


@pytest.mark.parametrize("priced", [False, True], ids=["plain", "priced"])
@pytest.mark.parametrize("status", list(FORWARD_FROM))
def test_message_forward_does_what_the_orm_update_does(
    messages: list[Message], status: str, priced: bool
) -> None:
    values: dict[str, Any] = {f"{status}_at": NOW}
    if status == S.FAILED:
        values |= {"error_code": "131026", "error_detail": "Message undeliverable"}
    if priced:
        values |= PRICING
    for wamid in [m.whatsapp_message_id for m in messages if m.whatsapp_message_id] + ["wamid.unknown"]:

        def orm(wamid: str = wamid) -> list[tuple[Any, ...]] | int:
            moving = Message.objects.filter(
                whatsapp_message_id=wamid, direction=Message.Direction.OUT, status__in=FORWARD_FROM[status]
            )
            ids = list(moving.values_list("pk", flat=True))
            changed = moving.update(status=status, **values)
            if not priced:
                return changed
            return list(Message.objects.filter(pk__in=ids).values_list("delivered_at", *sql.PRICING_FIELDS))

        raw = effect(
            lambda wamid=wamid: sql.message_forward(
                wamid=wamid, status=status, allowed=FORWARD_FROM[status], values=values, priced=priced
            )
        )
        assert raw == effect(orm), wamid


@pytest.mark.parametrize("wamid", ["wamid.sent", "wamid.in", "wamid.kept", "wamid.unknown"])
def test_the_existence_reads_answer_as_the_orm(messages: list[Message], wamid: str) -> None:
    assert sql.wamid_known(wamid) == Message.objects.filter(whatsapp_message_id=wamid).exists()
    assert sql.status_kept(wamid) == StatusUpdate.objects.filter(whatsapp_message_id=wamid).exists()


def test_inbound_insert_stores_what_bulk_create_stores(messages: list[Message]) -> None:
    given = [
        ["wamid.in", "Oi de novo"],  # already stored: nothing inserted
        ["wamid.in.new", "Quero o link"],
    ]

    def raw() -> list[int]:
        return sql.inbound_insert(
            [
                [
                    Message.Direction.IN,
                    Message.Kind.TEXT,
                    "5548999327881",
                    text,
                    wamid,
                    S.RECEIVED,
                    "{}",
                    NOW,
                    NOW,
                ]
                for wamid, text in given
            ]
        )

    def orm() -> list[int]:
        made = Message.objects.bulk_create(
            [
                Message(
                    direction=Message.Direction.IN,
                    kind=Message.Kind.TEXT,
                    wa_id="5548999327881",
                    text=text,
                    whatsapp_message_id=wamid,
                    status=S.RECEIVED,
                    metadata={},
                    whatsapp_timestamp=NOW,
                    created_at=NOW,
                )
                for wamid, text in given
            ],
            ignore_conflicts=True,
        )
        return [m.pk for m in made if m.pk is not None]

    def without_ids(found: tuple[Any, list[dict[str, Any]]]) -> list[dict[str, Any]]:
        # created_at: the ORM's auto_now_add stamps the clock where the statement takes it given.
        return [{**row, "id": None, "created_at": None} for row in found[1]]

    raw_effect, orm_effect = effect(raw), effect(orm)
    assert len(raw_effect[0]) == 1
    assert without_ids(raw_effect) == without_ids(orm_effect)


@pytest.mark.parametrize("lock", [False, True], ids=["read", "locked"])
def test_inbound_message_reads_what_the_orm_reads(messages: list[Message], lock: bool) -> None:
    for message in [*messages, None]:
        pk = message.pk if message else 0
        query = Message.objects.select_for_update() if lock else Message.objects
        orm = query.filter(pk=pk, direction=Message.Direction.IN).first()
        raw = sql.inbound_message(pk, lock=lock)
        assert (raw and model_to_dict(raw)) == (orm and model_to_dict(orm)), pk
        assert (raw and (raw.created_at, raw.metadata)) == (orm and (orm.created_at, orm.metadata))
    assert sum(sql.inbound_message(m.pk) is not None for m in messages) == 1


@pytest.mark.parametrize("size", [1, 3, 50])
def test_recent_texts_are_the_orm_history(messages: list[Message], size: int) -> None:
    conversation_id = messages[0].conversation_id
    Message.objects.filter(pk=messages[2].pk).update(text="")
    for exclude in (messages[0].pk, messages[-1].pk):
        orm = list(
            Message.objects.filter(conversation_id=conversation_id)
            .exclude(pk=exclude)
            .exclude(text="")
            .order_by("-created_at", "-pk")
            .values_list("direction", "text")[:size]
        )
        assert sql.recent_texts(conversation_id=conversation_id, exclude=exclude, size=size) == orm
        # 11 in the conversation, one without words, one left out when it is the one excluded.
        assert len(orm) == min(size, 10 - (exclude == messages[0].pk))


def test_kept_payments_are_the_orm_query(messages: list[Message]) -> None:
    W = WebhookEvent
    for i, fields in enumerate(
        [
            {"external_id": "pay-1"},
            {"external_id": "pay-2", "processed": True},
            {"external_id": None},
            {"external_id": "pay-3", "reference": "other"},
            {"external_id": "pay-4", "type": W.Type.SOURCE},
            {"external_id": "pay-0"},
        ]
    ):
        W.objects.create(
            **{"type": W.Type.PAYMENT, "reference": "ab-1", "payload": {}, "processed": False, **fields}
        )
        W.objects.filter(external_id=fields["external_id"]).update(created_at=NOW - timedelta(seconds=i))
    for reference in ("ab-1", "other", "none"):
        orm = W.objects.filter(
            type=W.Type.PAYMENT, reference=reference, processed=False, external_id__isnull=False
        ).order_by("created_at")
        assert [e.pk for e in sql.payments_kept(reference=reference)] == [e.pk for e in orm]
    assert len(list(sql.payments_kept(reference="ab-1"))) == 2


def test_the_audit_row_is_the_row_the_orm_creates() -> None:
    W = WebhookEvent
    given = {"type": W.Type.ABANDONMENT, "external_id": "ab-9", "processed": True}
    payload = {"valor": "R$ 1.299,00", "nome": "Zoë 100%"}

    def kept(run: Callable[[], Any]) -> list[dict[str, Any]]:
        point = transaction.savepoint()
        try:
            run()
            return [{**row, "id": None} for row in W.objects.values()]
        finally:
            transaction.savepoint_rollback(point)

    with time_machine.travel(NOW, tick=False):
        raw = kept(
            lambda: sql.webhook_event_insert(
                event_type=given["type"], external_id="ab-9", payload=payload, processed=True
            )
        )
        orm = kept(lambda: W.objects.create(**given, payload=payload))
    assert raw == orm
    assert raw[0]["payload"] == payload and raw[0]["created_at"] == NOW


def test_a_senders_waiting_messages_are_the_orms() -> None:
    K = Message.Kind
    sender, other = "5548999327881", "5511987654321"
    with time_machine.travel(NOW - timedelta(minutes=20), tick=False):
        InboundMessageFactory(wa_id=sender)  # before the look-back
    for minutes, fields in [
        (9, {}),
        (8, {"kind": K.BUTTON}),
        (7, {"kind": K.INTERACTIVE}),
        (6, {"kind": K.AUDIO}),
        (5, {"status": S.PROCESSED}),
        (4, {"wa_id": other}),
        (3, {}),
        (3, {}),  # the same instant: the id orders them
    ]:
        with time_machine.travel(NOW - timedelta(minutes=minutes), tick=False):
            InboundMessageFactory(**{"wa_id": sender, **fields})
    OutboundMessageFactory(wa_id=sender)
    since = NOW - timedelta(minutes=15)
    for wa_id in (sender, other, "5500000000000"):
        expected = list(
            Message.objects.filter(
                direction=Message.Direction.IN,
                status=S.RECEIVED,
                wa_id=wa_id,
                kind__in=Message.TEXT_KINDS,
                created_at__gte=since,
            )
            .order_by("created_at", "pk")
            .values_list("pk", "created_at")
        )
        assert sql.sender_waiting(wa_id=wa_id, since=since) == expected
    assert len(sql.sender_waiting(wa_id=sender, since=since)) == 5
