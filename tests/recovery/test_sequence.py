"""The recovery sequence (SPEC §15), through the public webhooks and the real sweeps, in frozen time."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import responses

from compliance.tasks import sweep_windows
from messaging.models import Message, Template
from messaging.tasks import sweep_stuck
from recovery.models import Conversation, SequenceStep, StepVariant
from recovery.sequence import QuickReply, sequence_steps, variant_draw
from tests.conftest import (
    GRAPH_URL,
    first_message,
    graph_error,
    graph_ok,
    meta_payload,
    open_cart,
    template_sent,
)

pytestmark = pytest.mark.django_db

PHONE = "+5548999327881"  # DDD 48: America/Sao_Paulo, UTC−3
# Saturday 22 Nov 2025, 18:00 in São Paulo.
T0 = datetime.fromisoformat("2025-11-22 21:00:00+00:00")


def three_steps(
    *, first_variants: tuple[tuple[str, int], ...] = (("convite_a", 1), ("convite_b", 1))
) -> None:
    """What a shop sets up in the admin: 1 h after the cart, then 23 h and 27 h after each step."""
    SequenceStep.objects.all().delete()
    plan = [
        (Decimal(1), first_variants),
        (Decimal(23), (("lembrete",),)),
        (Decimal(27), (("ultima_chance",),)),
    ]
    for order, (delay, variants) in enumerate(plan, start=1):
        step = SequenceStep.objects.create(order=order, delay_hours=delay)
        for variant in variants:
            template, _ = Template.objects.get_or_create(
                name=variant[0],
                language="pt_BR",
                defaults={"body": "Oi, {{1}}! Seu {{2}} ainda está no carrinho."},
            )
            StepVariant.objects.create(
                step=step, template=template, weight=variant[1] if len(variant) > 1 else 1
            )


def sweep(capture: Any) -> dict[str, int]:
    with capture(execute=True):
        result = sweep_windows.delay().get()
        sweep_stuck.delay()
    return result


def sent_steps(conversation: Conversation) -> list[tuple[int, str, str]]:
    """(step, variant, kind) of each step that left, in order."""
    return [
        (m.metadata["sequence"]["step"], m.metadata["sequence"]["variant"], m.kind)
        for m in conversation.messages.filter(direction=Message.Direction.OUT, status=Message.Status.SENT)
        .exclude(metadata__sequence=None)
        .order_by("created_at", "pk")
    ]


def first_step_sent(post_signed: Any, capture: Any, time_machine: Any) -> Conversation:
    """Three steps set up, a cart opened at hour 0 and its first step swept out at hour 1."""
    three_steps()
    at(time_machine, 0)
    conversation = open_cart(post_signed, capture)
    at(time_machine, 1)
    sweep(capture)
    return conversation


def at(time_machine: Any, hours: float) -> None:
    time_machine.move_to(T0 + timedelta(hours=hours), tick=False)


def test_three_steps_each_at_its_time_the_last_one_after_quiet_hours(
    outbox, settings, post_signed, capture, time_machine
):
    settings.SARA_QUIET_HOURS = "21:00-08:00"
    three_steps()
    at(time_machine, 0)
    conversation = open_cart(post_signed, capture)
    assert outbox == []  # the first step waits its hour: a row with a due time, not a countdown

    at(time_machine, 0.99)
    assert sweep(capture)["followups"] == 0
    at(time_machine, 1)  # 19:00 in São Paulo
    assert sweep(capture)["followups"] == 1
    assert len(outbox) == 1
    first = conversation.messages.get(purpose=Message.Purpose.FIRST_CONTACT)
    assert first.kind == Message.Kind.TEMPLATE and first.status == Message.Status.SENT
    variant = first.metadata["sequence"]["variant"]
    assert variant in ("convite_a", "convite_b")
    assert outbox[0][1].template_name == variant

    at(time_machine, 1 + 22.9)
    assert sweep(capture)["followups"] == 0
    at(time_machine, 1 + 23)  # 18:00 the next day
    assert sweep(capture)["followups"] == 1
    assert outbox[-1][1].template_name == "lembrete"

    # The third step falls due at 21:00 in São Paulo: queued, and held until 08:00.
    at(time_machine, 1 + 23 + 27)
    assert sweep(capture)["followups"] == 1
    third = conversation.messages.get(metadata__sequence__step=3)
    assert (third.status, third.error_code) == (Message.Status.PENDING, "quiet_hours")
    assert len(outbox) == 2
    at(time_machine, 1 + 23 + 27 + 10.99)  # 07:59
    sweep(capture)
    assert len(outbox) == 2
    at(time_machine, 1 + 23 + 27 + 11.1)  # 08:06
    sweep(capture)
    assert [m.template_name for _, m in outbox] == [variant, "lembrete", "ultima_chance"]
    assert sent_steps(conversation) == [
        (1, variant, "template"),
        (2, "lembrete", "template"),
        (3, "ultima_chance", "template"),
    ]
    # Nothing more, however often the sweep runs.
    at(time_machine, 70)
    assert sweep(capture)["followups"] == 0
    assert len(outbox) == 3


def test_an_answer_stops_the_sequence_even_a_step_already_held_by_quiet_hours(
    outbox, settings, post_signed, capture, time_machine, say
):
    settings.SARA_QUIET_HOURS = "21:00-08:00"
    conversation = first_step_sent(post_signed, capture, time_machine)
    at(time_machine, 24)
    sweep(capture)
    at(time_machine, 24 + 27)  # step 3 queued at 21:00, held for the morning
    sweep(capture)
    assert conversation.messages.get(metadata__sequence__step=3).status == Message.Status.PENDING

    at(time_machine, 24 + 27 + 2)  # 23:00: the customer writes
    with capture(execute=True):
        say("Oi, ainda dá tempo de comprar?")
    at(time_machine, 24 + 27 + 12)  # 09:00
    sweep(capture)

    third = conversation.messages.get(metadata__sequence__step=3)
    assert (third.status, third.error_code) == (Message.Status.FAILED, "customer_answered")
    assert [m.template_name for _, m in outbox if m.is_template] == [
        sent_steps(conversation)[0][1],
        "lembrete",
    ]


def test_an_answer_after_the_first_step_means_no_second_step(outbox, post_signed, capture, time_machine, say):
    conversation = first_step_sent(post_signed, capture, time_machine)
    at(time_machine, 2)
    say("quanto fica o frete?")
    at(time_machine, 200)
    sweep(capture)
    conversation.refresh_from_db()
    assert conversation.sequence_step == 1
    assert [m.is_template for _, m in outbox] == [True, False]  # the step, then Sara's answer


def test_an_opt_out_stops_the_sequence(outbox, post_signed, capture, time_machine, say):
    conversation = first_step_sent(post_signed, capture, time_machine)
    say("PARAR")
    for hours in (24, 60, 90):
        at(time_machine, hours)
        sweep(capture)
    conversation.refresh_from_db()
    assert conversation.close_reason == "opted_out"
    assert [m.is_template for _, m in outbox] == [True, False]  # the step, then the farewell


def test_a_payment_stops_the_sequence(outbox, post_signed, capture, time_machine):
    conversation = first_step_sent(post_signed, capture, time_machine)
    at(time_machine, 5)
    with capture(execute=True):
        paid = post_signed(
            "/webhook/payment",
            {
                "abandonmentId": "ab-1001",
                "paymentId": "pay-seq-1",
                "status": "paid",
                "amount": "297.00",
                "linkType": "original",
            },
        )
    assert paid.status_code == 200
    for hours in (24, 60):
        at(time_machine, hours)
        sweep(capture)
    conversation.refresh_from_db()
    assert (conversation.status, conversation.sequence_step) == (Conversation.Status.CLOSED, 1)
    assert len([m for _, m in outbox if m.is_template]) == 1


def test_inside_the_customers_window_a_step_goes_as_text(outbox, post_signed, capture, time_machine, say):
    """She wrote about an earlier cart an hour ago: the new cart's first step is free-form text."""
    Template.objects.update_or_create(
        name="recovery_invitation",
        language="pt_BR",
        defaults={"body": "Olá, {{1}}! Vi que você deixou {{2}} no carrinho. Posso ajudar?"},
    )
    at(time_machine, -2)
    open_cart(post_signed, capture, external_id="ab-seq-earlier")
    at(time_machine, -1)
    say("vou pensar")
    outbox.clear()
    at(time_machine, 0)
    conversation = open_cart(post_signed, capture, external_id="ab-seq-2")

    step = conversation.messages.get(purpose=Message.Purpose.FIRST_CONTACT)
    assert (step.kind, step.status) == (Message.Kind.TEXT, Message.Status.SENT)
    assert step.metadata["sequence"] == {"step": 1, "variant": "recovery_invitation", "as_text": True}
    [(_, sent)] = outbox
    assert not sent.is_template
    assert sent.text == "Olá, Maria! Vi que você deixou Curso de Python no carrinho. Posso ajudar?"


