"""Named handlers: what messaging and compliance call, bound by the recovery when Django starts."""

from __future__ import annotations

import pytest

from compliance import handlers as compliance_handlers
from core.apps import handlers_bound_check
from core.handlers import Handler, HandlerNotBound, handlers_declared, handlers_unbound
from messaging import handlers as messaging_handlers


def test_every_declared_handler_is_bound_once_django_has_started() -> None:
    declared = handlers_declared()

    assert {
        "messaging.inbound_process",
        "messaging.payments_kept_reconcile",
        "messaging.outbound_load",
        "messaging.first_contact_settled",
        "compliance.windows_sweep",
    } <= set(declared)
    assert handlers_unbound() == []
    assert handlers_bound_check() == []


def test_the_recovery_does_the_work_the_lower_apps_name() -> None:
    from recovery import followups, inbound, lifecycle, outbox, services

    assert messaging_handlers.inbound_process.function is inbound.process_inbound
    assert messaging_handlers.payments_kept_reconcile.function is services.early_payments_reconcile
    assert messaging_handlers.outbound_load.function is outbox.outbound_load
    assert messaging_handlers.first_contact_settled.function is lifecycle.first_contact_settled
    assert compliance_handlers.windows_sweep.function is followups.sweep_windows


def test_an_unbound_handler_fails_the_start_up_check_and_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(messaging_handlers.outbound_load, "function", None)

    errors = handlers_bound_check()

    assert [error.id for error in errors] == ["core.E001"]
    assert "messaging.outbound_load" in errors[0].msg
    with pytest.raises(HandlerNotBound, match=r"messaging\.outbound_load"):
        messaging_handlers.outbound_load(message_id=1)


def test_a_bound_handler_passes_its_arguments_and_answer_through() -> None:
    handler: Handler[..., int] = Handler("tests.add", bound_by="this test")
    try:
        handler.bind(lambda *, a, b: a + b)
        assert handler(a=2, b=3) == 5
    finally:
        handler.bind(lambda **_: 0)
