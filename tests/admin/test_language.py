"""The back-office speaks Brazilian Portuguese (English on request): pages, money, times, errors."""

from __future__ import annotations

import ast
import gettext
import shutil
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.core.management import call_command
from django.test import Client, override_settings

from tests.factories import AbandonmentFactory, ConversationFactory, CustomerFactory, ProductFactory

pytestmark = pytest.mark.django_db

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "pt_BR" / "LC_MESSAGES"
# Sara's own code and templates: what makemessages reads for the catalogue.
SOURCES = ["backoffice", "compliance", "config", "core", "messaging", "recovery", "sara", "templates"]


def po_entries(path: Path) -> dict[str | tuple[str, str], str | tuple[str, str]]:
    """msgid → msgstr of a .po written without wrapping (as makemessages --no-wrap writes it)."""
    entries: dict = {}
    msgid = plural = context = None
    forms: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("msgctxt "):
            context = ast.literal_eval(line[8:])
        elif line.startswith("msgid "):
            msgid, plural, forms = ast.literal_eval(line[6:]), None, []
            # A msgid with a context is stored the way gettext looks it up: "context\x04msgid".
            if context is not None:
                msgid, context = f"{context}\x04{msgid}", None
        elif line.startswith("msgid_plural "):
            plural = ast.literal_eval(line[13:])
        elif line.startswith("msgstr "):
            entries[msgid] = ast.literal_eval(line[7:])
        elif line.startswith("msgstr["):
            forms.append(ast.literal_eval(line.split(" ", 1)[1]))
            entries[(msgid, plural)] = tuple(forms)
    entries.pop("", None)  # the header
    return entries


def test_every_msgid_of_the_catalogue_has_a_portuguese_translation():
    entries = po_entries(CATALOGUE / "django.po")

    assert len(entries) > 300
    untranslated = [
        msgid
        for msgid, msgstr in entries.items()
        if not all(msgstr if isinstance(msgstr, tuple) else [msgstr])
    ]
    assert untranslated == []
    assert "#, fuzzy" not in (CATALOGUE / "django.po").read_text(encoding="utf-8")


def test_the_compiled_catalogue_holds_every_translation_of_the_po():
    with (CATALOGUE / "django.mo").open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)

    for msgid, msgstr in po_entries(CATALOGUE / "django.po").items():
        if isinstance(msgid, tuple):
            assert compiled.ngettext(*msgid, 1) == msgstr[0]
            assert compiled.ngettext(*msgid, 2) == msgstr[1]
        else:
            assert compiled.gettext(msgid) == msgstr, msgid


@pytest.mark.skipif(
    not shutil.which("xgettext"), reason="makemessages needs GNU gettext (apt-get install gettext)"
)
def test_no_string_of_sara_is_missing_from_the_catalogue(tmp_path, monkeypatch):
    """makemessages over the code as it is now finds nothing the committed catalogue lacks."""
    for name in SOURCES:
        (tmp_path / name).symlink_to(Path(settings.BASE_DIR) / name)
    monkeypatch.chdir(tmp_path)

    with override_settings(LOCALE_PATHS=[tmp_path / "locale"]):
        call_command(
            "makemessages", locale=["pt_BR"], no_wrap=True, no_location=True, symlinks=True, verbosity=0
        )

    fresh = po_entries(tmp_path / "locale" / "pt_BR" / "LC_MESSAGES" / "django.po")
    committed = po_entries(CATALOGUE / "django.po")
    assert sorted(map(str, set(fresh) - set(committed))) == []


@pytest.mark.parametrize(
    ("url", "portuguese"),
    [
        ("/admin/", "Painel da Sara"),
        ("/admin/recovery/product/", "Selecione produto para modificar"),
        ("/admin/recovery/customer/", "Selecione cliente para modificar"),
        ("/admin/recovery/abandonment/", "Selecione carrinho abandonado para visualizar"),
        ("/admin/recovery/conversation/", "Selecione conversa para modificar"),
        ("/admin/messaging/message/", "Selecione mensagem para visualizar"),
        ("/admin/compliance/optoutkeyword/add/", "Adicionar palavra-chave de descadastro"),
    ],
)
def test_admin_pages_read_in_portuguese(admin_client, url, portuguese):
    page = admin_client.get(url).content.decode()

    assert portuguese in page
    assert 'lang="pt-br"' in page