def test_the_same_cart_always_draws_the_same_variant_and_weights_split_carts():
    three_steps(first_variants=(("convite_a", 3), ("convite_b", 1)))
    step = sequence_steps()[0]
    first = [variant_draw(cart_key=f"cart-{n}", step=step)[0].name for n in range(2000)]
    again = [variant_draw(cart_key=f"cart-{n}", step=step)[0].name for n in range(2000)]
    assert first == again
    share_a = first.count("convite_a") / len(first)
    assert 0.70 < share_a < 0.80  # 3:1


def test_with_no_steps_configured_the_settings_two_steps_still_run(
    outbox, settings, post_signed, capture, time_machine
):
    """A shop that upgrades changes nothing: WHATSAPP_TEMPLATE_NAME at once, the follow-up
    template after FOLLOWUP_AFTER_HOURS, as before there were steps."""
    SequenceStep.objects.all().delete()
    settings.WHATSAPP_TEMPLATE_NAME = "convite_da_loja"
    settings.FOLLOWUP_AFTER_HOURS = 6
    at(time_machine, 0)
    open_cart(post_signed, capture)
    at(time_machine, 6)
    sweep(capture)
    assert [m.template_name for _, m in outbox] == [
        "convite_da_loja",
        settings.WHATSAPP_FOLLOWUP_TEMPLATE_NAME,
    ]


