"""Plain SQL on the recovery's tables, beside their models and built from their fields (core.sql).

Opening a cart runs these: building them with the ORM cost more CPU than running them
(bench/percall.py, "abandonment"). Each names the ORM query it stands for.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any, NamedTuple, cast

from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql as pg_sql

from core import sql as core_sql
from messaging import pricing
from messaging.models import Message
from recovery.models import Abandonment, Conversation, ConversationMoney, Customer, Product, Shop

# Customer.objects.create(...) unless the phone is taken or is an erased person's. Most carts
# come from new customers: one statement stores them. ON CONFLICT rather than get_or_create:
# no savepoint, and an insert racing a concurrent cart's waits for it to commit and yields.
# A known phone still uses up a value of the id sequence; bigint ids have room.
CUSTOMER_GIVEN = ("phone", "name", "created_at", "updated_at")
CUSTOMER = core_sql.insert(Customer, given=CUSTOMER_GIVEN)
_CUSTOMER_INSERT = core_sql.text(
    pg_sql.SQL(
        "INSERT INTO {table} ({columns}) SELECT {values} "
        "WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE {phone} = %(erased_phone)s) "
        "ON CONFLICT ({phone}) DO NOTHING RETURNING {returning}"
    ).format(
        table=core_sql.table(Customer),
        columns=pg_sql.SQL(", ").join(pg_sql.Identifier(name) for name in CUSTOMER.columns),
        values=CUSTOMER.values(),
        phone=core_sql.column(Customer, "phone"),
        returning=core_sql.columns(Customer),
    )
)


def customer_insert(*, phone: str, name: str, erased_phone: str) -> Customer | None:
    """A new customer; None if the phone is taken or belongs to an erased person."""
    now = timezone.now()
    stamp = core_sql.db_datetime(now)
    params = {
        "phone": phone,
        "name": name,
        "created_at": stamp,
        "updated_at": stamp,
        "erased_phone": erased_phone,
        **CUSTOMER.defaults(),
    }
    # The row as stored, every default included.
    return core_sql.fetch_instance(_CUSTOMER_INSERT, params, Customer)


# Shop.objects.order_by("id").first()
_SHOP_FIRST = core_sql.text(
    pg_sql.SQL("SELECT * FROM {table} ORDER BY {id} LIMIT 1").format(
        table=core_sql.table(Shop), id=core_sql.column(Shop, "id")
    )
)


def shop_first() -> Shop | None:
    """The shop's row (one per installation), or None before it is made."""
    return next(iter(Shop.objects.raw(_SHOP_FIRST)), None)


# Product.objects.filter(product_id=..., active=True)
_ACTIVE_PRODUCT = core_sql.text(
    pg_sql.SQL("SELECT * FROM {table} WHERE {product_id} = %(product_id)s AND {active}").format(
        table=core_sql.table(Product),
        product_id=core_sql.column(Product, "product_id"),
        active=core_sql.column(Product, "active"),
    )
)


def active_product(product_id: str) -> Product | None:
    return next(iter(Product.objects.raw(_ACTIVE_PRODUCT, {"product_id": product_id})), None)


# The sender's open conversation with everything the worker reads of it (customer, cart,
# product), by phone: read twice per customer message, without locks and then under them.
# Conversation.objects.select_related("customer", "abandonment__product")
#     .filter(customer__phone=phone, status__in=OPEN_STATUSES).order_by("-created_at").first()
_col = core_sql.column
_OPEN = pg_sql.SQL(", ").join(pg_sql.Placeholder(f"open_{i}") for i in range(len(Conversation.OPEN_STATUSES)))
_OPEN_PARAMS = {f"open_{i}": status for i, status in enumerate(Conversation.OPEN_STATUSES)}
# The conversation c with its customer p and its cart a; `_OPEN_WHERE` picks the open one by phone.
_CONVERSATION_FROM = pg_sql.SQL(
    "FROM {conversation} c JOIN {customer} p ON {p_id} = {c_customer} "
    "JOIN {abandonment} a ON {a_id} = {c_abandonment}"
).format(
    conversation=core_sql.table(Conversation),
    customer=core_sql.table(Customer),
    abandonment=core_sql.table(Abandonment),
    p_id=_col(Customer, "id", "p"),
    c_customer=_col(Conversation, "customer", "c"),
    a_id=_col(Abandonment, "id", "a"),
    c_abandonment=_col(Conversation, "abandonment", "c"),
)
_OPEN_WHERE = pg_sql.SQL("WHERE {p_phone} = %(phone)s AND {c_status} IN ({open})").format(
    p_phone=_col(Customer, "phone", "p"), c_status=_col(Conversation, "status", "c"), open=_OPEN
)


