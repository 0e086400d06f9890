"""What support and ops click, in a real browser: Debian's Chromium driven by Playwright against
pytest-django's live server. Each test saves a screenshot of its page under docs/screenshots/."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import responses
import time_machine
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from compliance.models import OptOutKeyword
from core.text import brl
from messaging.models import Message, WebhookEvent
from recovery.models import Abandonment, Conversation, Product
from tests import factories
from tests.admin.conftest import failed_reply, invitation, staff_groups_again
from tests.conftest import CHROMIUM, GRAPH_URL, graph_ok, text_body

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The README's pictures are refreshed on demand (SARA_SCREENSHOTS=docs/screenshots); a plain
# test run writes them to a temporary folder and leaves the work tree clean.
SCREENSHOTS = Path(os.environ.get("SARA_SCREENSHOTS") or tempfile.mkdtemp(prefix="sara-screens-"))
PASSWORD = "s3nha-do-suporte"
WAMID = "wamid.HBgNNTU0ODk5OTMyNzg4MRUCABEYEjQ4RDE3NjQ1M0U0QTRBNkI0AA=="

# Skipped by name without Chromium: tests/conftest.py skips every `browser` test then.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with pytest.MonkeyPatch.context() as env:
        # Playwright's sync API keeps an event loop in this thread, so Django takes the test's own
        # ORM calls for async code; they are plain synchronous calls between page actions.
        env.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_api.sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()


@pytest.fixture
def page(browser, live_server, settings) -> Iterator[object]:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    staff_groups_again()
    # Support and ops work in Brazil: their browsers ask for Brazilian Portuguese.
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1440, "height": 900}, locale="pt-BR"
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


def staff(username: str, group: str) -> User:
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


def log_in(page, username: str) -> None:
    """Through the login form, as a person does."""
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#sara-dashboard")


@pytest.fixture
def sign_in(page, live_server) -> Callable[[User], None]:
    """A session cookie made server-side: the tests after the login one skip the form."""

    def sign(user: User) -> None:
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME]
        page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])

    return sign


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / name, full_page=True)


def run_action(page, action: str, ids: list[int]) -> None:
    for pk in ids:
        page.check(f"input.action-select[value='{pk}']")
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")


def success_messages(page) -> list[str]:
    return [text.strip() for text in page.locator("ul.messagelist li").all_inner_texts()]


def a_month_of_recoveries() -> None:
    """Carts over the last weeks: every one contacted, some answering, a few paying the next day."""
    now = timezone.now()
    carts_per_day = {
        0: 4,
        1: 6,
        2: 3,
        4: 5,
        6: 7,
        8: 2,
        11: 6,
        13: 4,
        15: 5,
        18: 3,
        20: 6,
        22: 4,
        25: 5,
        27: 3,
    }
    n = 0
    for days_ago, carts in carts_per_day.items():
        for _ in range(carts):
            n += 1
            with time_machine.travel(now - timedelta(days=days_ago, hours=n % 5), tick=False):
                conversation = factories.ConversationFactory(abandonment__value=Decimal(197 + 50 * (n % 4)))
                factories.OutboundMessageFactory(
                    conversation=conversation,
                    kind=Message.Kind.TEMPLATE,
                    purpose=Message.Purpose.FIRST_CONTACT,
                    status=Message.Status.DELIVERED,
                    sent_at=timezone.now(),
                )
                if n % 2:
                    factories.InboundMessageFactory(
                        conversation=conversation, text="Quanto custa?", status=Message.Status.PROCESSED
                    )
            if n % 4 == 1 and days_ago > 0:
                with time_machine.travel(now - timedelta(days=days_ago - 1), tick=False):
                    Abandonment.objects.filter(pk=conversation.abandonment_id).update(
                        status=Abandonment.Status.CONVERTED,
                        payment_id=f"pay-{n}",
                        converted_at=timezone.now(),
                    )
    factories.OutboundMessageFactory(
        status=Message.Status.FAILED, error_code="131026", error_detail="Undeliverable"
    )


def test_support_logs_in_and_sees_the_recovery_dashboard_chart(page):
    staff("suporte", "support")
    a_month_of_recoveries()
    revenue = sum(a.value for a in Abandonment.objects.filter(status=Abandonment.Status.CONVERTED))

    log_in(page, "suporte")

    assert page.locator("#funnel-chart polyline").count() == 4
    assert page.locator("#funnel-chart").is_visible()
    assert page.locator("#revenue-chart rect.sara-bar").count() >= 1
    assert brl(revenue) in page.inner_text("#sara-dashboard")
    assert page.inner_text("#failures-by-code tbody td >> nth=0") == "Código da Meta 131026"
    screenshot(page, "admin-dashboard.png")


def test_support_edits_a_product_and_a_bad_discount_is_refused(page, sign_in):
    suporte = staff("suporte", "support")
    product = factories.ProductFactory(name="Curso de Python", product_id="curso-python")
    sign_in(suporte)

    page.goto(f"/admin/recovery/product/{product.pk}/change/")
    page.fill("#id_discount_percent", "95")
    page.click("input[name=_save]")
    assert "90" in page.inner_text(".field-discount_percent .errorlist")

    page.fill("#id_discount_percent", "15")
    page.fill("#id_discount_link", "https://pay.example.com/curso-python?cupom=VOLTA15")
    page.fill("#id_description", "Curso online de Python, 40 horas, certificado.")
    page.click("input[name=_save]")

    page.wait_for_selector("ul.messagelist li.success")
    product.refresh_from_db()
    assert product.discount_percent == Decimal("15")
    assert product.discount_link == "https://pay.example.com/curso-python?cupom=VOLTA15"
    page.goto(f"/admin/recovery/product/{product.pk}/change/")
    screenshot(page, "admin-product.png")


def test_support_adds_an_opt_out_keyword(page, sign_in):
    suporte = staff("suporte", "support")
    sign_in(suporte)

    page.goto("/admin/compliance/optoutkeyword/add/")
    page.fill("#id_keyword", "Chega de Mensagem")
    page.click("input[name=_save]")

    page.wait_for_selector("ul.messagelist li.success")
    assert OptOutKeyword.objects.get(keyword="chega de mensagem").active is True
    assert "chega de mensagem" in page.inner_text("#result_list")
    screenshot(page, "admin-optout-keywords.png")


def test_support_finds_a_customer_by_a_phone_typed_with_spaces_and_dashes(page, sign_in):
    suporte = staff("suporte", "support")
    maria = factories.CustomerFactory(phone="+5548999327881", name="Maria Silva")
    factories.ConversationFactory(abandonment=factories.AbandonmentFactory(customer=maria))
    factories.CustomerFactory(phone="+5511987654321", name="João Souza")
    sign_in(suporte)

    page.goto("/admin/recovery/customer/")
    page.fill("#searchbar", "(48) 9932-7881")
    page.press("#searchbar", "Enter")

    page.wait_for_url("**q=*")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert "Maria Silva" in rows.inner_text()
    screenshot(page, "admin-customer-search.png")


def test_support_reads_a_transcript_and_closes_the_conversation_with_a_reason(page, sign_in):
    suporte = staff("suporte", "support")
    maria = factories.CustomerFactory(phone="+5548999327881", name="Maria Silva")
    conversation = factories.ConversationFactory(
        abandonment=factories.AbandonmentFactory(customer=maria, value=Decimal("297.00")),
        status=Conversation.Status.ACTIVE,
    )
    invitation(conversation, status=Message.Status.READ)
    factories.InboundMessageFactory(
        conversation=conversation,
        text="Achei caro, tem desconto?",
        status=Message.Status.PROCESSED,
        intent="price_question",
        sentiment="negative",
    )
    factories.OutboundMessageFactory(
        conversation=conversation,
        text="Entendo! Com 10% de desconto fica R$ 267,30: https://pay.example.com/curso-python?cupom=VOLTA10",
        status=Message.Status.DELIVERED,
        metadata={"discount_offered": True},
    )
    sign_in(suporte)

    page.goto(f"/admin/recovery/conversation/{conversation.pk}/change/")
    bubbles = page.locator(".sara-bubble")
    assert bubbles.count() == 3
    assert "modelo convite do primeiro contato" in bubbles.nth(0).inner_text()
    assert "Olá, Maria! Vi que você deixou Curso de Python no carrinho." in bubbles.nth(0).inner_text()
    assert "intenção: pergunta o preço" in bubbles.nth(1).inner_text()
    assert "desconto oferecido" in bubbles.nth(2).inner_text()
    screenshot(page, "admin-conversation.png")

    page.click("#close-conversation")
    page.fill("#id_reason", "cliente pagou por telefone")
    page.click("#close-form input[type=submit]")

    page.wait_for_selector("ul.messagelist li.success")
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.CLOSED
    assert conversation.close_reason == "cliente pagou por telefone"
    assert page.locator("#close-conversation").count() == 0


def test_ops_retries_a_failed_send_and_graph_gets_it(page, sign_in, graph):
    operacao = staff("operacao", "ops")
    failed = failed_reply(minutes_since_customer_wrote=3)
    factories.OutboundMessageFactory(
        status=Message.Status.FAILED, error_code="131026", error_detail="Message undeliverable", attempts=1
    )
    graph.add(responses.POST, GRAPH_URL, json=graph_ok(WAMID))
    sign_in(operacao)

    page.goto("/admin/")
    page.click("#ops-failed")
    page.wait_for_selector("#result_list")
    assert page.locator("#result_list tbody tr").count() == 2
    screenshot(page, "admin-failed-sends.png")
    run_action(page, "retry_sends", [failed.pk])

    page.wait_for_selector("ul.messagelist li.success")
    assert success_messages(page)[0].startswith("De volta à fila de envio: 1 envio.")
    # Tests run Celery eagerly: the queued send has gone out by now.
    assert len(graph.calls) == 1
    failed.refresh_from_db()
    assert failed.status == Message.Status.SENT


def test_ops_reads_a_webhook_event_payload_pretty_printed(page, sign_in):
    operacao = staff("operacao", "ops")
    event = WebhookEvent.objects.create(
        type=WebhookEvent.Type.PAYMENT,
        external_id="pay-123",
        reference="ab-1",
        processed=True,
        payload={"abandonmentId": "ab-1", "paymentId": "pay-123", "status": "paid", "amount": "297.00"},
    )
    sign_in(operacao)

    page.goto(f"/admin/messaging/webhookevent/{event.pk}/change/")

    assert '"paymentId": "pay-123"' in page.inner_text("pre.sara-json")
    assert page.locator("input[name=_save]").count() == 0
    assert Product.objects.count() == 0
    screenshot(page, "admin-webhook-event.png")


# --- Portuguese pages, at a laptop's width and a phone's ---------------------------------------

WIDTHS = {"1280": {"width": 1280, "height": 800}, "390": {"width": 390, "height": 844}}


def a_busy_day() -> None:
    """Carts, conversations and sends as support finds them on a working morning."""
    maria = factories.CustomerFactory(phone="+5548999327881", name="Maria Aparecida da Silva")
    joao = factories.CustomerFactory(phone="+5511987654321", name="João Souza")
    curso = factories.ProductFactory(
        name="Curso de Python", product_id="curso-python", price=Decimal("349.90")
    )
    waiting = factories.ConversationFactory(
        abandonment=factories.AbandonmentFactory(customer=maria, product=curso, value=Decimal("349.90")),
        status=Conversation.Status.ACTIVE,
        exchanges=5,
        needs_human=True,
        handoff_reason=Conversation.HandoffReason.EXCHANGE_LIMIT,
        handoff_at=timezone.now(),
        last_message_at=timezone.now(),
        last_user_message_at=timezone.now(),
    )
    invitation(waiting, status=Message.Status.READ, whatsapp_message_id="wamid.first")
    factories.ConversationFactory(
        abandonment=factories.AbandonmentFactory(customer=joao, value=Decimal("1299.00")),
        status=Conversation.Status.CLOSED,
        close_reason=Conversation.CloseReason.OPTED_OUT,
    )
    factories.OutboundMessageFactory(
        conversation=waiting,
        status=Message.Status.FAILED,
        error_code="131026",
        error_detail="Message undeliverable",
        whatsapp_message_id="wamid.undeliverable",
        failed_at=timezone.now(),
    )


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(
    ("name", "url", "portuguese"),
    [
        ("conversations", "/admin/recovery/conversation/", "Limite de trocas atingido"),
        ("abandonments", "/admin/recovery/abandonment/", "R$ 1.299,00"),
        ("messages", "/admin/messaging/message/?ops=failed", "Não entregável"),
        ("customers", "/admin/recovery/customer/", "Selecione cliente para modificar"),
    ],
)
def test_lists_read_in_portuguese_and_fit_the_screen(page, sign_in, width, name, url, portuguese):
    page.set_viewport_size(WIDTHS[width])
    sign_in(User.objects.create_superuser("chefe", password=PASSWORD))
    a_busy_day()

    page.goto(url)

    screenshot(page, f"admin-{name}-{width}.png")
    assert portuguese in page.inner_text("#content")
    assert page.get_attribute("html", "lang") == "pt-br"
    # Money never breaks between "R$" and the amount.
    for cell in page.locator("td.field-value_brl, td.field-cart_value").all():
        assert cell.evaluate("el => el.getClientRects().length") == 1
        assert "\n" not in cell.inner_text()
    if width == "1280":
        # The whole table is on screen: nothing is cut at the right edge.
        box = page.locator("#result_list").bounding_box()
        assert box["x"] + box["width"] <= 1280
    else:
        # On a phone the page itself does not scroll sideways; the table does, inside its box.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1


def test_support_erases_a_customer_after_confirming_with_a_reason(page, sign_in):
    chefe = User.objects.create_superuser("chefe", password=PASSWORD)
    maria = factories.CustomerFactory(phone="+5548999327881", name="Maria Silva")
    factories.InboundMessageFactory(
        conversation=factories.ConversationFactory(abandonment=factories.AbandonmentFactory(customer=maria)),
        text="Oi",
    )
    sign_in(chefe)

    page.goto("/admin/recovery/customer/")
    run_action(page, "erase_personal_data", [maria.pk])

    page.wait_for_selector("#confirm-form")
    assert "apagado para sempre" in page.inner_text("#confirm-warning")
    screenshot(page, "admin-erase-confirmation.png")
    # The reason is mandatory: the browser itself asks for it before anything is posted.
    assert page.locator("#id_reason").get_attribute("required") is not None
    maria.refresh_from_db()
    assert maria.name == "Maria Silva"

    page.fill("#id_reason", "Pedido LGPD por e-mail em 30/11, chamado 4521")
    page.click("#confirm-form input[type=submit]")

    page.wait_for_selector("ul.messagelist li.success")
    maria.refresh_from_db()
    assert maria.phone.startswith("erased:") and maria.name == ""
    assert "Dados pessoais apagados em" in page.inner_text("#result_list")

    page.click("#check-phone")
    page.fill("#id_phone", "(48) 99932-7881")
    page.click("#check-phone-form input[type=submit]")
    assert "Os dados pessoais foram apagados em" in page.inner_text("#phone-verdict")
    screenshot(page, "admin-phone-check.png")


def test_no_page_asks_for_a_missing_favicon(page, sign_in):
    sign_in(User.objects.create_superuser("chefe", password=PASSWORD))
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)

    page.goto("/")

    page.wait_for_selector("#sara-dashboard")
    icon = page.get_attribute("link[rel=icon]", "href")
    assert page.request.get(icon).status == 200
    assert missing == []


def waiting_for_a_person(name: str, phone: str, reason: str, *, wrote: str, minutes: int) -> Conversation:
    """A customer handed off `minutes` ago, whose message waits for a person."""
    since = timezone.now() - timedelta(minutes=minutes)
    conversation = factories.ConversationFactory(
        abandonment__customer=factories.CustomerFactory(phone=phone, name=name),
        status=Conversation.Status.ACTIVE,
        needs_human=True,
        handoff_reason=reason,
        handoff_at=since,
        last_user_message_at=since,
    )
    factories.InboundMessageFactory(conversation=conversation, text=wrote, status="processed")
    return conversation


def test_support_takes_a_waiting_customer_from_the_inbox_replies_and_resolves(
    page, sign_in, graph, monkeypatch
):
    from recovery import admin_handoff

    # The inbox refreshes itself every second here, so the test sees it without waiting long.
    monkeypatch.setattr(admin_handoff, "INBOX_REFRESH_SECONDS", 1)
    suporte = staff("suporte", "support")
    now = timezone.now()
    maria = factories.ConversationFactory(
        abandonment=factories.AbandonmentFactory(
            customer=factories.CustomerFactory(phone="+5548999327881", name="Maria Silva"),
            value=Decimal("297.00"),
        ),
        status=Conversation.Status.ACTIVE,
        needs_human=True,
        handoff_reason=Conversation.HandoffReason.EXCHANGE_LIMIT,
        handoff_at=now - timedelta(minutes=42),
        last_user_message_at=now - timedelta(minutes=42),
        exchanges=5,
    )
    factories.InboundMessageFactory(
        conversation=maria, text="Consigo pagar metade no pix e metade no cartão?", status="processed"
    )
    waiting_for_a_person(
        "João Souza",
        "+5511987654321",
        Conversation.HandoffReason.ASKED_FOR_PERSON,
        wrote="Quero falar com um atendente",
        minutes=7,
    )
    graph.add(responses.POST, GRAPH_URL, json=graph_ok(WAMID))
    sign_in(suporte)

    page.goto("/admin/")
    assert page.inner_text("#waiting-count") == "2"
    assert page.inner_text("#oldest-wait") in {"42 min", "43 min"}  # the clock runs on
    page.click("#ops-inbox")
    rows = page.locator("#inbox-list tbody tr")
    assert rows.count() == 2
    assert "Maria Silva" in rows.nth(0).inner_text()  # the longest wait first
    assert "metade no pix" in rows.nth(0).inner_text()

    # A customer asks for a person meanwhile: the list shows her without a reload (a reload would
    # drop the mark left on the page).
    page.evaluate("window.saraMark = 'still here'")
    ana = waiting_for_a_person(
        "Ana Lima",
        "+5521988887777",
        Conversation.HandoffReason.PAYMENT_MISMATCH,
        wrote="Paguei mas não confirmou",
        minutes=2,
    )
    page.wait_for_selector(f"#inbox-{ana.pk}")
    assert page.evaluate("window.saraMark") == "still here"
    screenshot(page, "admin-inbox.png")

    page.click(f"#inbox-{maria.pk} button.sara-take")
    page.wait_for_selector("#reply-form")
    assert "assumida por suporte" in page.inner_text("#handoff-state")
    page.fill("#id_text", "Oi Maria! Aqui é do suporte: dá sim, te mando os dois links já já.")
    page.click("#reply-send")

    page.wait_for_selector("ul.messagelist li.success")
    assert len(graph.calls) == 1
    assert json.loads(graph.calls[0].request.body) == text_body(
        "+5548999327881", "Oi Maria! Aqui é do suporte: dá sim, te mando os dois links já já."
    )
    last = page.locator(".sara-bubble").last
    assert "suporte" in last.inner_text()
    assert "enviada" in last.inner_text()
    screenshot(page, "admin-handoff.png")

    page.click("#handoff-resolve")
    page.wait_for_selector("ul.messagelist li.success")
    maria.refresh_from_db()
    assert (maria.status, maria.close_reason, maria.assigned_to) == (
        Conversation.Status.CLOSED,
        Conversation.CloseReason.RESOLVED,
        suporte,
    )
    assert page.locator("#reply-form").count() == 0
    page.goto("/admin/recovery/conversation/inbox/")
    assert page.locator(f"#inbox-{maria.pk}").count() == 0


def test_under_the_content_security_policy_the_admin_is_styled_and_the_inbox_refreshes(
    page, sign_in, monkeypatch
):
    from recovery import admin_handoff

    monkeypatch.setattr(admin_handoff, "INBOX_REFRESH_SECONDS", 1)
    violations: list[str] = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security" in message.text else None,
    )
    sign_in(staff("suporte", "support"))

    response = page.goto("/admin/recovery/conversation/inbox/")
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    # The admin's own stylesheet applied (its header colour), Sara's script loaded and running.
    assert page.evaluate("document.styleSheets.length") >= 2
    page.evaluate("window.saraMark = 'still here'")
    waiting = factories.ConversationFactory(
        abandonment__customer=factories.CustomerFactory(phone="+5521988887777", name="Ana Lima"),
        status=Conversation.Status.ACTIVE,
        needs_human=True,
        handoff_reason=Conversation.HandoffReason.ASKED_FOR_PERSON,
        handoff_at=timezone.now() - timedelta(minutes=2),
        last_user_message_at=timezone.now() - timedelta(minutes=3),
    )
    page.wait_for_selector(f"#inbox-{waiting.pk}")
    assert page.evaluate("window.saraMark") == "still here", "the page reloaded instead of refreshing"
    assert violations == []