# --- Meta pausing templates --------------------------------------------------------------------


def post_meta(post_signed: Any, capture: Any, payload: dict[str, Any]) -> None:
    with capture(execute=True):
        assert post_signed("/webhook/messages", payload).status_code == 200


def two_invitations() -> None:
    """The seeded first step with a second variant of the invitation, weights 1:1."""
    step = SequenceStep.objects.get(order=1)
    second, _ = Template.objects.get_or_create(name="recovery_invitation_b", language="pt_BR")
    StepVariant.objects.create(step=step, template=second, weight=1)


def cart_drawing(variant: str) -> str:
    """A cart id whose draw for the first step is this variant while both are approved."""
    step = sequence_steps()[0]
    return next(
        f"ab-{n}" for n in range(100) if variant_draw(cart_key=f"ab-{n}", step=step)[0].name == variant
    )


def test_a_paused_template_sends_the_other_variant_none_approved_waits_and_approved_resumes(
    outbox, post_signed, capture, time_machine, admin_client
):
    two_invitations()
    at(time_machine, 0)
    cart = cart_drawing("recovery_invitation")
    post_meta(post_signed, capture, meta_payload("template_status_paused"))
    paused = Template.objects.get(name="recovery_invitation")
    assert (paused.status, paused.meta_id) == (Template.Status.PAUSED, "1689556908129832")
    assert "FIRST_PAUSE" in paused.status_reason

    conversation = open_cart(post_signed, capture, external_id=cart)
    assert [m.template_name for _, m in outbox] == ["recovery_invitation_b"]
    assert conversation.messages.get().metadata["sequence"]["variant"] == "recovery_invitation_b"

    # Meta pauses the second one too (the same documented payload, for the other template).
    payload = meta_payload("template_status_paused")
    payload["entry"][0]["changes"][0]["value"]["message_template_name"] = "recovery_invitation_b"
    post_meta(post_signed, capture, payload)
    outbox.clear()
    other = open_cart(post_signed, capture, external_id="ab-seq-waits")
    waiting = other.messages.get()
    assert outbox == []
    assert (waiting.status, waiting.error_code) == (Message.Status.PENDING, "template_unavailable")
    dashboard = admin_client.get("/admin/")
    assert "esperam um modelo aprovado pela Meta" in dashboard.content.decode()

    # The sweep looks again later: still paused, still waiting, never sent.
    at(time_machine, 0.5)
    sweep(capture)
    assert outbox == []

    # Meta approves the first again (its documented APPROVED / UNPAUSE payload): the step goes.
    at(time_machine, 3)
    post_meta(post_signed, capture, meta_payload("template_status_approved"))
    waiting.refresh_from_db()
    assert waiting.status == Message.Status.SENT
    assert [m.template_name for _, m in outbox] == ["recovery_invitation"]


def test_an_older_status_delivered_late_does_not_undo_a_newer_one(post_signed, capture):
    post_meta(post_signed, capture, meta_payload("template_status_approved"))  # time 1763841600
    post_meta(post_signed, capture, meta_payload("template_status_paused"))  # time 1763830800, earlier
    assert Template.objects.get(name="recovery_invitation").status == Template.Status.APPROVED


