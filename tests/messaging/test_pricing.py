"""Meta's `pricing` block of status webhooks kept on the message, and the cost counters (SPEC §13)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from messaging.models import Message, StatusUpdate
from messaging.pricing import model_cost_brl
from messaging.services.inbound import pending_statuses_apply
from tests.conftest import meta_payload, openai_completion
from tests.factories import ConversationFactory, CustomerFactory, OutboundMessageFactory
from tests.ops.test_probes_and_metrics import sample

pytestmark = pytest.mark.django_db

WAMID = "wamid.HBgNNTU0ODk5OTMyNzg4MRUCABEYEjQ4RDE3NjQ1M0U0QTRBNkI0AA=="  # the one in status_*.json


@pytest.fixture
def deliver(post_signed, django_capture_on_commit_callbacks):
    def post(*names: str) -> None:
        for name in names:
            with django_capture_on_commit_callbacks(execute=True):
                assert post_signed("/webhook/messages", meta_payload(f"status_{name}")).status_code == 200

    return post


@pytest.fixture
def metrics_growth(client):
    """Call it once before and once after: returns how much a sample grew in between."""
    before = client.get("/metrics").content.decode()

    def grew(name: str, **labels: str) -> float:
        after = client.get("/metrics").content.decode()
        return sample(after, name, **labels) - sample(before, name, **labels)

    return grew


def sent_template(**fields) -> Message:
    return OutboundMessageFactory(
        kind=Message.Kind.TEMPLATE,
        purpose=Message.Purpose.FIRST_CONTACT,
        whatsapp_message_id=WAMID,
        status=Message.Status.SENT,
        **fields,
    )


def pricing_of(message: Message) -> tuple:
    message.refresh_from_db()
    return (message.pricing_billable, message.pricing_category, message.pricing_model, message.pricing_type)


def test_per_message_pricing_of_a_delivered_template_is_stored_and_counted(deliver, metrics_growth):
    message = sent_template()

    deliver("delivered", "read")

    assert pricing_of(message) == (True, "marketing", "PMP", "regular")
    assert message.status == "read"
    # Billed once, at delivery: the read that follows adds nothing.
    assert metrics_growth("sara_meta_billable_messages_total", category="marketing") == 1
    assert metrics_growth("sara_meta_cost_brl_total", category="marketing") == pytest.approx(0.0625 * 5.40)


def test_conversation_based_pricing_of_the_old_model_is_stored_without_a_type(deliver, metrics_growth):
    message = sent_template()

    deliver("delivered_cbp")

    assert pricing_of(message) == (True, "marketing", "CBP", "")
    assert metrics_growth("sara_meta_billable_messages_total", category="marketing") == 1


def test_a_free_service_reply_is_stored_as_not_billable_and_costs_nothing(deliver, metrics_growth):
    message = OutboundMessageFactory(whatsapp_message_id=WAMID, status=Message.Status.SENT)

    deliver("delivered_service_free")

    assert pricing_of(message) == (False, "service", "PMP", "free_customer_service")
    assert metrics_growth("sara_meta_billable_messages_total", category="service") == 0
    assert metrics_growth("sara_meta_cost_brl_total", category="service") == 0


def test_a_status_without_pricing_moves_the_message_and_leaves_pricing_unknown(deliver, metrics_growth):
    message = sent_template()

    deliver("delivered_no_pricing")

    assert pricing_of(message) == (None, "", "", "")
    assert message.status == "delivered"
    assert metrics_growth("sara_meta_billable_messages_total", category="marketing") == 0


def test_a_read_without_a_delivered_before_it_is_billed_once(deliver, metrics_growth):
    message = sent_template()

    deliver("read", "delivered")

    assert pricing_of(message)[0] is True
    assert metrics_growth("sara_meta_billable_messages_total", category="marketing") == 1


def test_pricing_that_arrives_before_the_send_is_stored_is_applied_with_its_status(deliver):
    deliver("delivered")
    assert StatusUpdate.objects.get().pricing == {
        "billable": True,
        "category": "marketing",
        "pricing_model": "PMP",
        "type": "regular",
    }
    message = OutboundMessageFactory(status=Message.Status.PENDING, kind=Message.Kind.TEMPLATE)

    # What the send does once Graph answered with the wamid.
    Message.objects.filter(pk=message.pk).update(whatsapp_message_id=WAMID, status=Message.Status.SENT)
    pending_statuses_apply(wamid=WAMID)

    assert pricing_of(message) == (True, "marketing", "PMP", "regular")
    assert not StatusUpdate.objects.exists()


def test_a_malformed_pricing_block_is_dropped_and_the_status_still_applies(post_signed):
    message = sent_template()
    payload = meta_payload("status_delivered")
    payload["entry"][0]["changes"][0]["value"]["statuses"][0]["pricing"] = {
        "billable": "yes",
        "category": ["marketing"],
        "pricing_model": 7,
    }

    assert post_signed("/webhook/messages", payload).status_code == 200

    assert pricing_of(message) == (None, "", "", "")
    assert message.status == "delivered"


def test_model_tokens_are_priced_by_model(settings):
    settings.SARA_MODEL_PRICES_USD = {"gpt-4o-mini": Decimal("0.20"), "gpt-4o": Decimal("3.20")}
    settings.SARA_FX_TO_BRL = Decimal("5")

    assert model_cost_brl(model="gpt-4o-mini", tokens=1_000_000) == Decimal("1.00")
    assert model_cost_brl(model="gpt-4o", tokens=500_000) == Decimal("8.00")
    # An unpriced model costs as the configured default model, never nothing.
    settings.OPENAI_MODEL = "gpt-4o-mini"
    assert model_cost_brl(model="some-new-model", tokens=1_000_000) == Decimal("1.00")


def test_a_model_read_records_its_model_and_counts_its_cost(openai_fake, say, settings, metrics_growth):
    settings.OPENAI_MODEL = "gpt-4o-mini"
    settings.SARA_MODEL_PRICES_USD = {"gpt-4o-mini": Decimal("0.20")}
    settings.SARA_FX_TO_BRL = Decimal("5.40")
    openai_fake(
        lambda request: openai_completion(
            {"intent": "question", "sentiment": "neutral", "reply": "Tem certificado, sim!"},
            total_tokens=2000,
        )
    )
    ConversationFactory(abandonment__customer=CustomerFactory(phone="+5548999327881"))

    inbound = say("Tem certificado?")

    assert (inbound.tokens_used, inbound.ai_model) == (2000, "gpt-4o-mini")
    # 2,000 tokens × US$ 0.20 per million × 5.40.
    assert metrics_growth("sara_model_cost_brl_total", model="gpt-4o-mini") == pytest.approx(0.00216)