@cache
def _open_conversation_select(*, lock: bool) -> str:
    statement = pg_sql.SQL(
        "SELECT {c}, {p}, {a}, {pr} {join} LEFT JOIN {product} pr ON {pr_id} = {a_product} {where} "
        "ORDER BY {c_created_at} DESC LIMIT 1"
    ).format(
        c=core_sql.columns(Conversation, "c"),
        p=core_sql.columns(Customer, "p"),
        a=core_sql.columns(Abandonment, "a"),
        pr=core_sql.columns(Product, "pr"),
        join=_CONVERSATION_FROM,
        product=core_sql.table(Product),
        pr_id=_col(Product, "id", "pr"),
        a_product=_col(Abandonment, "product", "a"),
        where=_OPEN_WHERE,
        c_created_at=_col(Conversation, "created_at", "c"),
    )
    # FOR NO KEY UPDATE, as an UPDATE that keeps the keys takes: foreign-key checks of rows
    # pointing here (a message inserted for this conversation) do not wait for it.
    if lock:
        statement = pg_sql.SQL("{} FOR NO KEY UPDATE OF c").format(statement)
    return core_sql.text(statement)


# Abandonment.objects.select_for_update(no_key=True).filter(conversation__customer__phone=phone,
#     conversation__status__in=OPEN_STATUSES)
_OPEN_CART_LOCK = core_sql.text(
    pg_sql.SQL("SELECT {a_id} {join} {where} FOR NO KEY UPDATE OF a").format(
        a_id=_col(Abandonment, "id", "a"), join=_CONVERSATION_FROM, where=_OPEN_WHERE
    )
)


# Customer.objects.select_for_update().filter(phone=...): taken first, before the cart, by a
# customer's message that opts them out (the opt-out writes the customer, then the cart).
_CUSTOMER_LOCK = core_sql.text(
    pg_sql.SQL("SELECT {id} FROM {table} WHERE {phone} = %(phone)s FOR UPDATE").format(
        table=core_sql.table(Customer),
        id=core_sql.column(Customer, "id"),
        phone=core_sql.column(Customer, "phone"),
    )
)


def open_conversation(phone: str, *, lock: bool, lock_customer: bool = False) -> Conversation | None:
    """The open conversation of the customer with this phone, its customer, cart and product
    loaded; with `lock`, the cart's row and then the conversation's stay locked until the
    transaction ends (that order: see recovery.lifecycle), and with `lock_customer` the
    customer's before them."""
    lock = lock and connection.features.has_select_for_update
    if lock:
        with connection.cursor() as cursor:
            if lock_customer:
                cursor.execute(_CUSTOMER_LOCK, {"phone": phone})
            cursor.execute(_OPEN_CART_LOCK, {"phone": phone, **_OPEN_PARAMS})
    found = core_sql.fetch_one(
        _open_conversation_select(lock=lock),
        {"phone": phone, **_OPEN_PARAMS},
        (Conversation, Customer, Abandonment, Product),
    )
    if found is None:
        return None
    # One instance per model asked for, in that order.
    conversation, customer, abandonment, product = cast(
        "tuple[Conversation, Customer, Abandonment, Product]", found
    )
    if product.pk is not None:
        abandonment.product = product
    conversation.customer = customer
    conversation.abandonment = abandonment
    return conversation


# The send path (messaging.services.outbound) reads its message with what the gate needs of
# the recipient: the message, its conversation, the customer and the cart, in one statement.
# Message.objects.select_related("conversation__customer", "conversation__abandonment").filter(pk=id)
_OUTBOUND_SELECT = core_sql.text(
    pg_sql.SQL(
        "SELECT {m}, {c}, {p}, {a} {join} JOIN {message} m ON {m_conversation} = {c_id} WHERE {m_id} = %(id)s"
    ).format(
        m=core_sql.columns(Message, "m"),
        c=core_sql.columns(Conversation, "c"),
        p=core_sql.columns(Customer, "p"),
        a=core_sql.columns(Abandonment, "a"),
        join=_CONVERSATION_FROM,
        message=core_sql.table(Message),
        m_conversation=_col(Message, "conversation", "m"),
        c_id=_col(Conversation, "id", "c"),
        m_id=_col(Message, "id", "m"),
    )
)


