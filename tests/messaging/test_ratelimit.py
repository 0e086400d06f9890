"""The send rate cap per phone-number id (SPEC §6): never more than WHATSAPP_MPS sends a second."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import responses
from django.utils import timezone

from messaging import ratelimit
from messaging.models import Message
from messaging.services import outbound
from messaging.tasks import send_message, sweep_stuck
from recovery.models import Conversation
from tests.conftest import GRAPH_URL, graph_ok
from tests.factories import ConversationFactory, OutboundMessageFactory

LIMIT = 200
THREADS = 4
ACQUIRES_PER_THREAD = 200


def acquire_from_threads(phone_number_id: str) -> tuple[Counter[int], list[float], float]:
    """4 threads × 200 acquires: how many returned in each wall-clock second, when, and how long."""
    returned_at: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def sender() -> None:
        try:
            start.wait()
            for _ in range(ACQUIRES_PER_THREAD):
                ratelimit.acquire(phone_number_id, limit=LIMIT)
                now = time.time()
                with lock:
                    returned_at.append(now)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    # Begin just after a second starts, so no acquire sits on a boundary between two clocks.
    time.sleep(1.05 - time.time() % 1)
    began = time.monotonic()
    threads = [threading.Thread(target=sender) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began

    assert errors == []
    assert len(returned_at) == THREADS * ACQUIRES_PER_THREAD
    return Counter(int(moment) for moment in returned_at), sorted(returned_at), elapsed


def most_in_any_window(moments: list[float], seconds: float) -> int:
    """The most moments inside any window of that length, wherever it starts (moments sorted)."""
    most, first = 0, 0
    for last, moment in enumerate(moments):
        while moment - moments[first] >= seconds:
            first += 1
        most = max(most, last - first + 1)
    return most


# The callers' threads wake a little after their slot; a window this much shorter than a
# second keeps that lateness from counting as a breach. A limiter counting fixed seconds lets
# up to twice the limit through within a few milliseconds around the turn of a second.
WAKE_UP_TOLERANCE = 0.05


@pytest.mark.redis
def test_shared_limiter_in_redis_never_lets_more_than_the_limit_through_in_a_second():
    per_second, moments, elapsed = acquire_from_threads(f"test-{uuid.uuid4().hex}")

    assert max(per_second.values()) <= LIMIT
    assert most_in_any_window(moments, 1 - WAKE_UP_TOLERANCE) <= LIMIT
    # 800 sends at 200 a second fill four seconds: the callers really waited.
    assert len(per_second) >= 4
    assert elapsed >= 2.5


def test_in_process_limiter_caps_sends_without_redis(settings: Any):
    settings.REDIS_URL = ""

    per_second, moments, elapsed = acquire_from_threads(f"test-{uuid.uuid4().hex}")

    assert max(per_second.values()) <= LIMIT
    assert most_in_any_window(moments, 1 - WAKE_UP_TOLERANCE) <= LIMIT
    assert len(per_second) >= 4
    assert elapsed >= 2.5


@pytest.mark.redis
def test_each_phone_number_id_has_its_own_budget():
    busy, idle = f"test-{uuid.uuid4().hex}", f"test-{uuid.uuid4().hex}"
    busy_waits = [ratelimit.reserve(busy, limit=3) for _ in range(4)]

    # The busy number's later slots wait; the idle one's first slot is open at once.
    assert busy_waits[0] == 0 and busy_waits[-1] > 0
    assert ratelimit.reserve(idle, limit=3) == 0


@pytest.mark.redis
def test_caller_gives_up_when_no_slot_opens_within_its_deadline():
    phone_number_id = f"test-{uuid.uuid4().hex}"
    time.sleep(1.05 - time.time() % 1)
    ratelimit.acquire(phone_number_id, limit=1)

    with pytest.raises(ratelimit.RateLimitTimeout):
        ratelimit.acquire(phone_number_id, limit=1, max_wait=0.1)


@pytest.fixture
def unreachable_redis(settings: Any) -> Iterator[None]:
    real_url = settings.REDIS_URL
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    yield
    settings.REDIS_URL = real_url


@pytest.mark.django_db
def test_send_that_cannot_reach_the_limiter_gives_its_claim_back_and_goes_out_later_once(
    graph, settings, unreachable_redis, time_machine
):
    time_machine.move_to("2025-11-22 15:00:00+00:00", tick=False)
    conversation = ConversationFactory(
        abandonment__customer__phone="+5548999327881",
        status=Conversation.Status.ACTIVE,
        last_user_message_at=timezone.now(),
    )
    reply = OutboundMessageFactory(conversation=conversation, text="Segue o link.")

    send_message.delay(reply.pk)

    reply.refresh_from_db()
    assert (reply.status, reply.claimed_at, reply.attempts) == (Message.Status.PENDING, None, 0)
    assert len(graph.calls) == 0

    # Redis is back; the sweep finds the send its task could not finish.
    settings.REDIS_URL = ""
    graph.add(responses.POST, GRAPH_URL, json=graph_ok("wamid.later"))
    time_machine.move_to("2025-11-22 15:03:00+00:00", tick=False)
    sweep_stuck.delay()

    reply.refresh_from_db()
    assert (reply.status, reply.whatsapp_message_id) == (Message.Status.SENT, "wamid.later")
    # Meta never saw the first try: this is no duplicate.
    assert not reply.possible_duplicate
    assert reply.attempts == 1


def depart_from_threads(phone_number_id: str, *, limit: int, threads: int, each: int) -> list[float]:
    """Departures with no slots at all, as when every waiting thread wakes late at once."""
    moments: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def sender() -> None:
        start.wait()
        for _ in range(each):
            ratelimit.depart(phone_number_id, limit=limit)
            with lock:
                moments.append(time.monotonic())

    workers = [threading.Thread(target=sender) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sorted(moments)


@pytest.mark.redis
def test_departures_in_redis_never_exceed_the_cap_in_any_second_even_when_slots_bunch():
    moments = depart_from_threads(f"test-{uuid.uuid4().hex}", limit=20, threads=4, each=12)

    assert len(moments) == 48
    assert most_in_any_window(moments, 1 - WAKE_UP_TOLERANCE) <= 20
    # 48 departures at 20 a window: the last ones waited two windows.
    assert moments[-1] - moments[0] >= 2 * ratelimit.WINDOW_SECONDS - WAKE_UP_TOLERANCE


def test_in_process_departures_never_exceed_the_cap_in_any_second(settings: Any):
    settings.REDIS_URL = ""

    moments = depart_from_threads(f"test-{uuid.uuid4().hex}", limit=20, threads=4, each=12)

    assert len(moments) == 48
    assert most_in_any_window(moments, 1 - WAKE_UP_TOLERANCE) <= 20


@pytest.mark.django_db
def test_sends_whose_slots_bunch_still_reach_graph_under_the_cap(graph, settings, monkeypatch):
    """Late wake-ups make slots useless as a count; the request is counted again as it leaves."""
    settings.WHATSAPP_MPS = 3
    settings.WHATSAPP_PHONE_NUMBER_ID = f"test-{uuid.uuid4().hex}"
    reached_graph: list[float] = []

    def accept(request: Any) -> tuple[int, dict, str]:
        reached_graph.append(time.monotonic())
        return 200, {}, json.dumps(graph_ok(f"wamid.{uuid.uuid4().hex}"))

    graph.add_callback(responses.POST, re.compile(r"https://graph\.test/.*/messages"), callback=accept)
    # Every slot granted at once, as when every waiting thread of a busy worker wakes late.
    monkeypatch.setattr(ratelimit, "reserve", lambda *args, **kwargs: 0.0)
    replies = []
    for n in range(7):
        conversation = ConversationFactory(
            abandonment__customer__phone=f"+55489993278{n:02d}",
            status=Conversation.Status.ACTIVE,
            last_user_message_at=timezone.now(),
        )
        replies.append(OutboundMessageFactory(conversation=conversation, text="Segue o link."))

    for reply in replies:
        outbound.send_message(message_id=reply.pk)

    assert len(reached_graph) == 7
    assert most_in_any_window(reached_graph, 1 - WAKE_UP_TOLERANCE) <= 3
