"""The recovery dashboard: the selectors' numbers over the last 30 local days, and the index page."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from backoffice import dashboard as charts
from backoffice.selectors import dashboard
from core.charts import BOTTOM, HEIGHT, TOP, nice_ceiling
from messaging.models import Message, WebhookEvent
from recovery.models import Abandonment
from tests.factories import (
    AbandonmentFactory,
    ConversationFactory,
    CustomerFactory,
    InboundMessageFactory,
    OutboundMessageFactory,
)

pytestmark = pytest.mark.django_db

# Monday 24/11/2025, noon in São Paulo (UTC-3).
NOW = datetime(2025, 11, 24, 15, 0, tzinfo=UTC)
TODAY = date(2025, 11, 24)
YESTERDAY = date(2025, 11, 23)


def at(moment: datetime):
    return time_machine.travel(moment, tick=False)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time in São Paulo (TIME_ZONE), where the dashboard's days begin and end."""
    return datetime.combine(day, time(hour, minute), tzinfo=timezone.get_current_timezone())


@pytest.fixture
def month() -> dict[str, object]:
    """A month of recoveries with edge cases on both ends of the period and of the day."""
    with at(local(date(2025, 10, 25), 23, 59)):  # the day before the period starts
        AbandonmentFactory()
    with at(local(date(2025, 10, 26), 0, 30)):  # the period's first day
        AbandonmentFactory()
    with at(datetime(2025, 11, 24, 1, 0, tzinfo=UTC)):  # 22:00 on the 23rd in Brazil, not the 24th
        late_evening = ConversationFactory()
    with at(local(TODAY, 9)):
        maria = ConversationFactory(abandonment__customer=CustomerFactory(name="Maria"))
        joao = ConversationFactory(abandonment__customer=CustomerFactory(name="João"))

    with at(local(TODAY, 9, 5)):
        for conversation in (maria, joao):
            OutboundMessageFactory(
                conversation=conversation,
                purpose=Message.Purpose.FIRST_CONTACT,
                kind=Message.Kind.TEMPLATE,
                status=Message.Status.DELIVERED,
                sent_at=timezone.now(),
            )
        # Queued, never accepted by Meta: not a first contact sent.
        OutboundMessageFactory(
            conversation=late_evening, purpose=Message.Purpose.FIRST_CONTACT, kind=Message.Kind.TEMPLATE
        )
    with at(local(TODAY, 10)):
        for text in ("Quanto custa?", "Tem desconto?", "Ok"):
            InboundMessageFactory(conversation=maria, text=text, status="processed")  # one chatty customer
        InboundMessageFactory(conversation=joao, text="Não quero", status="processed")
        InboundMessageFactory(conversation=None, text="Oi", status="processed")  # a stranger
        OutboundMessageFactory(conversation=maria, status=Message.Status.SENT, whatsapp_message_id="w1")
        OutboundMessageFactory(conversation=maria, status=Message.Status.FAILED, error_code="131026")
        OutboundMessageFactory(conversation=maria, status=Message.Status.FAILED, error_code="131026")
        OutboundMessageFactory(conversation=joao, status=Message.Status.FAILED, error_code="window_closed")
        joao.customer.opted_out = True
        joao.customer.opted_out_at = timezone.now()
        joao.customer.save()

    with at(local(TODAY, 11)):
        maria.abandonment.status = Abandonment.Status.CONVERTED
        maria.abandonment.payment_id = "pay-maria"
        maria.abandonment.conversion_link = "discounted"
        maria.abandonment.converted_at = timezone.now()
        maria.abandonment.save()
        WebhookEvent.objects.create(
            type=WebhookEvent.Type.PAYMENT,
            external_id="pay-maria",
            payload={"amount": 267.3, "status": "paid"},
        )
    with at(local(YESTERDAY, 18)):
        # Converted by a payment whose event is gone: the cart value is what was paid.
        AbandonmentFactory(
            status=Abandonment.Status.CONVERTED, payment_id="pay-old", converted_at=timezone.now()
        )
    return {"maria": maria, "joao": joao}


def figures():
    with at(NOW):
        return dashboard(now=timezone.now())


def day(result, which: date):
    return next(d for d in result.days if d.date == which)


def test_the_period_is_today_and_the_29_local_days_before(month):
    result = figures()

    assert len(result.days) == 30
    assert result.days[0].date == date(2025, 10, 26)
    assert result.days[-1].date == TODAY
    assert result.start == local(date(2025, 10, 26), 0)


def test_abandonments_count_on_their_local_day_inside_the_period_only(month):
    result = figures()

    assert result.days[0].abandonments == 1  # 00:30 on the first day counts, 23:59 the day before does not
    assert day(result, YESTERDAY).abandonments == 2  # the evening one (01:00 UTC) and yesterday's conversion
    assert day(result, TODAY).abandonments == 2
    assert result.totals.abandonments == 5


