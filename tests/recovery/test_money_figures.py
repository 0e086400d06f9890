"""The money figures (SPEC §13) on a constructed month, against values worked out by hand."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.core.management import CommandError, call_command

from messaging.models import Message
from recovery.models import Abandonment, Conversation
from recovery.money.figures import money_report
from recovery.money.stats import newcombe, wilson
from tests.factories import (
    AbandonmentFactory,
    ConversationFactory,
    InboundMessageFactory,
    OutboundMessageFactory,
)

pytestmark = pytest.mark.django_db

DAY1 = datetime.fromisoformat("2026-11-03 13:00:00+00:00")  # 10:00 in São Paulo
DAY2 = DAY1 + timedelta(days=1)


# --- The intervals, against published values --------------------------------------------------


def test_wilson_interval_matches_newcombes_published_examples():
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", table I.
    low, high = wilson(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    low, high = wilson(0, 10)
    assert (round(low, 4), round(high, 4)) == (0.0, 0.2775)
    assert wilson(0, 0) is None


def test_newcombe_difference_interval_matches_the_published_examples():
    # Newcombe (1998), "Interval estimation for the difference between independent proportions", method 10.
    d, low, high = newcombe(56, 70, 48, 80)
    assert (round(d, 4), round(low, 4), round(high, 4)) == (0.2, 0.0524, 0.3339)
    d, low, high = newcombe(9, 10, 3, 10)
    assert (round(d, 4), round(low, 4), round(high, 4)) == (0.6, 0.1705, 0.809)


# --- A constructed data set -------------------------------------------------------------------


@pytest.fixture
def prices(settings):
    settings.SARA_META_PRICE_CURRENCY = "USD"
    settings.SARA_META_PRICES = {"marketing": Decimal("0.0625"), "service": Decimal("0.0068")}
    settings.SARA_FX_TO_BRL = Decimal("5.40")
    settings.SARA_MODEL_PRICES_USD = {"gpt-4o-mini": Decimal("0.20")}
    settings.SARA_META_FREE_SERVICE_PER_MONTH = 2
    settings.FOLLOWUP_AFTER_HOURS = 20
    return settings


def billed_template(conversation: Conversation, purpose: str, name: str, at: datetime) -> None:
    """A template Meta delivered at `at` and billed as marketing."""
    OutboundMessageFactory(
        conversation=conversation,
        kind=Message.Kind.TEMPLATE,
        purpose=purpose,
        metadata={"template": {"name": name, "language": "pt_BR"}},
        status=Message.Status.DELIVERED,
        sent_at=at,
        delivered_at=at,
        pricing_billable=True,
        pricing_category="marketing",
        pricing_model="PMP",
        pricing_type="regular",
    )


def contacted_cart(
    at: datetime,
    *,
    percent: str = "10",
    paid: str | None = None,
    discounted: bool = False,
    reply: bool = False,
    followup_paid: bool = False,
    time_machine,
) -> Abandonment:
    """A contacted cart worth R$ 100,00 whose first template Meta delivered and billed."""
    time_machine.move_to(at, tick=False)
    converted_at = None
    if paid:
        converted_at = at + (timedelta(hours=30) if followup_paid else timedelta(hours=2))
    abandonment = AbandonmentFactory(
        value=Decimal("100.00"),
        status=Abandonment.Status.CONVERTED if paid else Abandonment.Status.ACTIVE,
        holdout_percent=Decimal(percent),
        paid_amount=Decimal(paid) if paid else None,
        converted_at=converted_at,
        payment_id=f"pay-{at.timestamp()}-{AbandonmentFactory._meta.model.objects.count()}" if paid else None,
        conversion_link="discounted" if discounted else ("original" if paid else ""),
    )
    conversation = ConversationFactory(abandonment=abandonment)
    billed_template(conversation, Message.Purpose.FIRST_CONTACT, "recovery_invitation", at)
    if followup_paid:
        billed_template(conversation, Message.Purpose.FOLLOWUP, "recovery_followup", at + timedelta(hours=20))
    if paid:
        # The customer wrote once; the model read it with 100,000 tokens.
        InboundMessageFactory(
            conversation=conversation,
            status=Message.Status.PROCESSED,
            tokens_used=100_000,
            ai_model="gpt-4o-mini",
        )
    if reply:
        # A free-form reply without a pricing block: priced by Sara, free tier counted.
        OutboundMessageFactory(
            conversation=conversation,
            purpose=Message.Purpose.REPLY,
            status=Message.Status.DELIVERED,
            sent_at=at + timedelta(minutes=1),
            delivered_at=at + timedelta(minutes=1),
        )
    return abandonment


def held_out_cart(at: datetime, *, percent: str = "10", paid: bool = False, late: bool = False, time_machine):
    time_machine.move_to(at, tick=False)
    return AbandonmentFactory(
        value=Decimal("100.00"),
        status=Abandonment.Status.HELD_OUT,
        held_out=True,
        holdout_percent=Decimal(percent),
        paid_amount=Decimal("100.00") if paid else None,
        converted_at=(at + timedelta(hours=30 if late else 2)) if paid else None,
        payment_id=f"hold-{at.timestamp()}-{Abandonment.objects.count()}" if paid else None,
        conversion_link="original" if paid else "",
    )


@pytest.fixture
def month(prices, time_machine):
    """40 contacted carts (10 paid: 8 in full, 2 with the 10 % discount; one of them after the
    follow-up) and 30 held-out carts (3 paid without Sara, one of them late), over two days."""
    for n in range(40):
        at = DAY1 if n < 20 else DAY2
        at = at + timedelta(minutes=n)
        paid = "90.00" if n in (0, 1) else ("100.00" if n < 10 else None)
        contacted_cart(
            at,
            paid=paid,
            discounted=n in (0, 1),
            reply=n < 3,
            followup_paid=n == 9,
            time_machine=time_machine,
        )
    for n in range(30):
        at = (DAY1 if n < 15 else DAY2) + timedelta(minutes=n)
        held_out_cart(at, paid=n < 3, late=n == 2, time_machine=time_machine)


def test_the_range_figures_match_the_hand_computed_ones(month):
    report = money_report(start=DAY1.date(), end=DAY2.date())
    total = report.total

    assert (total.contacted.conversions, total.contacted.carts) == (10, 40)
    assert (total.held_out.conversions, total.held_out.carts) == (3, 30)
    # Wilson 10/40 and 3/30, worked out from the formula by hand.
    assert total.contacted.interval == pytest.approx((0.14187, 0.40194), abs=1e-4)
    assert total.held_out.interval == pytest.approx((0.03460, 0.25621), abs=1e-4)
    # 40 × (10/40 − 3/30) = 6; the interval is 40 × Newcombe's (−0.03999, 0.31542).
    assert total.incremental_conversions == pytest.approx(6.0)
    assert total.incremental_interval == pytest.approx((-1.5995, 12.6168), abs=1e-3)
    assert total.conclusive is False  # the interval holds zero: too small to conclude
    # 10 carts × R$ 100 − 3 × R$ 100 × 40/30.
    assert total.incremental_revenue == Decimal("600.00")
    # 41 marketing templates × US$ 0.0625 × 5.40, plus one service reply of three (two are in
    # the month's free tier) × US$ 0.0068 × 5.40 = 13.8375 + 0.03672.
    assert total.meta_cost == Decimal("13.87")
    # 10 reads × 100,000 tokens × US$ 0.20 per million × 5.40.
    assert total.model_cost == Decimal("1.08")
    assert total.discount == Decimal("20.00")  # 2 × (R$ 100 − R$ 90)
    assert total.net == Decimal("565.05")  # 600 − 13.87 − 1.08 − 20.00
    assert total.return_per_real == Decimal("16.17")  # 565.05 ÷ 34.95 = 16.167


def test_days_split_the_range_and_add_up_to_it(month):
    report = money_report(start=DAY1.date(), end=DAY2.date())

    assert [d.label for d in report.days] == ["03/11/2026", "04/11/2026"]
    first, second = report.days
    assert (first.contacted.conversions, first.contacted.carts) == (10, 20)
    assert (first.held_out.conversions, first.held_out.carts) == (3, 15)
    assert (second.contacted.conversions, second.contacted.carts) == (0, 20)
    assert first.meta_cost + second.meta_cost == report.total.meta_cost
    assert first.incremental_revenue == Decimal("1000.00") - Decimal("300.00") * 20 / 15


def test_templates_and_steps_are_compared_with_the_held_out_carts(month):
    report = money_report(start=DAY1.date(), end=DAY2.date())

    [template] = report.templates
    assert template.label == "recovery_invitation"
    assert (template.contacted.carts, template.held_out.carts) == (40, 30)
    first, followup = report.steps
    # Paid before any follow-up: 9 of 40; held-out carts paid within 20 h: 2 of 30.
    assert (first.contacted.conversions, first.held_out.conversions) == (9, 2)
    assert first.incremental_conversions == pytest.approx(40 * (9 / 40 - 2 / 30))
    # One cart got the follow-up and paid after it; 28 held-out carts were still open at 20 h,
    # one of which paid later.
    assert (followup.contacted.conversions, followup.contacted.carts) == (1, 1)
    assert (followup.held_out.conversions, followup.held_out.carts) == (1, 28)
    assert followup.meta_cost == Decimal("0.34")  # one marketing template: 0.0625 × 5.40
    # The first templates and the one service reply charged: 40 × 0.3375 + 0.03672.
    assert first.meta_cost == Decimal("13.54")


def test_a_change_of_share_compares_each_cart_within_its_own_draw(prices, time_machine):
    """Pooled, 15/50 against 8/40 would claim 5 extra sales; within each share there are 6 + 0."""
    for n in range(40):
        contacted_cart(
            DAY1 + timedelta(minutes=n), paid="100.00" if n < 10 else None, time_machine=time_machine
        )
    for n in range(30):
        held_out_cart(DAY1 + timedelta(minutes=n), paid=n < 3, time_machine=time_machine)
    for n in range(10):
        contacted_cart(
            DAY2 + timedelta(minutes=n),
            percent="50",
            paid="100.00" if n < 5 else None,
            time_machine=time_machine,
        )
        held_out_cart(DAY2 + timedelta(minutes=n), percent="50", paid=n < 5, time_machine=time_machine)

    report = money_report(start=DAY1.date(), end=DAY2.date())

    assert (report.total.contacted.conversions, report.total.contacted.carts) == (15, 50)
    assert (report.total.held_out.conversions, report.total.held_out.carts) == (8, 40)
    assert report.total.incremental_conversions == pytest.approx(6.0)
    assert report.total.incremental_revenue == Decimal("600.00")
    assert report.shares == [Decimal("10.00"), Decimal("50.00")]


def test_carts_drawn_under_no_share_are_left_out_and_counted(prices, time_machine):
    contacted_cart(DAY1, percent="0", paid="100.00", time_machine=time_machine)

    report = money_report(start=DAY1.date(), end=DAY1.date())

    assert report.carts_outside == 1
    assert report.total.contacted.carts == 0
    assert report.total.incremental_conversions is None
    assert report.total.net is None


# --- The back-office page and its CSV ---------------------------------------------------------

RANGE = "?start=2026-11-03&end=2026-11-04"


class _Table(HTMLParser):
    """The cells of <table id="money-table"> (or another id), row by row, as a person reads them."""

    def __init__(self, table_id: str = "money-table") -> None:
        super().__init__()
        self.table_id = table_id
        self.rows: list[list[str]] = []
        self._inside = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table" and ("id", self.table_id) in attrs:
            self._inside = True
        elif self._inside and tag == "tr":
            self.rows.append([])
        elif self._inside and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._inside = False
        elif self._inside and tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def page_table(html: str, table_id: str = "money-table") -> list[list[str]]:
    parser = _Table(table_id)
    parser.feed(html)
    return parser.rows


def test_the_page_shows_the_figures_in_portuguese_with_money_in_reais(admin_client, month):
    response = admin_client.get("/admin/money/" + RANGE)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Quanto a Sara rende, descontados os custos" in html
    assert '<svg id="money-chart"' in html
    # The axes are labelled in reais, at SVG coordinates written with a dot.
    assert re.search(r'<text class="sara-axis" x="86" y="[0-9.]+" [^>]*>R\$ [0-9.]+,00</text>', html)
    header, total, *rest = page_table(html)
    assert header[:4] == [
        "Seção",
        "Linha",
        "Contatados: pagos / carrinhos",
        "Conversão dos contatados (intervalo de 95 %)",
    ]
    assert total == [
        "Total",
        "Período inteiro",
        "10/40",
        "25,0 % (14,2–40,2 %)",
        "3/30",
        "10,0 % (3,5–25,6 %)",
        "6,0 (−1,6 a 12,6)",
        "R$ 600,00",
        "R$ 13,87",
        "R$ 1,08",
        "R$ 20,00",
        "R$ 565,05",
        "16,17",
        "Amostra pequena demais para concluir",
    ]
    assert [row[:2] for row in rest] == [
        ["Modelo", "convite do primeiro contato"],
        ["Etapa", "Primeiro contato"],
        ["Etapa", "Lembrete"],
        ["Dia", "03/11/2026"],
        ["Dia", "04/11/2026"],
    ]


def test_the_page_names_the_configured_templates_by_their_role_not_their_meta_name(admin_client, month):
    html = admin_client.get("/admin/money/" + RANGE).content.decode()

    assert "convite do primeiro contato" in html
    assert "recovery_invitation" not in html


def test_the_csv_export_holds_exactly_the_table_of_the_page(admin_client, month):
    html = admin_client.get("/admin/money/" + RANGE).content.decode()
    # The main table, then a blank line and the sequence's table per step and variant.
    page = [*page_table(html), [], *page_table(html, "money-sequence-table")]

    response = admin_client.get("/admin/money.csv" + RANGE)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = response.content.decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(text), delimiter=";")) == page


def test_a_large_sample_with_a_clear_lift_is_concluded(admin_client, prices, time_machine):
    for n in range(60):
        contacted_cart(
            DAY1 + timedelta(minutes=n), paid="100.00" if n < 30 else None, time_machine=time_machine
        )
        held_out_cart(DAY1 + timedelta(minutes=n), paid=n < 6, time_machine=time_machine)

    html = admin_client.get("/admin/money/?start=2026-11-03&end=2026-11-03").content.decode()

    assert page_table(html)[1][-1] == "A Sara gera vendas a mais"


@pytest.mark.parametrize(
    "query", ["?start=ontem&end=hoje", "?start=2026-11-04&end=2026-11-03", "?start=2024-01-01&end=2026-11-03"]
)
def test_a_bad_range_is_explained_and_the_last_30_days_shown(admin_client, prices, query):
    response = admin_client.get("/admin/money/" + query)

    assert response.status_code == 200
    assert "mostrando os últimos 30 dias" in response.content.decode()
    assert len(page_table(response.content.decode())) == 1 + 1 + 2 + 30  # header, total, steps, days


def test_only_staff_who_may_see_carts_get_the_figures(client, django_user_model):
    assert client.get("/admin/money/").status_code == 302  # to the login
    clerk = django_user_model.objects.create_user("clerk", password="x", is_staff=True)
    client.force_login(clerk)
    assert client.get("/admin/money/").status_code == 403
    assert client.get("/admin/money.csv").status_code == 403
    assert 'id="money-link"' not in client.get("/admin/").content.decode()


def test_the_admin_index_links_to_the_page(admin_client):
    assert 'href="/admin/money/"' in admin_client.get("/admin/").content.decode()


def test_the_simulated_month_command_fills_the_database_and_prints_the_figures(settings):
    settings.DEBUG = True
    out = io.StringIO()

    call_command("sara_simulate_month", "--carts", "300", "--end", "2026-11-29", "--seed", "7", stdout=out)

    assert Abandonment.objects.count() == 300
    held = Abandonment.objects.filter(held_out=True)
    assert 10 <= held.count() <= 55  # a 10 % draw of 300
    assert not Message.objects.filter(conversation__abandonment__held_out=True).exists()
    text = out.getvalue()
    assert "Receita incremental líquida: " in text
    assert "Conversão do controle (intervalo de 95 %)" in text

    call_command(
        "sara_simulate_month", "--carts", "100", "--end", "2026-11-29", "--replace", stdout=io.StringIO()
    )
    assert Abandonment.objects.count() == 100


def test_the_simulated_month_command_refuses_a_production_database(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="development"):
        call_command("sara_simulate_month", "--carts", "10", stdout=io.StringIO())
