"""recovery/lifecycle.py is the only writer of conversation and cart status (SPEC §12)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from recovery.models import Conversation

ROOT = Path(__file__).resolve().parents[2]
APPS = ["core", "sara", "recovery", "messaging", "compliance", "backoffice", "config"]
LIFECYCLE = ROOT / "recovery" / "lifecycle.py"
WRITING_CALLS = {"update", "create", "get_or_create", "update_or_create", "bulk_create", "bulk_update"}
STATUS_OWNERS = {"conversation", "abandonment"}


def _is_status_value(node: ast.expr) -> bool:
    """Conversation.Status.X or Abandonment.Status.X (class or instance), or any CloseReason.X."""
    if isinstance(node, ast.IfExp):
        return _is_status_value(node.body) or _is_status_value(node.orelse)
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        names.append(node.id)
    return ("Status" in names and bool(STATUS_OWNERS & {n.lower() for n in names})) or "CloseReason" in names


def status_writes(source: str) -> list[int]:
    """Lines that write a conversation's or a cart's status or close reason."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if (isinstance(target, ast.Attribute) and target.attr == "close_reason") or (
                    isinstance(target, ast.Attribute)
                    and target.attr == "status"
                    and _is_status_value(node.value)
                ):
                    lines.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr not in WRITING_CALLS:
                continue
            for keyword in node.keywords:
                if keyword.arg == "close_reason" or (
                    keyword.arg == "status" and _is_status_value(keyword.value)
                ):
                    lines.append(node.lineno)
    return lines


def project_sources() -> list[Path]:
    return [
        path
        for app in APPS
        for path in (ROOT / app).rglob("*.py")
        if "migrations" not in path.parts and path != LIFECYCLE
    ]


def test_only_the_lifecycle_writes_conversation_and_cart_status():
    writers = {
        str(path.relative_to(ROOT)): lines
        for path in project_sources()
        if (lines := status_writes(path.read_text()))
    }

    assert writers == {}


def test_the_lifecycle_itself_is_seen_writing_status():
    # The scanner must find the real writer: a check that finds nothing anywhere proves nothing.
    assert len(status_writes(LIFECYCLE.read_text())) >= 10


@pytest.mark.parametrize(
    "snippet",
    [
        "Conversation.objects.filter(pk=1).update(status=Conversation.Status.CLOSED)",
        "conversation.status = Conversation.Status.ACTIVE",
        "abandonment.status = abandonment.Status.ACTIVE",
        "Abandonment.objects.create(status=Abandonment.Status.SKIPPED if x else Abandonment.Status.INITIATED)",
        "conversation.close_reason = 'whatever'",
        "qs.update(close_reason=Conversation.CloseReason.EXPIRED, closed_at=now)",
    ],
)
def test_a_status_write_elsewhere_would_be_caught(snippet):
    assert status_writes(snippet) == [1]


def test_reads_of_status_are_not_writes():
    source = (
        "Conversation.objects.filter(status=Conversation.Status.ACTIVE).count()\n"
        "Message.objects.filter(pk=1).update(status=Message.Status.SENT)\n"
    )
    assert status_writes(source) == []


def test_every_close_reason_written_by_the_lifecycle_is_a_close_reason():
    source = LIFECYCLE.read_text()
    used = {
        node.attr
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "CloseReason"
    }

    assert used == {
        "SUPERSEDED",
        "CONVERTED",
        "EXPIRED",
        "OPTED_OUT",
        "MANUAL",
        "RESOLVED",
        "ERASED",
        "NUMBER_CHANGED",
    }
    assert {getattr(Conversation.CloseReason, name) for name in used} <= set(Conversation.CloseReason)
