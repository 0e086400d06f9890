import pytest

from tests.conftest import abandonment_body, meta_payload

pytestmark = pytest.mark.django_db


def test_health_answers_without_database(client):
    assert client.get("/health").json() == {"status": "ok"}


def test_one_recovery_through_the_console(post_signed, outbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_signed(
            "/webhook/abandonment",
            abandonment_body(
                userId="u1",
                productId="nope",
                paymentLink="https://pay.example.com/cart/1",
                abandonmentId="ab-1",
                value=120,
            ),
        )
    assert response.status_code == 200, response.content
    assert [m.template_name for _, m in outbox] == ["recovery_invitation"]
    payload = meta_payload("text")
    import time

    payload["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = str(int(time.time()))
    with django_capture_on_commit_callbacks(execute=True):
        response = post_signed("/webhook/messages", payload)
    assert response.status_code == 200
    assert len(outbox) == 2
    assert "https://pay.example.com/cart/1" in outbox[1][1].text
