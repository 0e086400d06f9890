"""Recovered revenue as the dashboard counts it: what customers paid for the carts converted in
a period, by local day of payment (SPEC §8). The money page starts from the same figure."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from django.db.models import DecimalField, OuterRef, Subquery, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, TruncDate

from messaging.models import WebhookEvent
from recovery.models import Abandonment

AMOUNT = DecimalField(max_digits=12, decimal_places=2)


def recovered_revenue_per_day(*, since: datetime, until: datetime | None = None) -> dict[date, Decimal]:
    """What customers paid (BRL) for carts converted from `since` (to `until`), by local day.

    The amount is the one the payment webhook carried (kept on the cart when it converted, the
    discount may have changed since); the webhook checked it against the cart, so the cart
    value is a safe fallback for a payment without one.
    """
    converted = Abandonment.objects.filter(status=Abandonment.Status.CONVERTED, converted_at__gte=since)
    if until is not None:
        converted = converted.filter(converted_at__lt=until)
    paid = WebhookEvent.objects.filter(type=WebhookEvent.Type.PAYMENT, external_id=OuterRef("payment_id"))
    amount = Cast(KT("payload__amount"), AMOUNT)
    rows = (
        converted.annotate(day=TruncDate("converted_at"))
        .values("day")
        .annotate(
            revenue=Sum(
                Coalesce("paid_amount", Subquery(paid.values(amount=amount)[:1]), "value"),
                output_field=AMOUNT,
            )
        )
        .order_by()
    )
    return {row["day"]: Decimal(row["revenue"]).quantize(Decimal("0.01")) for row in rows}


def recovered_revenue(*, since: datetime, until: datetime) -> Decimal:
    return sum(recovered_revenue_per_day(since=since, until=until).values(), Decimal("0.00"))