def outbound_message(message_id: int) -> tuple[Message, Conversation, Customer, Abandonment] | None:
    found = core_sql.fetch_one(
        _OUTBOUND_SELECT, {"id": message_id}, (Message, Conversation, Customer, Abandonment)
    )
    if found is None:
        return None
    # One instance per model asked for, in that order.
    message, conversation, customer, abandonment = found
    return message, conversation, customer, abandonment  # type: ignore[return-value]


# Abandonment.objects.filter(customer_id=..., held_out=True, created_at__gte=...).exists(): a
# newer held-out cart of the same person keeps a reply queued before it from going out.
_PERSON_HELD_OUT = core_sql.text(
    pg_sql.SQL(
        "SELECT EXISTS (SELECT 1 FROM {table} WHERE {customer} = %(customer)s "
        "AND {held_out} AND {created_at} >= %(since)s)"
    ).format(
        table=core_sql.table(Abandonment),
        **core_sql.named_columns(Abandonment, "customer", "held_out", "created_at"),
    )
)


def person_held_out_since(*, customer_id: int, since: datetime) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(_PERSON_HELD_OUT, {"customer": customer_id, "since": core_sql.db_datetime(since)})
        return bool(cursor.fetchone()[0])


# Customer.objects.filter(pk=...) under FOR SHARE, which the ORM cannot ask for: an opt-out's
# UPDATE waits for a send already leaving (the send path holds it until Graph answers).
_CUSTOMER_SHARE = core_sql.text(
    pg_sql.SQL("SELECT 1 FROM {table} WHERE {id} = %(id)s FOR SHARE").format(
        table=core_sql.table(Customer), id=core_sql.column(Customer, "id")
    )
)


def customer_hold(customer_id: int) -> None:
    if connection.vendor != "postgresql":
        # SQLite (the embedded default) has no row locks and runs one writer at a time; its
        # sends are made in-process, one after the other.
        return
    with connection.cursor() as cursor:
        cursor.execute(_CUSTOMER_SHARE, {"id": customer_id})


# --- The money report's tallies (recovery.money.figures) -----------------------------------------

DAY, TEMPLATE, STEP, HELD_STEP = 1, 2, 3, 4  # which grouping a row of money_tallies belongs to


class MoneyTally(NamedTuple):
    kind: int
    step: int | None
    key: str | None  # the template or the variant
    day: date | str | None
    share: Decimal
    held_out: bool
    carts: int
    paid: int
    value: Decimal
    value_squared: Decimal | float
    meta: Decimal
    model: Decimal
    discount: Decimal
    cost: Decimal | None


_NULL, _COUNT, _WON = pg_sql.SQL("NULL"), pg_sql.SQL("COUNT(*)"), pg_sql.Identifier("won")
# Typed: PostgreSQL settles a UNION's column types arm by arm, and a bare NULL pair becomes text.
_NO_STEP, _NO_COST = pg_sql.SQL("CAST(NULL AS INTEGER)"), pg_sql.SQL("CAST(NULL AS NUMERIC)")


