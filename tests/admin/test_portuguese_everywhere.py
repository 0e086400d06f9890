"""Every staff screen reads in Portuguese: no English sentence, title, filter, status or code left.

Each admin list, change form and add form of Sara's apps, and the custom pages, is rendered as a
superuser with pt-br active, with rows in it; the text a person reads (tags, scripts and styles
stripped, form values kept out) is searched for:
- any of Sara's own msgids shown as is: a string the code marks for translation but the page
  did not translate (the catalogue lacks it, or the code translates it too early);
- English words no Portuguese screen uses ("Conversation", "Updated", "platform", "Waiting"...):
  strings never marked for translation at all, such as a model's __str__ or a choice label.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import RequestFactory
from django.utils import timezone

from compliance.models import OptOutKeyword
from messaging.models import Message, StatusUpdate, Template, WebhookEvent
from recovery.models import CannedReply, Conversation, Shop, SourceCheckout
from tests import factories
from tests.admin.test_language import CATALOGUE, po_entries
from tests.admin.test_support import product_form

pytestmark = pytest.mark.django_db

SARA_APPS = ("recovery", "messaging", "compliance")
CUSTOM_PAGES = [
    "/admin/",
    "/admin/money/",
    "/admin/recovery/conversation/inbox/",
    "/admin/recovery/sourcecheckout/",
    "/admin/messaging/message/?ops=failed",
    "/admin/messaging/message/?ops=stuck",
    "/admin/recovery/customer/check-phone/",
]
# Words of English that no Portuguese sentence uses; a page showing one shows untranslated text.
ENGLISH = frozenset(
    """
    the of and with without from this that these those which was were been has have does doesn't
    not yes none true false
    conversation conversations message messages customer customers cart carts amount template
    templates updated created waiting opened completed skipped sent delivered read failed pending
    queued received active closed expired converted platform network error change select view
    add delete history save match matches by settings step steps weight reply replies inbound
    outbound support keyword keywords
    """.split()  # noqa: SIM905 - a word list reads better as words
)
# Vendor names, codes and proper nouns a Portuguese page still shows as they are.
ALLOWED = frozenset(
    {"WhatsApp", "Meta", "Graph", "Shopify", "Nuvemshop", "Hotmart", "Kiwify", "Yampi", "PIX"}
)
WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
# Addresses and dotted names (order.paid, https://…) are codes a platform defines, not words.
CODES = re.compile(r"\S*(?:://|\.\w)\S*")


class VisibleText(HTMLParser):
    """The text a person reads on the page: no scripts, styles, hidden inputs or typed values."""

    SKIP = {"script", "style", "textarea", "select", "option", "pre", "code", "title"}

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.chunks: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.depth += 1
        attributes = dict(attrs)
        # Button labels and placeholders are read too.
        if tag == "input" and attributes.get("type") in {"submit", "button"} and attributes.get("value"):
            self.chunks.append(attributes["value"])

    def handle_endtag(self, tag):
        if tag in self.SKIP and self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if not self.depth and data.strip():
            self.chunks.append(" ".join(data.split()))


def visible_text(html: str) -> list[str]:
    parser = VisibleText()
    parser.feed(html)
    return parser.chunks


def untranslated_msgids() -> set[str]:
    """Sara's msgids whose Portuguese differs from the English: showing one means it was missed."""
    return {
        msgid
        for msgid, msgstr in po_entries(CATALOGUE / "django.po").items()
        if isinstance(msgid, str) and msgid != msgstr and len(msgid) > 3
    }


def english_in(chunks: list[str], msgids: set[str]) -> list[str]:
    found = []
    for chunk in chunks:
        words = [w for w in WORD.findall(CODES.sub(" ", chunk)) if w not in ALLOWED]
        if chunk in msgids or any(word.lower() in ENGLISH for word in words):
            found.append(chunk)
    return found


@pytest.fixture
def rows(admin_user):
    """A little of everything, so lists have rows and change forms have an object."""
    admin_user.first_name, admin_user.last_name = "Ana", "Souza"
    admin_user.save()
    customer = factories.CustomerFactory(name="Maria Silva", phone="+5548999327881")
    product = factories.ProductFactory(price=Decimal("397.00"), faq="P: Tem garantia?\nR: Sim, 12 meses.")
    cart = factories.AbandonmentFactory(customer=customer, product=product, value=Decimal("1299.00"))
    conversation = factories.ConversationFactory(
        abandonment=cart,
        status=Conversation.Status.ACTIVE,
        needs_human=True,
        handoff_reason=Conversation.HandoffReason.PAYMENT_MISMATCH,
        handoff_at=timezone.now() - timedelta(minutes=7),
        assigned_to=admin_user,
        last_user_message_at=timezone.now() - timedelta(minutes=7),
    )
    factories.InboundMessageFactory(
        conversation=conversation, text="Quero falar com uma pessoa", metadata={"intent": "human"}
    )
    factories.OutboundMessageFactory(
        conversation=conversation,
        kind=Message.Kind.TEMPLATE,
        purpose=Message.Purpose.FIRST_CONTACT,
        status=Message.Status.FAILED,
        error_code="network",
        error_detail="ConnectionError: connection refused",
        metadata={"template": {"name": "recovery_invitation", "language": "pt_BR", "parameters": []}},
    )
    factories.OutboundMessageFactory(
        conversation=conversation, status=Message.Status.SENT, whatsapp_message_id="wamid.sent"
    )
    StatusUpdate.objects.create(
        whatsapp_message_id="wamid.later", status="delivered", timestamp=timezone.now()
    )
    WebhookEvent.objects.create(
        type=WebhookEvent.Type.PAYMENT,
        external_id="pay-1",
        payload={"paymentId": "pay-1", "status": "paid", "amount": "10.00"},
        error="Amount does not match the cart.",
    )
    Template.objects.get_or_create(name="recovery_invitation", language="pt_BR")
    for number, status in enumerate(SourceCheckout.Status):
        SourceCheckout.objects.create(platform="shopify", checkout_id=f"chk-{number}", status=status)
    OptOutKeyword.objects.get_or_create(keyword="parar")
    CannedReply.objects.create(title="Prazo de entrega", text="O prazo aparece no checkout com o CEP.")