def test_quality_update_is_recorded_from_metas_documented_example(
    post_signed, django_capture_on_commit_callbacks
):
    post_meta(post_signed, django_capture_on_commit_callbacks, meta_payload("template_quality_update"))
    template = Template.objects.get(name="welcome_template")
    assert (template.language, template.quality, template.status) == ("en_US", "yellow", "approved")


# --- Quick-reply buttons ---------------------------------------------------------------------


def test_the_first_template_carries_its_quick_reply_payloads(
    graph, post_signed, django_capture_on_commit_callbacks, time_machine
):
    at(time_machine, 0)
    Template.objects.filter(name="recovery_invitation").update(
        buttons=["Quero finalizar", "Tenho uma dúvida", "Não tenho interesse"]
    )
    graph.add(responses.POST, GRAPH_URL, json=graph_ok("wamid.first"))
    open_cart(post_signed, django_capture_on_commit_callbacks)
    assert json.loads(graph.calls[0].request.body) == template_sent(
        "recovery_invitation", buttons=(QuickReply.FINISH, QuickReply.QUESTION, QuickReply.NOT_INTERESTED)
    )


def tap(post_signed: Any, capture: Any, fixture: str) -> Message:
    payload = meta_payload(fixture)
    message = first_message(payload)
    from django.utils import timezone

    message["timestamp"] = str(int(timezone.now().timestamp()))
    post_meta(post_signed, capture, payload)
    return Message.objects.get(whatsapp_message_id=message["id"])


def test_tapping_nao_tenho_interesse_ends_the_sequence_and_offers_parar(
    outbox, post_signed, capture, time_machine
):
    at(time_machine, 0)
    conversation = open_cart(post_signed, capture)
    at(time_machine, 1)
    tapped = tap(post_signed, capture, "button_not_interested")

    assert tapped.intent == "objection"
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.ACTIVE
    assert conversation.last_user_message_at is not None  # the tap opened the window
    answer = outbox[-1][1]
    assert "PARAR" in answer.text and "pay.example.com" not in answer.text
    for hours in (21, 50, 70):
        at(time_machine, hours)
        sweep(capture)
    assert len(outbox) == 2  # the first template and the answer: no follow-up
    assert not conversation.customer.opted_out


def test_tapping_quero_finalizar_gets_the_payment_link_without_asking_the_model(
    outbox, post_signed, capture, time_machine
):
    at(time_machine, 0)
    open_cart(post_signed, capture)
    tapped = tap(
        post_signed, capture, "button"
    )  # Meta's sample: payload RECOVERY_CHECKOUT, "Quero finalizar"
    assert tapped.intent == "confirmation"
    assert "https://pay.example.com/cart/123" in outbox[-1][1].text


# --- Meta's per-user marketing limit ------------------------------------------------------------


def test_marketing_limit_131049_is_tried_once_recorded_and_the_next_step_still_goes(
    graph, post_signed, capture, time_machine
):
    at(time_machine, 0)
    graph.add(
        responses.POST,
        GRAPH_URL,
        json=graph_error(
            131049,
            "This message was not delivered to maintain healthy ecosystem engagement.",
            details="In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
        ),
    )
    conversation = open_cart(post_signed, capture)
    first = conversation.messages.get()
    assert (first.status, first.error_code, first.attempts) == (Message.Status.FAILED, "131049", 1)
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.AWAITING_RESPONSE  # not an error: the step is over

    at(time_machine, 19.9)
    sweep(capture)
    assert len(graph.calls) == 1
    graph.add(responses.POST, GRAPH_URL, json=graph_ok("wamid.followup"))
    at(time_machine, 20)
    sweep(capture)
    assert len(graph.calls) == 2
    assert json.loads(graph.calls[1].request.body)["template"]["name"] == "recovery_followup"


# --- The shop sets it up in the admin and plays it on the console backend ----------------------


def step_form(order: int, delay: str, templates: list[Template] | None = None) -> dict[str, str]:
    """The SequenceStep admin form as a browser posts it: an active step and its weighted variants."""
    templates = templates or []
    form = {
        "order": str(order),
        "delay_hours": delay,
        "active": "on",
        "variants-TOTAL_FORMS": str(max(len(templates), 1)),
        "variants-INITIAL_FORMS": "0",
        "variants-MIN_NUM_FORMS": "0",
        "variants-MAX_NUM_FORMS": "1000",
    }
    for index, template in enumerate(templates or [None]):
        form[f"variants-{index}-template"] = str(template.pk) if template else ""
        form[f"variants-{index}-weight"] = "1"
    return form