def money_tallies(carts: tuple[str, list[Any]], *, steps: list[int]) -> list[MoneyTally]:
    """The cart facts (one row per cart: money_cart_facts, or the ORM's) added up per day, template, step and
    variant, and per step for the held-out carts, each by holdout share, in one statement.

    The ORM cannot group the result of a grouped query again; this adds up in the database what
    would otherwise be every cart's row in Python (tests/recovery/test_money_sql.py compares the
    two).
    """
    inner, params = carts
    col = pg_sql.Identifier
    null = _NULL

    def arm(
        kind: int,
        *,
        where: pg_sql.Composable,
        group: list[pg_sql.Composable],
        step: int | None = None,
        key: pg_sql.Composable = null,
        day: pg_sql.Composable = null,
        held_out: pg_sql.Composable,
        carts: pg_sql.Composable = _COUNT,
        won: pg_sql.Composable = _WON,
        cost: pg_sql.Composable = _NO_COST,
    ) -> pg_sql.Composable:
        return pg_sql.SQL(
            "SELECT {kind} AS kind, {step} AS step, {key} AS key, {day} AS day, share, {held_out} AS held_out, "
            "{carts} AS carts, SUM({won}) AS paid, SUM({won} * value) AS value, "
            "SUM({won} * value * value) AS value_squared, SUM(meta) AS meta, SUM(model) AS model, "
            "SUM(given) AS discount, {cost} AS cost FROM cart WHERE {where} GROUP BY {group}"
        ).format(
            kind=pg_sql.Literal(kind),
            step=_NO_STEP if step is None else pg_sql.Literal(step),
            key=key,
            day=day,
            held_out=held_out,
            carts=carts,
            won=won,
            cost=cost,
            where=where,
            group=pg_sql.SQL(", ").join(group),
        )

    contacted, held = pg_sql.SQL("NOT held_out"), pg_sql.SQL("held_out")
    arms = [
        arm(
            DAY,
            where=pg_sql.SQL("TRUE"),
            group=[col("day"), col("share"), col("held_out")],
            day=col("day"),
            held_out=col("held_out"),
        ),
        arm(
            TEMPLATE,
            where=contacted,
            group=[col("template"), col("share")],
            key=col("template"),
            held_out=pg_sql.Literal(False),
        ),
    ]
    for order in steps:
        cost: pg_sql.Composable = col(f"cost_{order}")
        if order == steps[0]:
            # The first step also carries the cart's messages that belong to no step (replies...).
            cost = pg_sql.SQL(" - ").join([col("meta"), *(col(f"cost_{o}") for o in steps[1:])])
        arms += [
            arm(
                STEP,
                step=order,
                where=pg_sql.SQL("NOT held_out AND {} IS NOT NULL").format(col(f"sent_{order}")),
                group=[col(f"variant_{order}"), col("share")],
                key=col(f"variant_{order}"),
                held_out=pg_sql.Literal(False),
                won=col(f"won_{order}"),
                cost=pg_sql.SQL("SUM({})").format(cost),
            ),
            arm(
                HELD_STEP,
                step=order,
                where=held,
                group=[col("share")],
                held_out=pg_sql.Literal(True),
                carts=pg_sql.SQL("SUM({})").format(col(f"open_{order}")),
                won=col(f"held_won_{order}"),
            ),
        ]
    statement = pg_sql.SQL("WITH cart AS ({inner}) {arms}").format(
        inner=pg_sql.SQL(inner), arms=pg_sql.SQL(" UNION ALL ").join(arms)
    )
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The planner's estimate of this one statement is high enough to switch JIT on, which
            # spends seconds compiling what runs in a fraction of one; the per-cart rows are
            # grouped in memory rather than on disk. Both for this transaction only.
            cursor.execute("SET LOCAL jit = off; SET LOCAL work_mem = '64MB'")
        cursor.execute(statement.as_string(None), params)
        return [MoneyTally(*row) for row in cursor.fetchall()]


def _money_params(
    *,
    since: datetime,
    until: datetime,
    settled: datetime,
    free_ids: list[int],
    meta_prices: dict[str, Decimal],
    default_meta_price: Decimal,
    model_rates: dict[str, Decimal],
    default_model_rate: Decimal,
) -> tuple[dict[str, Any], dict[str, pg_sql.Composable]]:
    """The statements' parameters (enum values and prices) and their shared pieces."""
    params: dict[str, Any] = {
        "since": since,
        "until": until,
        "settled": settled,
        "tz": timezone.get_current_timezone_name(),
        "discounted": Abandonment.ConversionLink.DISCOUNTED.value,
        "closed": Conversation.Status.CLOSED.value,
        "out": Message.Direction.OUT.value,
        "in": Message.Direction.IN.value,
        "first_contact": Message.Purpose.FIRST_CONTACT.value,
        "proactive": [p.value for p in Message.PROACTIVE_PURPOSES],
        "left": [Message.Status.SENT.value, Message.Status.DELIVERED.value, Message.Status.READ.value],
        "billed": [Message.Status.DELIVERED.value, Message.Status.READ.value],
        "template": Message.Kind.TEMPLATE.value,
        "free_types": list(pricing.FREE_TYPES),
        "marketing": pricing.MARKETING,
        "service": pricing.SERVICE,
        "free_ids": free_ids,
        "no_template": "—",
        "default_meta_price": default_meta_price,
        "default_model_rate": default_model_rate,
    }
    prices, rates = [], []
    for index, (name, price) in enumerate(meta_prices.items()):
        params[f"category_{index}"], params[f"price_{index}"] = name, price
        prices.append(
            pg_sql.SQL("WHEN {} THEN {}").format(
                pg_sql.Placeholder(f"category_{index}"), pg_sql.Placeholder(f"price_{index}")
            )
        )
    for index, (name, rate) in enumerate(model_rates.items()):
        params[f"model_{index}"], params[f"rate_{index}"] = name, rate
        rates.append(
            pg_sql.SQL("WHEN {} THEN {}").format(
                pg_sql.Placeholder(f"model_{index}"), pg_sql.Placeholder(f"rate_{index}")
            )
        )
    tables = {
        "a": pg_sql.Identifier(Abandonment._meta.db_table),
        "c": pg_sql.Identifier(Conversation._meta.db_table),
        "m": pg_sql.Identifier(Message._meta.db_table),
        "f": pg_sql.Identifier(ConversationMoney._meta.db_table),
    }
    in_range = pg_sql.SQL(_MONEY_IN_RANGE).format(**tables)
    valid = pg_sql.SQL(_MONEY_VALID).format(**tables)
    pieces = {
        **tables,
        "in_range": in_range,
        "valid": valid,
        "cost": pg_sql.SQL(_MONEY_META_COST).format(prices=pg_sql.SQL(" ").join(prices)),
        "rates": pg_sql.SQL(" ").join(rates),
    }
    return params, pieces