def admin_pages() -> list[str]:
    pages = list(CUSTOM_PAGES)
    for model in admin.site._registry:
        if model._meta.app_label not in SARA_APPS:
            continue
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        pages += [base, f"{base}__first__/change/"]
        if may_add(model):
            pages.append(f"{base}add/")
    return sorted(set(pages))


def may_add(model) -> bool:
    """Whether a superuser sees the model's add page (read-only models have none)."""
    request = RequestFactory().get("/admin/")
    request.user = get_user_model()(is_active=True, is_staff=True, is_superuser=True)
    return admin.site._registry[model].has_add_permission(request)


@pytest.mark.parametrize("url", admin_pages())
def test_the_page_speaks_only_portuguese(admin_client, rows, url):
    if "__first__" in url:
        model = next(m for m in admin.site._registry if f"/{m._meta.model_name}/" in url)
        first = model._default_manager.order_by("pk").first()
        url = url.replace("__first__", str(first.pk))

    response = admin_client.get(url, follow=True)

    assert response.status_code == 200
    english = english_in(visible_text(response.content.decode()), untranslated_msgids())
    assert not english, f"English on {url}:\n" + "\n".join(english)


def test_the_check_finds_english_where_there_is_some():
    chunks = visible_text("<h1>Conversation 2 (active)</h1><p>Updated at:</p><script>var the = 1</script>")

    assert english_in(chunks, set()) == ["Conversation 2 (active)", "Updated at:"]
    assert english_in(["Selecione cliente"], {"Select customer"}) == []
    assert english_in(["Select customer"], {"Select customer"}) == ["Select customer"]


def test_the_settings_read_the_project_catalogue_first():
    assert Path(settings.LOCALE_PATHS[0]) == CATALOGUE.parent.parent


# --- Gender and number -------------------------------------------------------------------------


def test_a_keyword_added_is_announced_in_the_feminine(admin_client):
    response = admin_client.post(
        "/admin/compliance/optoutkeyword/add/", {"keyword": "chega disso", "active": "on"}, follow=True
    )

    (message,) = [str(m) for m in response.context["messages"]]
    assert message.startswith("A palavra-chave de descadastro “")
    assert message.endswith("” foi adicionada com sucesso.")
    assert 'href="/admin/compliance/optoutkeyword/' in message


def test_the_shop_changed_is_announced_in_the_feminine(admin_client):
    from tests.admin.test_shop import form

    shop = Shop.objects.get()

    response = admin_client.post(f"/admin/recovery/shop/{shop.pk}/change/", form(shop), follow=True)

    (message,) = [str(m) for m in response.context["messages"]]
    assert message.startswith("A loja “") and message.endswith("” foi alterada com sucesso.")


def test_a_product_changed_stays_in_the_masculine_and_reads_active_in_the_masculine(admin_client):
    product = factories.ProductFactory(name="Curso de Python")

    response = admin_client.post(
        f"/admin/recovery/product/{product.pk}/change/", product_form(product), follow=True
    )

    (message,) = [str(m) for m in response.context["messages"]]
    assert message.startswith("O produto “") and message.endswith("” foi alterado com sucesso.")
    listing = admin_client.get("/admin/recovery/product/").content.decode()
    assert ">Ativo<" in listing or "Por ativo" in listing
    assert "Ativa" not in listing


def test_the_customer_filters_say_todos_and_the_inbox_todas(admin_client, rows):
    customers = visible_text(admin_client.get("/admin/recovery/customer/").content.decode())

    assert "Todos" in customers and "Todas" not in customers


def test_a_conversation_and_a_message_have_portuguese_titles(rows):
    conversation = Conversation.objects.get()
    message = conversation.messages.filter(status="failed").get()

    assert str(conversation) == f"Conversa {conversation.pk} (ativa)"
    assert str(message) == f"Mensagem {message.pk}, enviada: modelo (falhou)"


def test_the_selection_count_reads_right_for_zero_one_and_many(admin_client):
    script = admin_client.get("/admin/jsi18n/").content.decode()

    assert '"Sele\\u00e7\\u00e3o: %(sel)s de %(cnt)s"' in script or '"Seleção: %(sel)s de %(cnt)s"' in script
    assert 'selecionado"' not in script


def test_the_cart_page_shows_money_in_reais_and_offers_as_sentences(admin_client):
    cart = factories.AbandonmentFactory(
        value=Decimal("297.00"),
        paid_amount=Decimal("252.45"),
        quotes=[{"percent": "15", "value": "252.45", "link": "https://pay.example.com/x?cupom=VOLTA15"}],
    )

    text = " ".join(
        visible_text(admin_client.get(f"/admin/recovery/abandonment/{cart.pk}/change/").content.decode())
    )

    assert "R$ 297,00" in text and "R$ 252,45" in text
    assert "15 % de desconto: R$ 252,45, link https://pay.example.com/x?cupom=VOLTA15" in text
    assert '"percent"' not in text
