"""The money page in plain words: what Sara earned, what it cost, how sure we are; reconciled
with the dashboard; a fixed number of queries whatever the range holds (SPEC §8, §13)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backoffice.selectors import dashboard
from messaging.models import Message
from tests.factories import OutboundMessageFactory
from tests.recovery.test_money_figures import (  # noqa: F401
    DAY1,
    DAY2,
    RANGE,
    contacted_cart,
    held_out_cart,
    month,
    page_table,
    prices,
)

pytestmark = pytest.mark.django_db


def test_the_page_reconciles_the_dashboards_recovered_revenue_with_what_sara_added(
    admin_client,
    month,  # noqa: F811
):
    html = admin_client.get("/admin/money/" + RANGE).content.decode()

    assert page_table(html, "money-reconcile-table") == [
        [
            "Receita recuperada no painel: todo carrinho pago de 03/11/2026 a 04/11/2026, pelo valor pago",
            "R$ 980,00",
        ],
        [
            "Pagamentos de carrinhos abertos em outros dias e de carrinhos sem grupo de controle; "
            "descontos contados pelo valor do carrinho",
            "+R$ 20,00",
        ],
        ["Valor dos carrinhos contatados abertos de 03/11/2026 a 04/11/2026 que foram pagos", "R$ 1.000,00"],
        ["O que esses clientes teriam comprado sem a Sara (pela taxa do grupo de controle)", "−R$ 400,00"],
        ["Receita incremental: o que a Sara acrescentou", "R$ 600,00"],
        ["Mensagens da Meta", "−R$ 13,87"],
        ["Tokens do modelo", "−R$ 1,08"],
        ["Descontos concedidos", "−R$ 20,00"],
        ["Receita incremental líquida", "R$ 565,05"],
    ]
    cards = html[html.index('id="money-cards"') : html.index('id="money-reconcile"')]
    assert "O que a Sara rendeu (receita incremental líquida)" in cards
    assert "Ainda não dá para concluir" in cards
    assert "Vendas a mais: 6,0 (entre −1,6 e 12,6)" in cards
    assert "Wilson" not in html and "Newcombe" not in html


def test_the_first_line_is_the_dashboards_recovered_revenue_for_the_same_days(
    admin_client,
    month,  # noqa: F811
    time_machine,
):
    time_machine.move_to(DAY2 + timedelta(days=1), tick=False)
    today = timezone.localdate()
    shown = dashboard(now=timezone.now()).totals.revenue

    html = admin_client.get(f"/admin/money/?start={today - timedelta(days=29)}&end={today}").content.decode()

    assert shown == Decimal("980.00")
    assert page_table(html, "money-reconcile-table")[0][1] == "R$ 980,00"


def test_with_no_holdout_the_page_says_why_there_is_no_comparison_and_what_to_do(
    admin_client,
    prices,  # noqa: F811
    time_machine,
):
    for n in range(6):
        contacted_cart(
            DAY1 + timedelta(minutes=n),
            percent="0",
            paid="100.00" if n < 2 else None,
            time_machine=time_machine,
        )

    html = admin_client.get("/admin/money/?start=2026-11-03&end=2026-11-03").content.decode()

    advice = html[html.index('id="money-no-holdout"') : html.index('id="money-cards"')]
    assert "nenhum carrinho ficou no grupo de controle" in advice
    assert "SARA_HOLDOUT_PERCENT=10" in advice
    assert "com os 6 carrinhos por dia deste período, cerca de 500 dias" in advice
    assert 'id="money-chart"' not in html  # no empty R$ 0–1 axis
    assert "Sem comparação: nenhum carrinho no grupo de controle" in html


# --- Queries: a fixed number, whatever the range holds ----------------------------------------


def carts_over(days: int, per_day: int, templates: int, *, time_machine) -> None:
    """Contacted and held-out carts over `days` days, first templates of `templates` names, a
    follow-up and a reply on some, payments before and after."""
    for day in range(days):
        for n in range(per_day):
            at = DAY1 + timedelta(days=day, minutes=n)
            cart = contacted_cart(
                at,
                paid="100.00" if n % 3 == 0 else None,
                followup_paid=n % 6 == 0,
                reply=n % 4 == 0,
                time_machine=time_machine,
            )
            first = Message.objects.get(conversation__abandonment=cart, purpose=Message.Purpose.FIRST_CONTACT)
            first.metadata = {
                "template": {"name": f"invitation_{n % templates}"},
                "sequence": {"step": 1, "variant": f"invitation_{n % templates}"},
            }
            first.save()
            held_out_cart(at, paid=n % 5 == 0, time_machine=time_machine)


def queries_of(client, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    return len(queries)


# Session and user, the admin's waiting count, the sequence's steps and templates, the free
# service tier, the tallies (settled conversations read from their kept money), the carts left
# out, the recovered revenue: never one per day, cart or template.
MAX_QUERIES = 14


@pytest.mark.parametrize("path", ["/admin/money/", "/admin/money.csv"])
def test_the_page_and_the_csv_run_the_same_few_queries_for_a_day_or_a_week_of_carts(
    admin_client,
    prices,  # noqa: F811
    time_machine,
    django_assert_max_num_queries,
    path,
):
    carts_over(1, 2, 1, time_machine=time_machine)
    small = queries_of(admin_client, f"{path}?start=2026-11-03&end=2026-11-03")

    carts_over(7, 12, 3, time_machine=time_machine)
    OutboundMessageFactory.create_batch(3, status=Message.Status.DELIVERED)
    with django_assert_max_num_queries(MAX_QUERIES):
        response = admin_client.get(f"{path}?start=2026-11-01&end=2026-11-12")
    large = queries_of(admin_client, f"{path}?start=2026-11-01&end=2026-11-12")

    assert small == large
    if path.endswith(".csv"):
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
        assert [r[1] for r in rows if r and r[0] == "Modelo"] == [
            "invitation_0",
            "invitation_1",
            "invitation_2",
        ]


@pytest.mark.postgres
@pytest.mark.parametrize("path", ["/admin/money/", "/admin/money.csv"])
def test_reading_the_page_or_the_csv_writes_nothing_the_sweep_keeps_the_closed_conversations_money(
    admin_client,
    prices,  # noqa: F811
    time_machine,
    path,
):
    from recovery.models import Conversation, ConversationMoney
    from recovery.money.figures import money_report
    from recovery.money.tasks import settle_money

    carts_over(2, 3, 2, time_machine=time_machine)
    Conversation.objects.update(status=Conversation.Status.CLOSED, closed_at=DAY2 + timedelta(hours=12))
    time_machine.move_to(DAY2 + timedelta(days=3), tick=False)
    query = "?start=2026-11-01&end=2026-11-12"
    report = money_report(start=DAY1.date(), end=DAY2.date())
    assert admin_client.get(path + query).status_code == 200

    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(path + query).status_code == 200
    writes = [
        q["sql"] for q in queries if q["sql"].lstrip().split()[0].upper() in {"INSERT", "UPDATE", "DELETE"}
    ]
    assert writes == []
    assert ConversationMoney.objects.count() == 0

    assert settle_money() == 6  # every contacted cart's conversation, once the day has passed
    assert money_report(start=DAY1.date(), end=DAY2.date()) == report  # the same figures, from the kept money
    assert report.total.meta_cost > 0


def test_the_money_sweep_runs_every_five_minutes_under_its_contract_name():
    from django.conf import settings

    from config.celery import app

    schedules = [
        e["schedule"]
        for e in settings.CELERY_BEAT_SCHEDULE.values()
        if e["task"] == "recovery.tasks.settle_money"
    ]
    assert schedules == [300.0]
    assert "recovery.tasks.settle_money" in app.tasks
