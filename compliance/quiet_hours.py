"""Quiet hours: no proactive message between SARA_QUIET_HOURS in the customer's local time."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings

from core.phones import area_code

DEFAULT_TZ = "America/Sao_Paulo"

# Brazilian area codes (DDD) outside Brasília time; every other DDD is America/Sao_Paulo.
_DDD_TIMEZONES = {
    "68": "America/Rio_Branco",  # AC
    "69": "America/Porto_Velho",  # RO
    "92": "America/Manaus",  # AM
    "97": "America/Manaus",  # AM
    "95": "America/Boa_Vista",  # RR
    "65": "America/Cuiaba",  # MT
    "66": "America/Cuiaba",  # MT
    "67": "America/Campo_Grande",  # MS
}


def customer_timezone(phone: str) -> ZoneInfo:
    return ZoneInfo(_DDD_TIMEZONES.get(area_code(phone) or "", DEFAULT_TZ))


def parse_quiet_hours(value: str) -> tuple[time, time] | None:
    """ "21:00-08:00" → (21:00, 08:00); empty turns quiet hours off."""
    value = (value or "").strip()
    if not value:
        return None
    start, end = (time.fromisoformat(part.strip()) for part in value.split("-", 1))
    return start, end


def _is_quiet(moment: time, window: tuple[time, time]) -> bool:
    start, end = window
    if start == end:
        return False
    if start < end:
        return start <= moment < end
    return moment >= start or moment < end  # the window wraps midnight


def next_allowed_at(phone: str, now: datetime, spec: str | None = None) -> datetime | None:
    """None when a proactive message may go now; otherwise the first allowed moment (aware)."""
    window = parse_quiet_hours(settings.SARA_QUIET_HOURS if spec is None else spec)
    if window is None:
        return None
    local = now.astimezone(customer_timezone(phone))
    if not _is_quiet(local.time(), window):
        return None
    end = window[1]
    candidate = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if candidate <= local:
        candidate = candidate + timedelta(days=1)
        # Re-anchor to the wall-clock end time: a DST change in between must not shift it.
        candidate = candidate.replace(hour=end.hour, minute=end.minute)
    return candidate
