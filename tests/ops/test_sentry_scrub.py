"""Events sent to Sentry carry no phone number and no customer's words."""

from __future__ import annotations

import json

from core.sentry import before_send


def test_request_bodies_phones_and_message_texts_are_scrubbed():
    event = {
        "message": "send failed for +5548999327881",
        "request": {"url": "https://sara.example.com/webhook/messages", "data": {"entry": ["..."]}},
        "extra": {
            "payload": {"from": "5548999327881", "text": {"body": "meu cartão é 4242"}, "id": "wamid.1"},
            "name": "Maria Silva",
        },
        "exception": {"values": [{"value": "IntegrityError for 554899327881"}]},
    }
    scrubbed = json.dumps(before_send(event, {}))
    assert "5548999327881" not in scrubbed and "554899327881" not in scrubbed
    assert "4242" not in scrubbed and "Maria" not in scrubbed
    assert "data" not in before_send(event, {})["request"]
    assert "wamid.1" in scrubbed  # ids stay: they are how ops find the row
    assert "+55XXXXXXX881" in scrubbed
