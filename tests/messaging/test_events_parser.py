"""Meta's webhook body → typed events: every recorded shape, and malformed items reported, not fatal."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging.whatsapp.events import InboundEvent, StatusEvent, parse
from tests.conftest import meta_payload

OUTBOUND_WAMID = "wamid.HBgNNTU0ODk5OTMyNzg4MRUCABEYEjQ4RDE3NjQ1M0U0QTRBNkI0AA=="


@pytest.mark.parametrize(
    ("name", "kind", "text"),
    [
        ("text", "text", "Quanto custa o frete?"),
        ("button", "button", "Quero finalizar"),
        ("interactive_button_reply", "interactive", "Pagar agora"),
        ("interactive_list_reply", "interactive", "Pix"),
        ("image", "image", "É esse modelo aqui?"),
        ("audio", "audio", ""),
        ("reaction", "reaction", "👍"),
        ("location", "location", ""),
        ("unsupported", "unsupported", ""),
    ],
)
def test_each_recorded_message_becomes_one_inbound_event(name, kind, text):
    payload = meta_payload(name)
    item = payload["entry"][0]["changes"][0]["value"]["messages"][0]

    parsed = parse(payload)

    assert parsed.errors == []
    assert parsed.statuses == []
    assert parsed.messages == [
        InboundEvent(
            wamid=item["id"],
            wa_id="5548999327881",
            kind=kind,
            text=text,
            timestamp=datetime.fromtimestamp(int(item["timestamp"]), tz=UTC),
            raw=item,
            profile_name="Maria Silva",
        )
    ]


def test_a_failed_status_carries_its_errors():
    parsed = parse(meta_payload("status_failed"))

    assert parsed.messages == []
    assert parsed.statuses == [
        StatusEvent(
            wamid=OUTBOUND_WAMID,
            status="failed",
            timestamp=datetime(2025, 11, 22, 4, 15, 3, tzinfo=UTC),
            errors=meta_payload("status_failed")["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"],
        )
    ]
    assert parsed.statuses[0].errors[0]["code"] == 131047


def test_a_batch_yields_every_message_and_status_of_every_entry_and_change():
    parsed = parse(meta_payload("batch"))

    assert parsed.errors == []
    assert [(m.wa_id, m.text) for m in parsed.messages] == [
        ("5548999327881", "Oi! Recebi a mensagem"),
        ("5511987654321", "Tem desconto no boleto?"),
        ("5548999327881", "Pode mandar o link de novo?"),
    ]
    assert [s.status for s in parsed.statuses] == ["delivered", "read", "sent", "failed"]
    assert parsed.size == 7


def test_an_unknown_message_type_is_kept_as_unsupported():
    payload = meta_payload("text")
    item = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    item["type"] = "poll_vote"

    [message] = parse(payload).messages

    assert message.kind == "unsupported"
    assert message.text == ""


def test_a_malformed_item_is_reported_without_losing_the_rest_of_the_batch():
    payload = meta_payload("batch")
    first_change = payload["entry"][0]["changes"][0]["value"]
    del first_change["messages"][0]["from"]
    statuses = payload["entry"][0]["changes"][1]["value"]["statuses"]
    statuses[0]["status"] = "deleted"
    statuses[1]["status"] = ["read"]  # unhashable: must be reported, not raise

    parsed = parse(payload)

    assert [m.text for m in parsed.messages] == ["Tem desconto no boleto?", "Pode mandar o link de novo?"]
    assert [s.status for s in parsed.statuses] == ["sent", "failed"]
    assert parsed.errors == [
        "message without id or sender",
        "status without id or with an unknown status",
        "status without id or with an unknown status",
    ]


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        "entry",
        {"object": "whatsapp_business_account"},
        {"entry": "not a list"},
        {"entry": [{"changes": {"value": {}}}]},
        {"entry": [{"changes": [{"value": None}]}]},
        {"entry": [{"changes": [{"value": {"messages": True}}]}]},
        {"entry": [{"changes": [{"value": {"statuses": 7, "contacts": "x"}}]}]},
    ],
)
def test_a_body_without_usable_items_is_reported(payload):
    parsed = parse(payload)

    assert parsed.size == 0
    assert parsed.errors


@pytest.mark.parametrize("timestamp", [None, "", "soon", "99999999999999999999", 1e300])
def test_an_unreadable_timestamp_leaves_the_message_without_one(timestamp):
    payload = meta_payload("text")
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = timestamp

    [message] = parse(payload).messages

    assert message.timestamp is None
    assert message.text == "Quanto custa o frete?"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=12,
)
ITEM_KEYS = ["id", "from", "type", "status", "timestamp", "text", "button", "interactive", "image", "errors"]
items = st.fixed_dictionaries({}, optional=dict.fromkeys(ITEM_KEYS, json_values))
values = st.fixed_dictionaries(
    {},
    optional={
        "messages": st.lists(items, max_size=3) | json_values,
        "statuses": st.lists(items, max_size=3) | json_values,
        "contacts": st.lists(json_values, max_size=2) | json_values,
    },
)
meta_shaped = st.fixed_dictionaries(
    {
        "entry": st.lists(
            st.fixed_dictionaries(
                {"changes": st.lists(st.fixed_dictionaries({"value": values}), max_size=2)}
            ),
            max_size=2,
        )
    }
)


@settings(max_examples=300, deadline=None)
@given(payload=meta_shaped | json_values)
def test_parsing_never_raises_whatever_the_body_holds(payload):
    parsed = parse(payload)

    assert all(event.status in {"sent", "delivered", "read", "failed"} for event in parsed.statuses)
    assert all(event.wamid and event.wa_id for event in parsed.messages)


@pytest.mark.parametrize(
    ("name", "kind", "wa_id", "user_id", "text"),
    [
        ("reaction_removed", "reaction", "5548999327881", "", ""),
        ("sticker", "sticker", "5548999327881", "", ""),
        ("edit", "edit", "5548999327881", "", "Quanto custa o frete pra Florianópolis?"),
        ("revoke", "revoke", "5548999327881", "", ""),
        ("errors_only", "unsupported", "5548999327881", "", ""),
        ("video_caption", "video", "5548999327881", "", "quanto fica o frete?"),
        ("document_caption", "document", "5548999327881", "", "quanto fica o frete?"),
        (
            "text_with_bsuid",
            "text",
            "5548999327881",
            "BR.1502576394655843",
            "Oi, ainda tenho dúvida sobre o frete",
        ),
        ("text_bsuid_only", "text", "", "BR.1502576394655843", "PARAR"),
        (
            "system_user_changed_number",
            "system",
            "5548999327881",
            "",
            "User Maria Silva changed from 5548999327881 to 5548988776655",
        ),
        (
            "system_user_changed_user_id",
            "system",
            "",
            "BR.1502576394655843",
            "User Maria Silva changed from BR.1502576394655843 to BR.2817305912873645029",
        ),
        (
            "user_preferences_stop",
            "user_preferences",
            "5548999327881",
            "",
            "User requested to stop marketing messages",
        ),
        (
            "user_id_update",
            "user_id_update",
            "5548999327881",
            "BR.2817305912873645029",
            "User id for Maria Silva has been updated.",
        ),
    ],
)
def test_every_documented_kind_becomes_one_inbound_event_with_its_sender(name, kind, wa_id, user_id, text):
    [event] = parse(meta_payload(name)).messages

    assert (event.kind, event.wa_id, event.user_id, event.text) == (kind, wa_id, user_id, text)


def test_a_username_user_without_a_phone_keeps_their_username():
    [event] = parse(meta_payload("text_bsuid_only")).messages

    assert (event.username, event.profile_name) == ("maria.silva", "Maria Silva")


def test_a_marketing_preference_gets_an_id_made_of_its_content():
    first = parse(meta_payload("user_preferences_stop")).messages[0]
    again = parse(meta_payload("user_preferences_stop")).messages[0]
    resume = parse(meta_payload("user_preferences_resume")).messages[0]

    assert first.wamid == again.wamid != resume.wamid


def test_a_played_status_is_neither_a_status_nor_an_error():
    parsed = parse(meta_payload("status_played"))

    assert (parsed.statuses, parsed.errors, parsed.messages) == ([], [], [])


def test_errors_of_the_change_itself_are_reported_apart():
    parsed = parse(meta_payload("value_errors"))

    assert [error["code"] for error in parsed.meta_errors] == [130429]
    assert parsed.errors == []
