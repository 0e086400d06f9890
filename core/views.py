"""Health and readiness probes."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.defaults import page_not_found
from django.views.defaults import server_error as default_server_error

from core import sql
from core.broker import broker_check, broker_kind
from core.http import error_body


def health(request: HttpRequest) -> JsonResponse:
    """The process serves: nothing else is touched, so a slow database never fails it."""
    return JsonResponse({"status": "ok"})


def ready(request: HttpRequest) -> JsonResponse:
    """PostgreSQL, Redis and Celery's broker (when it is not Redis) answer; 503 naming what does not."""
    checks: dict[str, str] = {}
    try:
        sql.ping()
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means "not ready"
        checks["database"] = f"down: {exc.__class__.__name__}"
    if settings.REDIS_URL:
        import redis

        try:
            redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).ping()
            checks["redis"] = "ok"
        except redis.RedisError as exc:
            checks["redis"] = f"down: {exc.__class__.__name__}"
    else:
        checks["redis"] = "not configured"
    if broker_kind() != "memory" and settings.CELERY_BROKER_URL != settings.REDIS_URL:
        # A broker of its own (RabbitMQ): Redis above still carries the limiter and the cache.
        checks["broker"] = broker_check()
    ok = all(not value.startswith("down") for value in checks.values())
    return JsonResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503
    )


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404 in the error shape for machines; the admin keeps Django's page for people."""
    if request.path.startswith("/admin/"):
        return page_not_found(request, exception)
    return JsonResponse(
        error_body("NOT_FOUND", _("No such resource."), {"path": request.path[:200]}), status=404
    )


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/admin/"):
        return default_server_error(request)
    return JsonResponse(error_body("INTERNAL_ERROR", _("Something went wrong on our side.")), status=500)
