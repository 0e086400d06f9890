"""A trace id per webhook, carried into every Celery task it causes (as a task header)."""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

_trace_id: contextvars.ContextVar[str] = contextvars.ContextVar("trace_id", default="")
HEADER = "sara_trace_id"


def current() -> str:
    return _trace_id.get()


def set_current(value: str) -> contextvars.Token[str]:
    return _trace_id.set(value)


def new_id() -> str:
    return uuid.uuid4().hex


class TraceIdMiddleware:
    """Takes X-Request-ID when the caller sends one (sanitised), otherwise makes a new id."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        trace = given if given and len(given) <= 64 and given.isascii() and given.isprintable() else new_id()
        token = _trace_id.set(trace)
        try:
            response = self.get_response(request)
        finally:
            _trace_id.reset(token)
        response["X-Request-ID"] = trace
        return response


def connect_celery_signals() -> None:
    from celery.signals import before_task_publish, task_postrun, task_prerun

    @before_task_publish.connect(weak=False)
    def _add_header(headers: dict[str, Any] | None = None, **_: object) -> None:
        if headers is not None and current():
            headers.setdefault(HEADER, current())

    # Tokens by task id: an eager task (run inside the request that queued it) gives the
    # request its own trace id back when it ends.
    tokens: dict[str, contextvars.Token[str]] = {}

    @task_prerun.connect(weak=False)
    def _enter(task_id: str = "", task: object = None, **_: object) -> None:
        request = getattr(task, "request", None)
        value = getattr(request, HEADER, None) or (getattr(request, "headers", None) or {}).get(HEADER)
        tokens[task_id] = _trace_id.set(value or current() or new_id())

    @task_postrun.connect(weak=False)
    def _leave(task_id: str = "", **_: object) -> None:
        token = tokens.pop(task_id, None)
        if token is not None:
            _trace_id.reset(token)
