"""messaging's tasks, queued by their Celery names (SPEC §5-§7).

The services queue these and import no task module; `messaging.tasks` imports the services.
"""

from __future__ import annotations

from core import broker

PROCESS_INBOUND = "messaging.tasks.process_inbound"
SEND_MESSAGE = "messaging.tasks.send_message"
FAN_OUT_EVENT = "messaging.tasks.fan_out_event"


def process_inbound(message_id: int) -> None:
    broker.task(PROCESS_INBOUND).delay(message_id)


def processing_each(message_ids: list[int]) -> None:
    """One process_inbound per message, published together in this order (core.broker)."""
    broker.publish_each(broker.task(PROCESS_INBOUND), [(message_id,) for message_id in message_ids])


def send_message(message_id: int) -> None:
    broker.task(SEND_MESSAGE).delay(message_id)


def fan_out_event(event_id: int) -> None:
    broker.task(FAN_OUT_EVENT).delay(event_id)