def _money_live(pieces: dict[str, pg_sql.Composable], *, which: pg_sql.Composable) -> pg_sql.Composable:
    """Per conversation of `which`: its Meta and model cost, first template and steps, from its
    messages (recovery.money.figures._cart_facts says the same with the ORM)."""
    messages = pg_sql.SQL(_MONEY_MESSAGES).format(m=pieces["m"], which=which)
    return pg_sql.SQL(_MONEY_LIVE).format(messages=messages, cost=pieces["cost"], rates=pieces["rates"])


def _positional(statement: pg_sql.Composable, params: dict[str, Any]) -> tuple[str, list[Any]]:
    """Named placeholders become positional ones, the way Django's cursor takes them."""
    text = statement.as_string(None)
    names: list[str] = []

    def positional(match: re.Match[str]) -> str:
        names.append(match.group(1))
        return "%s"

    text = re.sub(r"%\((\w+)\)s", positional, text)
    return text, [params[name] for name in names]


def money_settle(**prices: Any) -> int:
    """Work out and keep the money of the range's conversations closed before `settled` that have
    no up-to-date row yet: ConversationMoney.objects.update_or_create(...) per conversation, in
    one statement. Returns how many rows it wrote."""
    params, pieces = _money_params(**prices)
    stale = pg_sql.SQL(
        "{in_range} AND conversation.status = %(closed)s AND conversation.closed_at < %(settled)s AND NOT EXISTS ({valid})"
    ).format(**pieces)
    statement = pg_sql.SQL(_MONEY_SETTLE).format(live=_money_live(pieces, which=stale), stale=stale, **pieces)
    text, values = _positional(statement, params)
    with connection.cursor() as cursor:
        cursor.execute(text, values)
        return cursor.rowcount


