"""The support desk as a support agent uses it, in Chromium (SPEC §8): every waiting customer
reachable, the count in the tab's title, a desktop notice once per customer who starts waiting
(only with the person's permission), a customer who writes back, the take-over confirmation,
assignment, canned replies and Ctrl+Enter, private notes, and the template sent once.

PostgreSQL only: the live server's threads and the test's writes share one database, which
SQLite locks ("database table is locked"); the page is read by waiting for what it shows."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
import responses
from django.utils import timezone

from backoffice import context_processors
from messaging.models import Message, WebhookEvent
from recovery.models import CannedReply, Conversation, PrivateNote
from tests.admin.test_browser import WAMID, browser, page, screenshot, sign_in, staff  # noqa: F401 - fixtures
from tests.conftest import GRAPH_URL, graph_ok
from tests.factories import ConversationFactory, CustomerFactory, InboundMessageFactory

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

MARIA = "+5548999327881"


def waiting(
    *,
    name: str = "Maria Silva",
    phone: str | None = None,
    waited: timedelta = timedelta(minutes=20),
    **fields,
):
    now = timezone.now()
    customer = CustomerFactory(name=name, **({"phone": phone} if phone else {}))
    conversation = ConversationFactory(
        **{
            "abandonment__customer": customer,
            "abandonment__value": Decimal("297.00"),
            "status": Conversation.Status.ACTIVE,
            "needs_human": True,
            "handoff_reason": Conversation.HandoffReason.ASKED_FOR_PERSON,
            "handoff_at": now - waited,
            "last_user_message_at": now - waited,
            **fields,
        }
    )
    InboundMessageFactory(conversation=conversation, text="Quero falar com uma pessoa", status="processed")
    return conversation


def no_sideways_scroll(page) -> bool:  # noqa: F811
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_support_pages_through_250_waiting_customers_with_the_true_count(page, sign_in):  # noqa: F811
    conversations = [waiting(name=f"Cliente {n:03d}", waited=timedelta(minutes=600 - n)) for n in range(250)]
    sign_in(staff("suporte", "support"))

    page.goto("/admin/")
    assert page.inner_text("#desk-waiting") == "250"
    assert page.inner_text("#waiting-count") == "250"  # the dashboard's own count
    assert page.title().startswith("(250) ")
    page.click("#desk-waiting-link")
    assert "250" in page.inner_text("#inbox-total")

    seen: list[int] = []
    while True:
        ids = page.eval_on_selector_all(
            "#inbox-list tbody tr", "rows => rows.map(r => Number(r.id.slice(6)))"
        )
        seen += ids
        if page.locator("#inbox-next").count() == 0:
            break
        page.click("#inbox-next")
        page.wait_for_selector(f"#inbox-page:has-text('{len(seen) // 50 + 1}')")
    assert seen == [c.pk for c in conversations]

    page.goto("/admin/recovery/conversation/inbox/")
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert no_sideways_scroll(page), f"the inbox scrolls sideways at {width} px"
        assert page.locator("#inbox-list button.sara-take").first.is_visible()
        screenshot(page, f"inbox-{width}.png")


def test_a_customer_writing_after_resolve_brings_the_conversation_back(page, sign_in, post_signed):  # noqa: F811
    from tests.conftest import first_message, meta_payload

    conversation = waiting(phone=MARIA)
    sign_in(staff("suporte", "support"))
    page.goto(f"/admin/recovery/conversation/{conversation.pk}/change/")
    page.click("#handoff-resolve")
    page.wait_for_selector("#handoff-reopen")
    page.goto("/admin/recovery/conversation/inbox/")
    assert page.locator(f"#inbox-{conversation.pk}").count() == 0

    payload = meta_payload("text")
    message = first_message(payload)
    message["id"] = "wamid.desk.back"
    message["timestamp"] = str(int(timezone.now().timestamp()))
    message["text"]["body"] = "Oi, voltei: e o certificado?"
    assert post_signed("/webhook/messages", payload).status_code == 200

    page.wait_for_selector("#desk-waiting:text-is('1')", timeout=30_000)
    page.reload()
    row = page.locator(f"#inbox-{conversation.pk}")
    assert "Cliente voltou a escrever" in row.inner_text()
    assert "e o certificado?" in row.inner_text()


def test_taking_over_a_colleagues_conversation_asks_first(page, sign_in):  # noqa: F811
    colleague = staff("julia", "support")
    conversation = waiting(assigned_to=colleague, assigned_at=timezone.now())
    suporte = staff("suporte", "support")
    sign_in(suporte)
    page.goto(f"/admin/recovery/conversation/{conversation.pk}/change/")

    questions: list[str] = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    page.click("#handoff-take")
    assert questions == ["julia está com esta conversa. Assumir mesmo assim?"]
    conversation.refresh_from_db()
    assert conversation.assigned_to == colleague

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#handoff-take")
    page.wait_for_selector("ul.messagelist li.success")
    conversation.refresh_from_db()
    assert conversation.assigned_to == suporte


def test_support_assigns_a_conversation_to_a_colleague(page, sign_in):  # noqa: F811
    colleague = staff("julia", "support")
    conversation = waiting()
    sign_in(staff("suporte", "support"))
    page.goto(f"/admin/recovery/conversation/{conversation.pk}/change/")

    page.select_option("#assignee", str(colleague.pk))
    page.click("#assign-send")

    page.wait_for_selector("ul.messagelist li.success")
    assert "Conversa passada para julia." in page.inner_text("ul.messagelist")
    conversation.refresh_from_db()
    assert conversation.assigned_to == colleague
    assert "assumida por julia" in page.inner_text("#handoff-state")


def test_a_canned_reply_inserted_with_slash_goes_out_with_ctrl_enter(page, sign_in, graph):  # noqa: F811
    CannedReply.objects.create(
        title="Prazo de entrega", text="O prazo aparece no checkout assim que você informa o CEP."
    )
    CannedReply.objects.create(title="Formas de pagamento", text="Aceitamos PIX, boleto e cartão.")
    conversation = waiting(phone=MARIA)
    graph.add(responses.POST, GRAPH_URL, json=graph_ok(WAMID))
    sign_in(staff("suporte", "support"))
    page.goto(f"/admin/recovery/conversation/{conversation.pk}/change/")

    page.click("#id_text")
    page.keyboard.type("Oi Maria! /praz")
    page.wait_for_selector("#canned-menu .sara-canned-choice")
    assert page.locator("#canned-menu .sara-canned-choice").all_inner_texts() == ["Prazo de entrega"]
    page.keyboard.press("Enter")
    assert (
        page.input_value("#id_text") == "Oi Maria! O prazo aparece no checkout assim que você informa o CEP."
    )
    page.keyboard.press("Control+Enter")

    page.wait_for_selector("ul.messagelist li.success")
    assert len(graph.calls) == 1
    assert json.loads(graph.calls[0].request.body)["text"]["body"] == (
        "Oi Maria! O prazo aparece no checkout assim que você informa o CEP."
    )


def test_a_private_note_never_reaches_graph(page, sign_in, graph):  # noqa: F811
    conversation = waiting(phone=MARIA)
    sign_in(staff("suporte", "support"))
    page.goto(f"/admin/recovery/conversation/{conversation.pk}/change/")

    page.fill("#side-note textarea", "Cliente VIP: ligar amanhã às 10h")
    page.click("#note-send")

    page.wait_for_selector(".sara-note")
    assert "Cliente VIP: ligar amanhã às 10h" in page.inner_text(".sara-note")
    assert "nunca é enviada ao cliente" in page.inner_text(".sara-note")
    assert len(graph.calls) == 0
    assert PrivateNote.objects.count() == 1
    assert not Message.objects.filter(direction=Message.Direction.OUT).exists()


def test_the_template_is_shown_confirmed_once_and_a_double_click_sends_one(page, sign_in, graph):  # noqa: F811
    conversation = waiting(phone=MARIA, waited=timedelta(hours=30))
    graph.add(responses.POST, GRAPH_URL, json=graph_ok(WAMID))
    sign_in(staff("suporte", "support"))
    page.goto(f"/admin/recovery/conversation/{conversation.pk}/change/")

    page.click("#template-send")
    page.wait_for_selector("#template-preview")
    assert "Oi, Maria! Curso de Python ainda está reservado para você." in page.inner_text(
        "#template-preview"
    )
    assert len(graph.calls) == 0

    page.dblclick("#template-confirm")
    page.wait_for_selector("ul.messagelist li")
    assert len(graph.calls) == 1
    assert json.loads(graph.calls[0].request.body)["type"] == "template"
    assert Message.objects.filter(direction=Message.Direction.OUT).count() == 1


def test_the_tab_title_count_rises_when_a_new_customer_waits(page, sign_in, monkeypatch):  # noqa: F811
    monkeypatch.setattr(context_processors, "DESK_POLL_SECONDS", 1)
    waiting(name="Ana Lima")
    sign_in(staff("suporte", "support"))
    page.context.grant_permissions(["notifications"])
    page.goto("/admin/recovery/product/")
    assert page.title().startswith("(1) ")

    waiting(name="João Souza")

    pytest.importorskip("playwright.sync_api").expect(page).to_have_title(
        re.compile(r"^\(2\) "), timeout=15_000
    )
    assert page.inner_text("#desk-waiting") == "2"
    assert page.evaluate("window.saraDeskAnnounced") == 1  # the sound and the desktop notice


# Before the page's own script: a desktop-notification API that answers with the permission the
# test gives and records every notice shown, and a count of the polls the page has answered
# (each one writes the count into the header again).
NOTICES = """
window.__notes = [];
window.Notification = class {
  static permission = %s;
  static requestPermission() { return Promise.resolve(this.permission); }
  constructor(title, options) {
    window.__notes.push({ title: title, body: options.body, tag: options.tag });
  }
};
window.__polls = 0;
document.addEventListener("DOMContentLoaded", () => {
  new MutationObserver(() => { window.__polls += 1; }).observe(
    document.getElementById("desk-waiting"), { childList: true, characterData: true, subtree: true }
  );
});
"""


@pytest.mark.parametrize("permission", ["granted", "default", "denied"])
def test_a_desktop_notice_once_per_customer_who_starts_waiting_if_allowed(
    page,  # noqa: F811
    sign_in,  # noqa: F811
    monkeypatch,
    permission,
):
    monkeypatch.setattr(context_processors, "DESK_POLL_SECONDS", 1)
    # Ids past a thousand, as in a shop's first months: the page must hand them over unformatted.
    back_later = waiting(name="Bia Rocha", needs_human=False, handoff_reason="", handoff_at=None, id=1_201)
    waiting(name="Ana Lima", id=1_202)
    sign_in(staff("suporte", "support"))
    page.add_init_script(NOTICES % json.dumps(permission))
    page.goto("/admin/recovery/conversation/inbox/")
    assert page.title().startswith("(1) ")
    assert page.locator("#desk-notify").is_visible() == (permission == "default")  # "Receber avisos"

    def quiet_polls(n: int) -> None:
        answered = page.evaluate("window.__polls")
        page.wait_for_function("n => window.__polls >= n", arg=answered + n, timeout=15_000)

    quiet_polls(2)
    assert page.evaluate("window.__notes") == []  # Ana waited before the page opened

    waiting(name="João Souza", id=1_203)
    page.wait_for_function("() => document.title.startsWith('(2) ')", timeout=15_000)
    quiet_polls(2)
    notice = {
        "title": "Um cliente aguarda atendente",
        "body": "Abra a fila de atendimento para responder.",
        "tag": "sara-desk",
    }
    expected = [notice] if permission == "granted" else []
    assert page.evaluate("window.__notes") == expected

    # Bia writes back in her older conversation: she waits again, though no newer one came.
    Conversation.objects.filter(pk=back_later.pk).update(
        needs_human=True,
        handoff_reason=Conversation.HandoffReason.ASKED_FOR_PERSON,
        handoff_at=timezone.now(),
    )
    page.wait_for_function("() => document.title.startsWith('(3) ')", timeout=15_000)
    quiet_polls(2)
    assert page.evaluate("window.__notes") == expected * 2
    assert page.evaluate("window.saraDeskAnnounced") == 2  # the sound, allowed or not


def test_the_workspace_fits_1280_and_390_pixels(page, sign_in):  # noqa: F811
    conversation = waiting(phone=MARIA, handoff_reason=Conversation.HandoffReason.PAYMENT_MISMATCH)
    WebhookEvent.objects.create(
        type=WebhookEvent.Type.PAYMENT,
        external_id="pay-20931",
        reference=conversation.abandonment.external_id,
        payload={"paymentId": "pay-20931", "amount": 150, "linkType": "original", "status": "paid"},
        error="Amount does not match the cart.",
    )
    PrivateNote.objects.create(conversation=conversation, author_name="Júlia", text="Pagou metade no PIX?")
    sign_in(staff("suporte", "support"))
    page.goto(f"/admin/recovery/conversation/{conversation.pk}/change/")

    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert no_sideways_scroll(page), f"the workspace scrolls sideways at {width} px"
        assert page.locator("#side-cart").is_visible()
        assert page.locator("#reply-send").is_visible()
        screenshot(page, f"workspace-{width}.png")