def test_the_conversation_list_labels_statuses_and_reasons_in_portuguese(admin_client):
    ConversationFactory(status="closed", close_reason="opted_out")
    ConversationFactory(status="awaiting_response", needs_human=True, handoff_reason="exchange_limit")

    page = admin_client.get("/admin/recovery/conversation/").content.decode()

    for label in ("Encerrada", "Descadastrou-se", "Aguardando resposta", "Limite de trocas atingido"):
        assert label in page
    for code in ("opted_out", "Awaiting", "exchange_limit<"):
        assert code not in page


def test_english_is_there_for_who_asks_for_it(admin_client):
    CustomerFactory()

    page = admin_client.get("/admin/recovery/customer/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "Select customer to change" in page
    assert "Opt out selected customers (at their request)…" in page


def test_money_in_reais_and_times_to_the_second_the_brazilian_way(admin_client):
    with time_machine.travel(datetime(2026, 3, 2, 17, 5, 9, tzinfo=UTC), tick=False):
        AbandonmentFactory(value=Decimal("1299.00"), product=ProductFactory(price=Decimal("349.90")))

    carts = admin_client.get("/admin/recovery/abandonment/").content.decode()
    products = admin_client.get("/admin/recovery/product/").content.decode()

    assert "R$ 1.299,00" in carts
    assert "02/03/2026 14:05:09" in carts  # 17:05:09 UTC in São Paulo
    assert "R$ 349,90" in products


def test_a_customer_search_by_phone_still_reads_in_portuguese(admin_client):
    CustomerFactory(phone="+5548999327881", name="Maria Silva")

    page = admin_client.get("/admin/recovery/customer/", {"q": "(48) 99932-7881"}).content.decode()

    assert "Maria Silva" in page
    assert "Nome, ou telefone em qualquer formato" in page


@pytest.mark.parametrize(
    ("language", "sara_message", "drf_message"),
    [
        ("pt-br", "O corpo não é um JSON válido.", "As credenciais de autenticação não foram fornecidas."),
        ("en", "Body is not valid JSON.", "Authentication credentials were not provided."),
    ],
)
def test_api_errors_speak_one_language_per_request(post_signed, client, language, sara_message, drf_message):
    bad_json = post_signed("/webhook/abandonment", b"{not json", headers={"HTTP_ACCEPT_LANGUAGE": language})
    no_token = Client().post(
        "/conversations/1/close",
        {"reason": "x"},
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE=language,
    )

    assert bad_json.status_code == 400
    assert bad_json.json()["error"]["code"] == "VALIDATION_ERROR"
    assert bad_json.json()["error"]["message"] == sara_message
    assert no_token.status_code == 401
    assert no_token.json()["error"]["message"] == drf_message


def test_a_payment_for_an_unknown_cart_is_refused_in_the_requests_language(post_signed):
    body = {"abandonmentId": "ab-404", "paymentId": "pay-1", "status": "paid", "amount": "10.00"}

    portuguese = post_signed("/webhook/payment", body)
    english = post_signed(
        "/webhook/payment", {**body, "paymentId": "pay-2"}, headers={"HTTP_ACCEPT_LANGUAGE": "en"}
    )

    assert portuguese.json()["error"]["message"] == "Nenhum abandono com este abandonmentId."
    assert english.json()["error"]["message"] == "No abandonment with this abandonmentId."


def test_the_bare_address_leads_to_the_admin_and_the_favicon_exists(client):
    from django.contrib.staticfiles import finders

    home = client.get("/")
    icon = client.get("/favicon.ico")

    assert (home.status_code, home["Location"]) == (302, "/admin/")
    assert icon.status_code == 301
    assert icon["Location"].endswith("sara/favicon.svg")
    assert finders.find("sara/favicon.svg")