def money_cart_facts(*, offsets: dict[int, timedelta], **prices: Any) -> tuple[str, list[Any]]:
    """recovery.money.figures._cart_facts (the ORM query it stands for) on PostgreSQL: one row
    per cart of the comparison. A settled conversation's money is read from its
    ConversationMoney row; the others' is worked out from their messages, each message's cost
    and step once (the ORM repeats them in every aggregate that filters on them)."""
    params, pieces = _money_params(**prices)
    col = pg_sql.Identifier
    orders = sorted(offsets)
    extracted, computed = [], []
    for index, order in enumerate(orders):
        params[f"step_{order}"] = str(order)
        params[f"at_{order}"] = offsets[order]
        key = pg_sql.Placeholder(f"step_{order}")
        extracted.append(
            pg_sql.SQL(
                ", (x.steps -> {key} ->> 'sent_at')::timestamptz AS {sent}, x.steps -> {key} ->> 'variant' AS {variant}, "
                "COALESCE((x.steps -> {key} ->> 'cost')::numeric, 0) AS {cost}"
            ).format(
                key=key, sent=col(f"sent_{order}"), variant=col(f"variant_{order}"), cost=col(f"cost_{order}")
            )
        )
        # Credited to this step: paid after it left and before any later step did.
        later = pg_sql.SQL("").join(
            pg_sql.SQL(" AND ({sent} IS NULL OR converted_at < {sent})").format(sent=col(f"sent_{o}"))
            for o in orders[index + 1 :]
        )
        held_won = pg_sql.SQL("converted_at >= created_at + {}").format(pg_sql.Placeholder(f"at_{order}"))
        if index + 1 < len(orders):
            held_won = pg_sql.SQL("{} AND converted_at < created_at + {}").format(
                held_won, pg_sql.Placeholder(f"at_{orders[index + 1]}")
            )
        computed.append(
            pg_sql.SQL(
                ", {sent}, {variant}, {cost}, CASE WHEN converted_at >= {sent}{later} THEN 1 ELSE 0 END AS {won}, "
                "CASE WHEN converted_at IS NULL OR converted_at >= created_at + {at} THEN 1 ELSE 0 END AS {open}, "
                "CASE WHEN {held_won} THEN 1 ELSE 0 END AS {held_won_name}"
            ).format(
                sent=col(f"sent_{order}"),
                variant=col(f"variant_{order}"),
                cost=col(f"cost_{order}"),
                later=later,
                won=col(f"won_{order}"),
                at=pg_sql.Placeholder(f"at_{order}"),
                open=col(f"open_{order}"),
                held_won=held_won,
                held_won_name=col(f"held_won_{order}"),
            )
        )
    # The conversations without kept money, found first: a few hundred among tens of thousands,
    # which the planner cannot foresee inside the statement (it would read every message twice);
    # as a list, their messages are read through the conversation index.
    unsettled = pg_sql.SQL("{in_range} AND NOT EXISTS ({valid})").format(**pieces)
    text, values = _positional(unsettled, params)
    with connection.cursor() as cursor:
        cursor.execute(text, values)
        params["unsettled"] = [row[0] for row in cursor.fetchall()]
    statement = pg_sql.SQL(_MONEY_CART_FACTS).format(
        live=_money_live(pieces, which=pg_sql.SQL("SELECT unnest(%(unsettled)s::bigint[])")),
        extracted=pg_sql.SQL("").join(extracted),
        computed=pg_sql.SQL("").join(computed),
        **pieces,
    )
    return _positional(statement, params)


# The contacted carts' conversations of the range.
_MONEY_IN_RANGE = """
    SELECT conversation.id FROM {c} conversation JOIN {a} cart ON cart.id = conversation.abandonment_id
    WHERE cart.created_at >= %(since)s AND cart.created_at < %(until)s
      AND cart.holdout_percent > 0 AND NOT cart.held_out
"""

# An up-to-date ConversationMoney row of `conversation`: worked out after it closed this time.
_MONEY_VALID = """
    SELECT 1 FROM {f} kept WHERE kept.conversation_id = conversation.id AND kept.closed_at = conversation.closed_at
      AND conversation.status = %(closed)s
"""

# A conversation without a message that costs or a step gets its row too (nothing, kept): the
# report then works out from messages only the conversations still open or just closed.
_MONEY_SETTLE = """
INSERT INTO {f} (conversation_id, closed_at, meta_cost, model_cost, template, steps)
SELECT conversation.id, conversation.closed_at, COALESCE(live.meta, 0), COALESCE(live.model, 0),
       live.template, COALESCE(live.steps, '{{}}'::jsonb)
FROM {c} conversation LEFT JOIN ({live}) live ON live.conversation_id = conversation.id
WHERE conversation.id IN ({stale})
ON CONFLICT (conversation_id) DO UPDATE SET
    closed_at = EXCLUDED.closed_at, meta_cost = EXCLUDED.meta_cost, model_cost = EXCLUDED.model_cost,
    template = EXCLUDED.template, steps = EXCLUDED.steps
"""

_MONEY_CART_FACTS = """
SELECT day, share, held_out, value, won, given, meta, model, template {computed}
FROM (
    SELECT o.*, COALESCE(x.meta, 0) AS meta, COALESCE(x.model, 0) AS model, x.template {extracted}
    FROM (
        SELECT id, created_at, converted_at, holdout_percent AS share, held_out, value,
               (created_at AT TIME ZONE %(tz)s)::date AS day,
               CASE WHEN converted_at IS NOT NULL THEN 1 ELSE 0 END AS won,
               CASE WHEN converted_at IS NOT NULL AND conversion_link = %(discounted)s AND paid_amount < value
                    THEN value - paid_amount ELSE 0 END AS given
        FROM {a}
        WHERE created_at >= %(since)s AND created_at < %(until)s AND holdout_percent > 0
    ) o
    LEFT JOIN {c} conversation ON conversation.abandonment_id = o.id
    LEFT JOIN (
        SELECT kept.conversation_id, kept.meta_cost AS meta, kept.model_cost AS model, kept.template, kept.steps
        FROM {f} kept JOIN {c} conversation ON conversation.id = kept.conversation_id
        WHERE kept.closed_at = conversation.closed_at AND conversation.status = %(closed)s
        UNION ALL
        {live}
    ) x ON x.conversation_id = conversation.id
    -- OFFSET 0 keeps this a subquery of its own: each kept step's time is read from its JSON once,
    -- not again in every comparison above that names it.
    OFFSET 0
) cart_facts
"""