def test_a_shop_sets_up_three_steps_with_two_variants_in_the_admin_and_plays_them(
    admin_client, outbox, settings, post_signed, capture, time_machine
):
    from django.core.management import call_command

    settings.DEBUG = True
    b, _ = Template.objects.get_or_create(name="recovery_invitation_b", language="pt_BR")
    invitation = Template.objects.get(name="recovery_invitation")
    last_call, _ = Template.objects.get_or_create(name="recovery_last_call", language="pt_BR")
    SequenceStep.objects.all().delete()
    for order, delay, templates in ((1, "1", [invitation, b]), (2, "23", []), (3, "24", [last_call])):
        response = admin_client.post("/admin/recovery/sequencestep/add/", step_form(order, delay, templates))
        assert response.status_code == 302, response.content.decode()[:3000]
    assert [(s.order, len(s.variants)) for s in sequence_steps()] == [(1, 2), (2, 1), (3, 1)]

    at(time_machine, 0)
    open_cart(post_signed, capture)
    with capture(execute=True):
        call_command("sara_sequence_advance", "--hours=1")
    with capture(execute=True):
        call_command("sara_sequence_advance", "--hours=23")
    with capture(execute=True):
        call_command("sara_sequence_advance", "--hours=24")
    names = [m.template_name for _, m in outbox]
    assert names[0] in ("recovery_invitation", "recovery_invitation_b")
    assert names[1:] == [settings.WHATSAPP_FOLLOWUP_TEMPLATE_NAME, "recovery_last_call"]


# --- A step the conversation's expiry would swallow ----------------------------------------------

# The seeded steps: at once, then FOLLOWUP_AFTER_HOURS (20 h) later; conversations expire at 72 h.
NEVER_SENT = (
    "O passo 3 sairia %s h depois do carrinho, quando a conversa já expirou "
    "(SARA_EXPIRE_AFTER_HOURS = 72 h): ele nunca seria enviado. Encurte os atrasos."
)


@pytest.mark.parametrize(("delay", "refused_at"), [("51.5", None), ("52", "72"), ("60.5", "80,5")])
def test_the_admin_refuses_a_step_that_would_fall_after_the_conversation_expired(
    admin_client, delay, refused_at
):
    response = admin_client.post("/admin/recovery/sequencestep/add/", step_form(3, delay))

    if refused_at is None:
        assert response.status_code == 302, response.content.decode()[:3000]
        assert [step.order for step in sequence_steps()] == [1, 2, 3]
    else:
        assert response.status_code == 200
        assert NEVER_SENT % refused_at in response.content.decode()
        assert not SequenceStep.objects.filter(order=3).exists()


def test_lengthening_an_early_step_is_refused_when_it_pushes_a_later_one_past_the_expiry(admin_client):
    admin_client.post("/admin/recovery/sequencestep/add/", step_form(3, "40"))  # at 60 h: goes
    first = SequenceStep.objects.get(order=1)

    form = step_form(1, "12.5")
    form["variants-TOTAL_FORMS"] = "0"
    response = admin_client.post(f"/admin/recovery/sequencestep/{first.pk}/change/", form)

    assert response.status_code == 200
    assert NEVER_SENT % "72,5" in response.content.decode()
    first.refresh_from_db()
    assert first.delay_hours is None
    # Switched off, the late step counts no more: the same change goes through.
    SequenceStep.objects.filter(order=3).update(active=False)
    assert admin_client.post(f"/admin/recovery/sequencestep/{first.pk}/change/", form).status_code == 302


def test_a_longer_expiry_lets_the_same_step_through(admin_client, settings):
    settings.SARA_EXPIRE_AFTER_HOURS = 96

    response = admin_client.post("/admin/recovery/sequencestep/add/", step_form(3, "60.5"))

    assert response.status_code == 302


# --- The console backend shows what the customer sees -----------------------------------------


def test_the_console_prints_the_buttons_texts_the_customer_sees_not_their_payloads(
    capsys, outbox, post_signed, django_capture_on_commit_callbacks, time_machine
):
    at(time_machine, 0)
    Template.objects.filter(name="recovery_invitation").update(
        buttons=["Quero finalizar", "Tenho uma dúvida", "Não tenho interesse"]
    )

    open_cart(post_signed, django_capture_on_commit_callbacks)

    printed = capsys.readouterr().out
    assert "\n[Quero finalizar] [Tenho uma dúvida] [Não tenho interesse]\n" in printed
    assert "SARA_" not in printed
    # What goes to Meta still carries the payloads a tap sends back.
    assert outbox[0][1].template_buttons == [
        QuickReply.FINISH,
        QuickReply.QUESTION,
        QuickReply.NOT_INTERESTED,
    ]
