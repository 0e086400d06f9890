"""Meta's template status and quality webhooks leave an audit row ops can find (SPEC §8, §15)."""

from __future__ import annotations

from typing import Any

import pytest

from messaging.models import Template, WebhookEvent
from tests.conftest import meta_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def post_meta(post_signed: Any, django_capture_on_commit_callbacks: Any) -> Any:
    def post(payload: dict[str, Any]) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            assert post_signed("/webhook/messages", payload).status_code == 200

    return post


def audit_rows() -> list[tuple[str, str, bool]]:
    return list(
        WebhookEvent.objects.filter(type=WebhookEvent.Type.WHATSAPP)
        .order_by("pk")
        .values_list("external_id", "outcome", "processed")
    )


@pytest.mark.parametrize(
    ("fixture", "external_id", "outcome"),
    [
        ("template_status_paused", "template:recovery_invitation:pt_BR:paused:1763830800", "template_paused"),
        (
            "template_status_approved",
            "template:recovery_invitation:pt_BR:approved:1763841600",
            "template_approved",
        ),
        ("template_quality_update", "template:welcome_template:en_US:yellow:1674864290", "template_yellow"),
    ],
)
def test_each_template_update_is_kept_once_with_what_meta_sent(post_meta, fixture, external_id, outcome):
    payload = meta_payload(fixture)

    post_meta(payload)
    post_meta(payload)  # Meta delivers again: still one row

    assert audit_rows() == [(external_id, outcome, True)]
    kept = WebhookEvent.objects.get(external_id=external_id)
    change = payload["entry"][0]["changes"][0]
    assert kept.payload == {"time": payload["entry"][0]["time"], **change}


def test_news_older_than_the_row_is_kept_as_stale_and_changes_nothing(post_meta):
    post_meta(meta_payload("template_status_approved"))  # time 1763841600
    post_meta(meta_payload("template_status_paused"))  # time 1763830800, earlier

    assert Template.objects.get(name="recovery_invitation").status == Template.Status.APPROVED
    assert audit_rows() == [
        ("template:recovery_invitation:pt_BR:approved:1763841600", "template_approved", True),
        ("template:recovery_invitation:pt_BR:paused:1763830800", "template_stale", True),
    ]


def test_ops_find_a_templates_updates_in_the_admin_by_its_name(post_meta, admin_client):
    post_meta(meta_payload("template_status_paused"))

    page = admin_client.get("/admin/messaging/webhookevent/", {"q": "recovery_invitation"})

    assert page.status_code == 200
    assert "template:recovery_invitation:pt_BR:paused:1763830800" in page.content.decode()