# Per conversation: what its messages cost (only those that can cost something are added up),
# and each step that left: when, which variant, what it cost; the first template's name.
_MONEY_LIVE = """
SELECT conversation_id, COALESCE(k.meta, 0) AS meta, COALESCE(k.model, 0) AS model, s.template,
       COALESCE(s.steps, '{{}}'::jsonb) AS steps
FROM (
    SELECT message.conversation_id, SUM({cost}) AS meta,
           SUM(CASE WHEN message.direction = %(in)s
                    THEN message.tokens_used * CASE message.ai_model {rates} ELSE %(default_model_rate)s END
                    ELSE 0 END) AS model
    {messages}
      AND ((message.direction = %(out)s AND message.status = ANY(%(billed)s))
           OR (message.direction = %(in)s AND message.tokens_used > 0))
    GROUP BY message.conversation_id
) k
FULL JOIN (
    -- Byte order ("C"): a template name is the same whatever the locale, and the collation's
    -- own comparison would be the slowest part of the statement.
    SELECT conversation_id, MIN(template COLLATE "C") AS template,
           jsonb_object_agg(step, jsonb_build_object('sent_at', sent_at, 'variant', variant, 'cost', cost))
               FILTER (WHERE step IS NOT NULL) AS steps
    FROM (
        SELECT conversation_id, step, MIN(sent_at) AS sent_at, MIN(variant COLLATE "C") AS variant,
               SUM(cost) AS cost, MIN(template COLLATE "C") AS template
        FROM (
            SELECT message.conversation_id, message.sent_at, {cost} AS cost,
                   CASE WHEN message.status = ANY(%(left)s) AND message.sent_at IS NOT NULL
                        THEN COALESCE((message.metadata -> 'sequence' ->> 'step')::integer,
                                      CASE WHEN message.purpose = %(first_contact)s THEN 1 ELSE 2 END)
                   END AS step,
                   COALESCE(NULLIF(message.metadata -> 'sequence' ->> 'variant', ''),
                            NULLIF(message.metadata -> 'template' ->> 'name', ''), %(no_template)s) AS variant,
                   CASE WHEN message.purpose = %(first_contact)s
                        THEN message.metadata -> 'template' ->> 'name' END AS template
            {messages}
              AND message.direction = %(out)s AND message.purpose = ANY(%(proactive)s)
        ) sent
        GROUP BY conversation_id, step
    ) per_step
    GROUP BY conversation_id
) s USING (conversation_id)
"""

_MONEY_MESSAGES = """
    FROM {m} message
    CROSS JOIN LATERAL (
        SELECT CASE WHEN message.pricing_category <> '' THEN message.pricing_category
                    WHEN message.kind = %(template)s THEN %(marketing)s
                    ELSE %(service)s END AS category
    ) priced
    WHERE message.conversation_id IN ({which})
"""

# What Meta charges for a message (messaging.pricing): Meta's verdict when a status carried its
# pricing block; without one, every delivered message but the month's free service tier.
_MONEY_META_COST = """
    CASE WHEN message.status = ANY(%(billed)s)
              AND NOT message.pricing_type = ANY(%(free_types)s)
              AND (message.pricing_billable IS TRUE
                   OR (message.pricing_billable IS NULL AND message.pricing_type <> '')
                   OR (message.pricing_billable IS NULL AND message.pricing_type = ''
                       -- IN (SELECT ...), not = ANY(...): hashed, and the tier holds thousands of ids.
                       AND NOT (category = %(service)s
                                AND message.id IN (SELECT unnest(%(free_ids)s::bigint[])))))
         THEN CASE category {prices} ELSE %(default_meta_price)s END
         ELSE 0 END
"""