def test_first_contacts_count_only_sends_meta_accepted(month):
    result = figures()

    assert day(result, TODAY).first_contacts == 2
    assert result.totals.first_contacts == 2


def test_replies_count_conversations_where_the_customer_wrote_not_messages(month):
    result = figures()

    assert day(result, TODAY).replies == 2
    assert result.totals.replies == 2


def test_conversions_and_revenue_count_what_was_paid_on_the_day_of_payment(month):
    result = figures()

    assert (day(result, TODAY).conversions, day(result, TODAY).revenue) == (1, Decimal("267.30"))
    assert (day(result, YESTERDAY).conversions, day(result, YESTERDAY).revenue) == (1, Decimal("297.00"))
    assert result.totals.revenue == Decimal("564.30")


def test_opt_out_rate_is_the_share_of_contacted_customers_who_opted_out(month):
    result = figures()

    assert (result.contacted, result.contacted_opted_out) == (2, 1)
    assert result.opt_out_rate == Decimal("0.5000")
    assert day(result, TODAY).opt_outs == 1


def test_failure_rate_by_error_code_is_a_share_of_the_sends_that_finished(month):
    result = figures()

    # Finished sends: 2 first contacts, 1 sent reply, 3 failed; the pending template is not finished.
    assert result.sends_finished == 6
    assert result.sends_failed == 3
    assert result.failure_rate == Decimal("0.5000")
    assert [(f.error_code, f.count, f.rate) for f in result.failures] == [
        ("131026", 2, Decimal("0.3333")),
        ("window_closed", 1, Decimal("0.1667")),
    ]


def test_an_empty_month_shows_zeros_and_no_rates():
    result = figures()

    assert result.totals.abandonments == 0
    assert result.totals.revenue == Decimal("0.00")
    assert result.opt_out_rate is None
    assert result.failure_rate is None
    assert result.failures == []


def test_the_ops_counts_show_failed_sends_and_stuck_work(month):
    stuck = InboundMessageFactory(conversation=month["maria"])
    Message.objects.filter(pk=stuck.pk).update(created_at=NOW - timedelta(minutes=10))

    result = figures()

    assert result.failed_sends == 3
    assert result.stuck_inbound == 1
    assert result.stuck_outbound == 1  # the first contact queued at 09:05 that never went out


# --- The index page ---------------------------------------------------------------------------


def test_the_admin_index_shows_the_headline_numbers_and_the_charts(admin_client, month):
    with at(NOW):
        page = admin_client.get("/admin/").content.decode()

    assert 'id="funnel-chart"' in page
    assert page.count('<polyline class="sara-series') == 4
    assert 'id="revenue-chart"' in page
    assert page.count('<rect class="sara-bar"') == 2
    assert "R$ 564,30" in page
    assert "50,0 %" in page  # opt-out rate and failure rate
    assert "1 de 2 clientes contatados" in page
    assert "3 de 6 envios" in page
    assert "33,3 %" in page  # 131026's share
    # SVG coordinates are plain numbers, never localised with the Brazilian decimal comma.
    start = page.index('id="funnel-chart"')
    svg = page[start : page.index("</svg>", start)]
    coordinates = re.findall(r' (?:x|y|x1|x2|y1|y2)="([^"]*)"', svg)
    assert coordinates
    assert all(float(c) >= 0 for c in coordinates)
    points = re.findall(r'points="([^"]*)"', svg)
    assert all(float(v) >= 0 for p in points for xy in p.split() for v in xy.split(","))


def test_the_index_costs_a_constant_number_of_queries(admin_client, month, django_assert_max_num_queries):
    # 21: the templates Meta refuses now and the sequence steps waiting for one (SPEC §15).
    with at(NOW), django_assert_max_num_queries(21):
        assert admin_client.get("/admin/").status_code == 200


# --- Chart geometry ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "top"), [(0, 1), (1, 1), (3, 5), (7, 10), (12, 20), (480, 500), (501, 1000)]
)
def test_the_axis_tops_out_at_a_round_number(value, top):
    assert nice_ceiling(value) == top


def test_a_days_highest_count_reaches_the_top_of_the_chart_and_zero_sits_on_the_baseline(month):
    chart = charts.funnel_chart(figures().days)

    abandonments = chart.lines[0].points.split()
    ys = [float(p.split(",")[1]) for p in abandonments]
    assert min(ys) == pytest.approx(HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM))
    assert max(ys) == pytest.approx(chart.baseline)
    assert len(abandonments) == 30


def test_money_reads_as_brazilian_reais():
    assert charts.brl(Decimal("1234567.8")) == "R$ 1.234.567,80"
    assert charts.percent(Decimal("0.3333")) == "33,3 %"
    assert charts.percent(None) == "—"
