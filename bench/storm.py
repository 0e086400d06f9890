"""Storm — carts, payments, customers and two staff members on the same carts at once.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/sara_i28 \\
    BENCH_REDIS_URL=redis://127.0.0.1:6379/5 BENCH_WEB_PORT=18728 BENCH_OPENAI_PORT=18729 \\
    BENCH_GRAPH_PORT=18730 .venv/bin/python bench/storm.py [--carts 80] [--web-workers 4]

Production-like and on loopback only: DEBUG off, gunicorn with sync workers, two threaded
Celery workers, the OpenAI fake (800 ms) and the Graph fake (300 ms, posting statuses back).
No beat: nothing is swept, so a customer message a deadlock left `received` stays counted.

1. Deliveries: every cart's abandonment webhook three times and, for half of the carts, its
   payment three times, all shuffled; a quarter of the carts are paid before their abandonment
   arrives (kept as 404, converted on arrival, never chased).
2. The customers of the open carts write; a first staff member replies to each (taking it).
3. At once: for each open cart, its customer writes again, a second staff member replies and
   (half of the carts) the payment arrives, the three released together.

Reported (bench/out/storm.json, and in bench/RESULTS.md by hand): deliveries by kind and answer,
5xx, recoveries (first templates sent), conversions, templates after a committed payment,
customer messages left `received`, Sara's words while a person owned the conversation, and the
deadlocks PostgreSQL detected during the run. Every process it starts is stopped by its pid.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

VALUE = Decimal("297.00")


def phone(i: int) -> str:
    return f"+5531{970000000 + i}"


def post(path: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(
        f"{common.WEB}{path}", data=body, headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def signed(body: dict[str, Any], secret: str) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    return raw, {"X-Hub-Signature-256": common.sign(secret, raw)}


def abandonment(i: int) -> tuple[str, bytes, dict[str, str]]:
    raw, headers = signed(
        {
            "userId": f"u-{i}",
            "name": f"Cliente {i}",
            "phone": phone(i),
            "productId": "curso-python",
            "paymentLink": f"https://pay.example.com/cart/storm-{i}",
            "abandonmentId": f"storm-{i}",
            "value": str(VALUE),
        },
        common.PAYMENT_SECRET,
    )
    return "/webhook/abandonment", raw, headers


def payment(i: int) -> tuple[str, bytes, dict[str, str]]:
    raw, headers = signed(
        {
            "abandonmentId": f"storm-{i}",
            "paymentId": f"storm-pay-{i}",
            "status": "paid",
            "amount": str(VALUE),
            "linkType": "original",
        },
        common.PAYMENT_SECRET,
    )
    return "/webhook/payment", raw, headers


def customer_message(i: int, n: int, text: str) -> tuple[str, bytes, dict[str, str]]:
    wa_id = phone(i).lstrip("+")
    body = common.customer_text(wa_id, f"Cliente {i}", f"wamid.storm.{i}.{n}", text)
    raw, headers = signed(body, common.APP_SECRET)
    return "/webhook/messages", raw, headers


def staff_reply(conversation_id: int, token: str, who: str) -> tuple[str, bytes, dict[str, str]]:
    raw = json.dumps({"text": f"Oi, aqui é {who}: já vejo isso para você."}).encode()
    return f"/conversations/{conversation_id}/reply", raw, {"Authorization": f"Token {token}"}


def storm(requests: list[tuple[str, str, bytes, dict[str, str]]], threads: int) -> list[tuple[str, int]]:
    """Post every request, shuffled, from `threads` clients at once: (kind, status) each."""
    random.shuffle(requests)
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda r: (r[0], post(r[1], r[2], r[3])), requests))


def race(groups: list[list[tuple[str, str, bytes, dict[str, str]]]], threads: int) -> list[tuple[str, int]]:
    """Each group's requests released at the same instant (a barrier), several groups at a time."""
    import threading

    def together(group: list[tuple[str, str, bytes, dict[str, str]]]) -> list[tuple[str, int]]:
        barrier = threading.Barrier(len(group))
        results: list[tuple[str, int]] = [("", 0)] * len(group)

        def one(n: int) -> None:
            kind, path, body, headers = group[n]
            barrier.wait()
            results[n] = (kind, post(path, body, headers))

        workers = [threading.Thread(target=one, args=(n,)) for n in range(len(group))]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return results

    with ThreadPoolExecutor(max(1, threads // 3)) as pool:
        return [answer for answers in pool.map(together, groups) for answer in answers]


def settle(seconds: float = 120) -> None:
    """Wait until no customer message is waiting and no send is pending (or time runs out)."""
    from messaging.models import Message

    deadline = time.time() + seconds
    quiet = 0
    while time.time() < deadline:
        busy = (
            Message.objects.filter(direction="in", status="received").exists()
            or Message.objects.filter(direction="out", status="pending", send_after__isnull=True)
            .exclude(error_code="needs_human")
            .exists()
        )
        quiet = 0 if busy else quiet + 1
        if quiet >= 3:
            return
        time.sleep(1)


def deadlocks() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def seed_staff() -> dict[str, str]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from rest_framework.authtoken.models import Token

    tokens = {}
    for name in ("julia", "pedro"):
        user, _ = get_user_model().objects.get_or_create(username=name, defaults={"is_staff": True})
        user.groups.add(Group.objects.get_or_create(name="support")[0])
        tokens[name] = Token.objects.get_or_create(user=user)[0].key
    return tokens


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--carts", type=int, default=80)
    parser.add_argument("--web-workers", type=int, default=4)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    random.seed(28)

    common.setup_django()
    common.reset_data()
    from django.contrib.auth import get_user_model

    from messaging.models import Message
    from recovery.models import Abandonment, Conversation, Product

    get_user_model().objects.filter(username__in=["julia", "pedro"]).delete()
    Product.objects.create(
        product_id="curso-python",
        name="Curso de Python",
        description="Curso online de Python com 40 horas de vídeo e certificado.",
        payment_link="https://pay.example.com/curso-python",
    )
    tokens = seed_staff()
    deadlocks_before = deadlocks()

    # On a shared two-core machine four Django processes may take longer than 30 s to boot.
    common.wait_http.__defaults__ = (180,)
    common.start_fakes()
    common.start_web(args.web_workers)
    for n in range(2):
        common.start_worker(concurrency=8, name=f"worker{n}")

    carts = list(range(args.carts))
    paid_first = set(carts[: args.carts // 4])
    paid_later = set(carts[args.carts // 4 : args.carts // 2])
    answers: list[tuple[str, int]] = []

    # 1. Payments that come first, then every delivery three times, shuffled.
    answers += storm([("payment", *payment(i)) for i in paid_first], args.clients)
    deliveries = [("abandonment", *abandonment(i)) for i in carts for _ in range(3)]
    deliveries += [("payment", *payment(i)) for i in paid_first | paid_later for _ in range(3)]
    answers += storm(deliveries, args.clients)
    settle()

    # 2. The customers of the open carts write; a first person answers each (and takes it).
    open_carts = {
        int(c.abandonment.external_id.split("-")[1]): c.pk
        for c in Conversation.objects.filter(status__in=Conversation.OPEN_STATUSES).select_related(
            "abandonment"
        )
    }
    answers += storm(
        [("customer", *customer_message(i, 1, "Oi! O curso tem certificado?")) for i in open_carts],
        args.clients,
    )
    settle()
    answers += storm(
        [("staff", *staff_reply(c, tokens["julia"], "a Júlia")) for c in open_carts.values()], args.clients
    )
    settle()

    # 3. At once: per cart, the customer again, a second person and (half of them) the payment,
    #    released together; the carts in waves of `clients` / 3.
    racing = list(open_carts)
    paid_in_race = set(racing[: len(racing) // 2])
    triplets = [
        [
            ("customer", *customer_message(i, 2, "Quanto fica o frete? Quero finalizar.")),
            ("staff", *staff_reply(open_carts[i], tokens["pedro"], "o Pedro")),
            *([("payment", *payment(i))] if i in paid_in_race else []),
        ]
        for i in racing
    ]
    answers += race(triplets, args.clients)
    settle()

    graph = common.get_json(f"http://127.0.0.1:{common.GRAPH_PORT}/stats")
    by_kind = Counter(kind for kind, _ in answers)
    by_answer = Counter(f"{kind} {status}" for kind, status in answers)
    converted = Abandonment.objects.filter(payment_id__isnull=False)
    # Sara's own words (a reply, a hand-off note, a follow-up) written after a person first
    # replied in that conversation: there must be none.
    first_staff = {}
    for conversation_id, created_at in Message.objects.filter(
        purpose=Message.Purpose.STAFF_REPLY
    ).values_list("conversation_id", "created_at"):
        first_staff[conversation_id] = min(created_at, first_staff.get(conversation_id, created_at))
    sara_words = Message.objects.filter(
        direction="out",
        purpose__in=[Message.Purpose.REPLY, Message.Purpose.HANDOFF, Message.Purpose.FOLLOWUP],
        conversation_id__in=list(first_staff),
    ).values_list("conversation_id", "created_at")
    sara_while_owned = sum(1 for c, created_at in sara_words if created_at > first_staff[c])
    result = {
        "carts": args.carts,
        "deliveries": len(answers),
        "deliveries_by_kind": dict(by_kind),
        "answers": dict(sorted(by_answer.items())),
        "5xx": sum(1 for _, status in answers if status >= 500),
        "recoveries_opened": Message.objects.filter(purpose=Message.Purpose.FIRST_CONTACT).count(),
        "recoveries_first_contact_sent": Message.objects.filter(
            purpose=Message.Purpose.FIRST_CONTACT, status__in=["sent", "delivered", "read"]
        ).count(),
        "conversions": converted.count(),
        "carts_paid": len(paid_first | paid_later | paid_in_race),
        "conversions_per_cart_max": max(
            Counter(converted.values_list("external_id", flat=True)).values(), default=0
        ),
        "templates_to_carts_paid_first": Message.objects.filter(
            purpose=Message.Purpose.FIRST_CONTACT,
            conversation__abandonment__external_id__in=[f"storm-{i}" for i in paid_first],
        ).count(),
        "customer_messages": Message.objects.filter(direction="in").count(),
        "left_received": Message.objects.filter(direction="in", status="received").count(),
        "staff_replies_queued": Message.objects.filter(purpose=Message.Purpose.STAFF_REPLY).count(),
        "sara_words_while_a_person_owned": sara_while_owned,
        "graph_stats": graph,
        "deadlocks_detected": deadlocks() - deadlocks_before,
    }
    common.save("storm", result)
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
