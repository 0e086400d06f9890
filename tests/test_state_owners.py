"""One owner per piece of state (SPEC §12): each field below is written by one module only.

The scan reads every module of the project (management commands included, migrations not)
and finds writes in every shape Django offers: an attribute assigned or incremented, a keyword
of `update`, `create`, `get_or_create`, `update_or_create` or of a model's constructor (which
is what `bulk_create` stores), the field list of `bulk_update`, an `F()` expression, and a
plain `UPDATE ... SET` on the table.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APPS = ["core", "sara", "recovery", "messaging", "compliance", "backoffice", "config"]
LIFECYCLE = "recovery/lifecycle.py"

# (model, field) -> the one module that writes it.
OWNERS: dict[tuple[str, str], str] = {
    ("Conversation", "status"): LIFECYCLE,
    ("Conversation", "close_reason"): LIFECYCLE,
    ("Conversation", "message_count"): LIFECYCLE,
    ("Conversation", "exchanges"): LIFECYCLE,
    ("Abandonment", "status"): LIFECYCLE,
    ("Abandonment", "paid_amount"): LIFECYCLE,
    ("Message", "status"): "messaging/statuses.py",
    ("WebhookEvent", "outcome"): "recovery/sources/services.py",
}
# Written elsewhere on purpose, each with its reason.
EXCEPTIONS: dict[str, str] = {
    # Fabricates a month of history (carts, payments, messages with their final statuses) in an
    # empty development database, for the money page; it never runs on real carts.
    "recovery/management/commands/sara_simulate_month.py": "development data",
}
TABLES = {
    "Conversation": "messaging_conversation",
    "Message": "messaging_message",
    "WebhookEvent": "messaging_webhookevent",
    "Abandonment": "recovery_abandonment",
}
WRITING_CALLS = {"update", "create", "get_or_create", "update_or_create"}
# Fields that only one tracked model has: any write of them is that model's.
ONLY_ON = {
    "close_reason": "Conversation",
    "message_count": "Conversation",
    "exchanges": "Conversation",
    "paid_amount": "Abandonment",
    "outcome": "WebhookEvent",
}
# What a variable holding an instance is called, for `x.status = ...` with a value the scan
# cannot place (a plain string, a variable).
INSTANCE_NAMES = {
    "conversation": "Conversation",
    "abandonment": "Abandonment",
    "cart": "Abandonment",
    "message": "Message",
    "reply": "Message",
    "received": "Message",
    "event": "WebhookEvent",
    "stored": "WebhookEvent",
}
MODELS = {model for model, _ in OWNERS}


def _names(node: ast.AST) -> list[str]:
    """`a.b.c` as ["c", "b", "a"]; a call in the chain is followed to its function."""
    names = []
    while True:
        if isinstance(node, ast.Attribute):
            names.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Name):
            names.append(node.id)
            return names
        else:
            return names


def _value_model(node: ast.AST) -> str | None:
    """The model a value names: `Message.Status.SENT`, `conversation.Status.ACTIVE`..."""
    if isinstance(node, ast.IfExp):
        return _value_model(node.body) or _value_model(node.orelse)
    names = _names(node)
    if "Status" in names or "CloseReason" in names:
        for name in names:
            for model in MODELS:
                if name.lower() == model.lower():
                    return model
    return None


def _model_of(field: str, *, root: list[str], value: ast.AST | None) -> str | None:
    if field in ONLY_ON:
        return ONLY_ON[field]
    if value is not None and (model := _value_model(value)):
        return model
    for name in root:
        if name in MODELS:
            return name
        if name in INSTANCE_NAMES:
            return INSTANCE_NAMES[name]
    return None


def _sql_writes(text: str) -> list[tuple[str, str]]:
    found = []
    for model, table in TABLES.items():
        for statement in re.findall(
            rf"UPDATE\s+{table}\s+SET\s+(.*?)(?:WHERE|RETURNING|$)", text, re.I | re.S
        ):
            for owner_model, field in OWNERS:
                if owner_model == model and re.search(rf"\b{field}\s*=", statement):
                    found.append((model, field))
    return found


def field_writes(source: str) -> list[tuple[int, str, str]]:
    """(line, model, field) of every write of a tracked field in this source."""
    writes: set[tuple[int, str, str]] = set()
    tracked = {field for _, field in OWNERS}

    def add(line: int, field: str, *, root: list[str], value: ast.AST | None) -> None:
        model = _model_of(field, root=root, value=value)
        if model is not None and (model, field) in OWNERS:
            writes.add((line, model, field))

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr in tracked:
                    add(node.lineno, target.attr, root=_names(target.value), value=node.value)
        elif isinstance(node, ast.Call):
            names = _names(node.func)
            if not names:
                continue
            constructor = names[0] in MODELS and len(names) == 1
            if constructor or names[0] in WRITING_CALLS:
                root = names if constructor else names[1:]
                for keyword in node.keywords:
                    if keyword.arg in tracked:
                        add(node.lineno, keyword.arg, root=root, value=keyword.value)
                    elif keyword.arg == "defaults" and isinstance(keyword.value, ast.Dict):
                        for key, value in zip(keyword.value.keys, keyword.value.values, strict=True):
                            if isinstance(key, ast.Constant) and key.value in tracked:
                                add(node.lineno, key.value, root=root, value=value)
            elif names[0] == "bulk_update":
                for arg in ast.walk(node):
                    if isinstance(arg, ast.Constant) and arg.value in tracked:
                        add(node.lineno, arg.value, root=names[1:], value=None)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            for model, field in _sql_writes(node.value):
                writes.add((node.lineno, model, field))
    return sorted(writes)


def project_sources() -> list[Path]:
    return [path for app in APPS for path in (ROOT / app).rglob("*.py") if "migrations" not in path.parts]


def test_each_piece_of_state_has_one_writing_module() -> None:
    strangers: dict[str, list[tuple[int, str, str]]] = {}
    for path in project_sources():
        name = str(path.relative_to(ROOT))
        if name in EXCEPTIONS:
            continue
        others = [w for w in field_writes(path.read_text()) if OWNERS[(w[1], w[2])] != name]
        if others:
            strangers[name] = others

    assert strangers == {}


@pytest.mark.parametrize("owner", sorted(set(OWNERS.values())))
def test_each_owner_is_seen_writing(owner: str) -> None:
    # A scan that finds nothing anywhere proves nothing: the owners' own writes are found.
    fields = {(model, field) for (model, field), module in OWNERS.items() if module == owner}
    found = {(model, field) for _, model, field in field_writes((ROOT / owner).read_text())}

    assert fields <= found


@pytest.mark.parametrize(
    ("snippet", "model", "field"),
    [
        ("conversation.status = Conversation.Status.ACTIVE", "Conversation", "status"),
        ("abandonment.status = abandonment.Status.ACTIVE", "Abandonment", "status"),
        (
            "Conversation.objects.filter(pk=1).update(status=Conversation.Status.CLOSED)",
            "Conversation",
            "status",
        ),
        (
            "qs.update(close_reason=Conversation.CloseReason.EXPIRED, closed_at=now)",
            "Conversation",
            "close_reason",
        ),
        ("conversation.close_reason = 'whatever'", "Conversation", "close_reason"),
        (
            "Abandonment.objects.create(status=Abandonment.Status.SKIPPED if x else 'initiated')",
            "Abandonment",
            "status",
        ),
        ("Message(conversation=c, status=Message.Status.SENT)", "Message", "status"),
        ("Message.objects.bulk_create([Message(status=s) for s in statuses])", "Message", "status"),
        ("Message.objects.filter(pk=1).update(status=status)", "Message", "status"),
        ("message.status = new_status", "Message", "status"),
        (
            "Conversation.objects.filter(pk=1).update(message_count=F('message_count') + 1)",
            "Conversation",
            "message_count",
        ),
        ("conversation.exchanges += 1", "Conversation", "exchanges"),
        ("Message.objects.bulk_update(rows, ['status', 'sent_at'])", "Message", "status"),
        ("abandonment.paid_amount = paid", "Abandonment", "paid_amount"),
        ("WebhookEvent.objects.filter(pk=1).update(outcome=o)", "WebhookEvent", "outcome"),
        ("WebhookEvent.objects.get_or_create(type=t, defaults={'outcome': o})", "WebhookEvent", "outcome"),
        (
            "SQL = \"UPDATE messaging_message SET status = 'sent', sent_at = %s WHERE id = %s\"",
            "Message",
            "status",
        ),
    ],
)
def test_a_write_in_any_shape_is_found(snippet: str, model: str, field: str) -> None:
    assert [(m, f) for _, m, f in field_writes(snippet)] == [(model, field)]


def test_reads_are_not_writes() -> None:
    source = (
        "Conversation.objects.filter(status=Conversation.Status.ACTIVE).count()\n"
        "Message.objects.filter(status=Message.Status.FAILED).exclude(status='read')\n"
        "if message.status == Message.Status.SENT: pass\n"
        "Template.objects.filter(pk=1).update(status=Template.Status.PAUSED)\n"
        "SourceCheckout.objects.filter(pk=1).update(status=SourceCheckout.Status.WAITING)\n"
    )
    assert field_writes(source) == []


# The lifecycle writes inside its callers' transactions (they hold the locks, in the one lock
# order), except these, which are called on their own (an opt-out, a close by staff) and open
# their own transaction (docs/architecture.md says so).
LIFECYCLE_TRANSACTIONS = {"optout_register", "conversation_close"}


def transaction_owners(source: str) -> set[str]:
    """The functions of a module that open a transaction (decorator or `with`)."""
    owners = set()
    for function in ast.parse(source).body:
        if not isinstance(function, ast.FunctionDef):
            continue
        for node in [*function.decorator_list, *ast.walk(function)]:
            if "atomic" in _names(node):
                owners.add(function.name)
                break
    return owners


def test_the_lifecycle_opens_transactions_only_where_the_docs_say() -> None:
    assert transaction_owners((ROOT / LIFECYCLE).read_text()) == LIFECYCLE_TRANSACTIONS


def test_a_transaction_opened_by_a_decorator_or_a_with_is_found() -> None:
    source = (
        "@transaction.atomic\ndef a(): pass\n"
        "def b():\n    with transaction.atomic():\n        pass\n"
        "def c(): pass\n"
    )
    assert transaction_owners(source) == {"a", "b"}
