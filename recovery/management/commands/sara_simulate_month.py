"""Fill a development database with a simulated month of carts under a holdout, then print the figures.

The carts go through the real holdout draw (recovery.holdout); everything else (who answers,
who pays, what Meta bills) is drawn from the rates given here, written straight to the tables
with the timestamps of the simulated month. Nothing is sent anywhere.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from messaging.models import Message
from recovery import lifecycle
from recovery.holdout import holdout_draw
from recovery.models import Abandonment, Conversation, Customer, Product
from recovery.money import views as money_views
from recovery.money.figures import MoneyReport, money_report
from recovery.sequence import sequence_steps, variant_draw

PREFIX = "sim-"
CENT = Decimal("0.01")
PMP: dict[str, Any] = {"pricing_model": "PMP"}


class Command(BaseCommand):
    help = "Generate a simulated month of carts with a holdout group into the database and print the figures."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--carts", type=int, default=3000, help="carts over the month (default 3000)")
        parser.add_argument("--percent", type=Decimal, default=Decimal(10), help="holdout share (default 10)")
        parser.add_argument("--days", type=int, default=30, help="days the carts spread over (default 30)")
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument(
            "--end", type=date.fromisoformat, default=None, help="last day (default yesterday)"
        )
        parser.add_argument("--rate-contacted", type=float, default=0.16, help="payment rate with Sara")
        parser.add_argument("--rate-held-out", type=float, default=0.10, help="payment rate without Sara")
        parser.add_argument(
            "--variant-lift",
            type=float,
            default=0.25,
            help="how much more the first step's second variant sells, relative (default 0.25: 16 %% → 20 %%)",
        )
        parser.add_argument("--replace", action="store_true", help="delete earlier simulated carts first")
        parser.add_argument("--force", action="store_true", help="run even with DEBUG off")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                "This writes simulated carts into the database: run it on a development one (DEBUG on), or pass --force."
            )
        end = options["end"] or timezone.localdate() - timedelta(days=1)
        start = end - timedelta(days=options["days"] - 1)
        with transaction.atomic():
            if options["replace"]:
                _delete_simulated()
            counts = _simulate(
                start=start,
                carts=options["carts"],
                days=options["days"],
                percent=options["percent"],
                rng=random.Random(options["seed"]),
                rate_contacted=options["rate_contacted"],
                rate_held_out=options["rate_held_out"],
                variant_lift=options["variant_lift"],
            )
        self.stdout.write(
            f"Simulated {counts['carts']} carts from {start:%d/%m/%Y} to {end:%d/%m/%Y}: "
            f"{counts['held_out']} held out ({options['percent']} %), {counts['paid']} paid."
        )
        report = money_report(start=start, end=end)
        header, *rows = money_views.table(report)
        for row in rows[:4]:
            self.stdout.write("")
            for name, cell in zip(header, row, strict=True):
                self.stdout.write(f"  {name}: {cell}")
        self._sequence(report)

    def _sequence(self, report: MoneyReport) -> None:
        """Per step and per variant: a compact table of the columns that decide."""
        sequence = report.sequence
        header, *rows = money_views.sequence_table(sequence)
        keep = [1, 2, 4, 6, 8, 11, 15, 17, 18]
        self.stdout.write("")
        self.stdout.write(" | ".join(header[i] for i in keep))
        for row in rows:
            self.stdout.write(" | ".join(row[i] for i in keep))
        for step, variant in sorted(sequence.best.items()):
            self.stdout.write(f"Best variant of step {step}: {variant}")


def _delete_simulated() -> None:
    simulated = Abandonment.objects.filter(external_id__startswith=PREFIX)
    Message.objects.filter(conversation__abandonment__in=simulated).delete()
    Conversation.objects.filter(abandonment__in=simulated).delete()
    customers = list(simulated.values_list("customer_id", flat=True))
    simulated.delete()
    Customer.objects.filter(pk__in=customers, abandonments__isnull=True).delete()


def _simulate(
    *,
    start: date,
    carts: int,
    days: int = 30,
    percent: Decimal,
    rng: random.Random,
    rate_contacted: float,
    rate_held_out: float,
    variant_lift: float = 0.0,
) -> dict[str, int]:
    product, _ = Product.objects.get_or_create(
        product_id=f"{PREFIX}curso",
        defaults={
            "name": "Curso simulado",
            "payment_link": "https://pay.example.com/sim",
            "discount_link": "https://pay.example.com/sim?cupom=VOLTA10",
            "discount_percent": Decimal(10),
        },
    )
    steps = sequence_steps()
    stamp = rng.randrange(10**6)
    counts = {"carts": carts, "held_out": 0, "paid": 0}
    abandonments: list[Abandonment] = []
    plans: list[dict[str, Any]] = []
    for n in range(carts):
        external_id = f"{PREFIX}{stamp}-{n}"
        opened = timezone.make_aware(
            datetime.combine(start + timedelta(days=n * days // carts), time(8))
        ) + timedelta(minutes=rng.randrange(14 * 60))
        draw = holdout_draw(external_id=external_id, percent=percent)
        # Each step's variant through the real draw: the first step's second variant sells better.
        variants = [variant_draw(cart_key=external_id, step=step)[0] for step in steps]
        rate = rate_held_out if draw.held_out else rate_contacted
        if not draw.held_out and len(steps[0].variants) > 1 and variants[0] is steps[0].variants[1]:
            rate *= 1 + variant_lift
        value = Decimal(str(round(rng.lognormvariate(5.4, 0.6), 2))).quantize(CENT)
        paid = rng.random() < rate
        replied = not draw.held_out and ((paid and rng.random() < 0.7) or rng.random() < 0.25)
        # The rule of SPEC §5: a discount when the cart is over R$ 500 (or the customer balked).
        discounted = paid and not draw.held_out and replied and (value > 500 or rng.random() < 0.2)
        paid_at = opened + timedelta(hours=rng.choice([1.5, 2, 3, 5, 8, 26, 30, 40, 52, 60]))
        # The steps that went: each at its hour, to a customer who had neither answered nor paid.
        offset = timedelta(0)
        sends: list[tuple[int, str, datetime]] = []
        for step, variant in zip(steps, variants, strict=True):
            offset += step.delay
            at = opened + offset
            if draw.held_out or (replied and sends) or (paid and paid_at <= at):
                break
            sends.append((step.order, variant.name, at))
        customer = Customer.objects.create(phone=f"+55119{stamp % 1000:03d}{n:05d}", name="Cliente simulado")
        abandonments.append(
            Abandonment(
                external_id=external_id,
                customer=customer,
                product=product,
                external_product_id=product.product_id,
                value=value,
                payment_link=product.payment_link,
                status=(
                    Abandonment.Status.HELD_OUT
                    if draw.held_out
                    else (Abandonment.Status.CONVERTED if paid else Abandonment.Status.EXPIRED)
                ),
                holdout_percent=draw.percent,
                held_out=draw.held_out,
                payment_id=f"{external_id}-pay" if paid else None,
                converted_at=paid_at if paid else None,
                paid_amount=(value * Decimal("0.9")).quantize(CENT)
                if discounted
                else (value if paid else None),
                conversion_link=("discounted" if discounted else "original") if paid else "",
            )
        )
        plans.append({"opened": opened, "replied": replied, "sends": sends, "held_out": draw.held_out})
        counts["held_out"] += draw.held_out
        counts["paid"] += paid
    Abandonment.objects.bulk_create(abandonments)
    for abandonment, plan in zip(abandonments, plans, strict=True):
        abandonment.created_at = plan["opened"]
    Abandonment.objects.bulk_update(abandonments, ["created_at"], batch_size=500)
    _conversations(abandonments, plans, rng)
    return counts


def _conversations(abandonments: list[Abandonment], plans: list[dict[str, Any]], rng: random.Random) -> None:
    messages: list[Message] = []
    for abandonment, plan in zip(abandonments, plans, strict=True):
        if plan["held_out"]:
            continue
        opened = plan["opened"]
        conversation = lifecycle.conversation_open(
            abandonment=abandonment, customer=abandonment.customer, now=opened, first_contact_queued=False
        )
        # A month-old recovery is over: closed, so no sweep chases a simulated customer.
        lifecycle.conversation_expire(
            conversation_id=conversation.pk, abandonment_id=abandonment.pk, now=opened
        )
        marketing = {
            **PMP,
            "pricing_billable": True,
            "pricing_category": "marketing",
            "pricing_type": "regular",
        }
        for index, (order, variant, at) in enumerate(plan["sends"]):
            messages.append(
                _out(
                    conversation,
                    Message.Purpose.FIRST_CONTACT if index == 0 else Message.Purpose.FOLLOWUP,
                    at,
                    template=variant,
                    sequence={"step": order, "variant": variant},
                    **marketing,
                )
            )
        if plan["replied"]:
            for turn in range(rng.choice([1, 1, 2, 3])):
                at = opened + timedelta(minutes=30 + 10 * turn)
                messages.append(
                    Message(
                        conversation=conversation,
                        direction=Message.Direction.IN,
                        status=Message.Status.PROCESSED,
                        text="Oi",
                        tokens_used=rng.randrange(1200, 2600),
                        ai_model="gpt-4o-mini",
                        whatsapp_timestamp=at,
                    )
                )
                # A reply inside the customer-service window: free under per-message pricing.
                service: dict[str, Any] = {
                    **PMP,
                    "pricing_billable": False,
                    "pricing_category": "service",
                    "pricing_type": "free_customer_service",
                }
                messages.append(
                    _out(conversation, Message.Purpose.REPLY, at + timedelta(seconds=5), **service)
                )
    Message.objects.bulk_create(messages, batch_size=1000)


def _out(
    conversation: Conversation,
    purpose: str,
    at: datetime,
    *,
    template: str = "",
    sequence: dict[str, Any] | None = None,
    **pricing: Any,
) -> Message:
    metadata: dict[str, Any] = {"template": {"name": template, "language": "pt_BR"}} if template else {}
    if sequence:
        metadata["sequence"] = sequence
    return Message(
        conversation=conversation,
        direction=Message.Direction.OUT,
        kind=Message.Kind.TEMPLATE if template else Message.Kind.TEXT,
        purpose=purpose,
        status=Message.Status.DELIVERED,
        metadata=metadata,
        sent_at=at,
        delivered_at=at,
        **pricing,
    )
