"""Every list and custom page fits a laptop (1280 px) and a phone (390 px) without sideways scrolling.

Each page is opened in Chromium with rows in it, at both widths, and the document may not be wider
than the window: a table too wide for a phone scrolls inside its own box, never the page.
PostgreSQL only (by name): the live server and the test share SQLite's one writer badly.
"""

from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib import admin
from django.utils import timezone

from messaging.models import Message, WebhookEvent
from recovery.models import Conversation, SourceCheckout
from tests import factories
from tests.admin.test_browser import SCREENSHOTS, browser, page, sign_in  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WIDTHS = (390, 1280)
SARA_APPS = ("recovery", "messaging", "compliance")
CUSTOM_PAGES = [
    "/admin/",
    "/admin/money/",
    "/admin/recovery/conversation/inbox/",
    "/admin/messaging/message/?ops=failed",
    "/admin/messaging/message/?ops=stuck",
]
# Pictures the README and the closing note point at: written to docs/screenshots when
# SARA_SCREENSHOTS says so, like the other browser tests.
PICTURES = {
    "/admin/recovery/conversation/": "conversations",
    "/admin/messaging/message/?ops=failed": "failed-sends",
    "/admin/recovery/sourcecheckout/": "sources",
    "/admin/recovery/conversation/inbox/": "inbox",
    "/admin/money/": "money",
}


def changelists() -> list[str]:
    return sorted(
        f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        for model in admin.site._registry
        if model._meta.app_label in SARA_APPS
    )


@pytest.fixture
def rows(admin_user):
    """Long names, long links and long errors: what makes columns grow."""
    admin_user.first_name, admin_user.last_name = "Ana Beatriz", "Souza Albuquerque"
    admin_user.save()
    product = factories.ProductFactory(
        name="Curso completo de Python para análise de dados com certificado",
        price=Decimal("1299.00"),
        discount_link="https://pay.example.com/curso-python-analise-de-dados-completo?cupom=VOLTA10",
    )
    for number in range(6):
        customer = factories.CustomerFactory(name=f"Maria Aparecida dos Santos Oliveira {number}")
        cart = factories.AbandonmentFactory(customer=customer, product=product, value=Decimal("1299.00"))
        conversation = factories.ConversationFactory(
            abandonment=cart,
            status=Conversation.Status.ACTIVE,
            needs_human=number % 2 == 0,
            handoff_reason=Conversation.HandoffReason.ASKED_FOR_PERSON if number % 2 == 0 else "",
            handoff_at=timezone.now() - timedelta(minutes=5 + number),
            last_user_message_at=timezone.now() - timedelta(minutes=5 + number),
            assigned_to=admin_user if number == 0 else None,
        )
        factories.InboundMessageFactory(
            conversation=conversation,
            text="Quero falar com uma pessoa sobre o certificado e a forma de pagamento no boleto",
        )
        factories.OutboundMessageFactory(
            conversation=conversation,
            status=Message.Status.FAILED,
            error_code="131026" if number % 2 else "network",
            error_detail="Message undeliverable: the recipient's phone number is not a WhatsApp account "
            "or has not accepted the newest terms of service and privacy policy",
            attempts=5,
            failed_at=timezone.now(),
        )
        SourceCheckout.objects.create(
            platform="nuvemshop",
            checkout_id=f"checkout-{number}-0b9f1c2d3e4f5a6b7c8d9e0f",
            status=SourceCheckout.Status.WAITING,
            abandonment=cart,
            due_at=timezone.now(),
        )
    WebhookEvent.objects.create(
        type=WebhookEvent.Type.PAYMENT,
        external_id="pay-0b9f1c2d3e4f5a6b7c8d9e0f1a2b3c4d",
        reference="ab-0b9f1c2d3e4f5a6b7c8d9e0f",
        error="Amount does not match the cart.",
    )


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("url", [*changelists(), *CUSTOM_PAGES])
def test_the_page_fits_the_window_without_sideways_scrolling(page, sign_in, admin_user, rows, url, width):  # noqa: F811
    sign_in(admin_user)
    page.set_viewport_size({"width": width, "height": 900})

    response = page.goto(url)
    page.wait_for_load_state("networkidle")

    assert response.status == 200
    if url in PICTURES:
        folder = Path(os.environ.get("SARA_SCREENSHOTS") or SCREENSHOTS)
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=folder / f"admin-{PICTURES[url]}-{width}.png", full_page=True)
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"{url} is {widths[0]} px wide in a {widths[1]} px window"
    if width == 1280 and page.locator("#result_list").count():
        # On a laptop every column of a list is on screen: none hides behind the table's scrollbar.
        table = page.evaluate("(el => [el.scrollWidth, el.clientWidth])(document.querySelector('.results'))")
        assert table[0] <= table[1], f"{url}: the list is {table[0]} px wide in a {table[1]} px box"


@pytest.mark.parametrize("width", WIDTHS)
def test_the_list_actions_are_reachable_on_a_phone(page, sign_in, admin_user, rows, width):  # noqa: F811
    sign_in(admin_user)
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/admin/messaging/message/?ops=failed")

    go = page.locator("#changelist-form button[name=index]")
    box = go.bounding_box()

    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
    advice = page.locator("td.field-retry_help").first.bounding_box()
    # The advice column can be scrolled to inside the table's box, never off the page.
    assert advice is not None and advice["width"] > 0
