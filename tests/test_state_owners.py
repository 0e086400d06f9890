"""One owner per piece of state (SPEC §12): each field below is written by one module only.

The scan reads every module of the project (management commands included, migrations not)
and finds writes in every shape Django offers: an attribute assigned or incremented, a keyword
of `update`, `create`, `get_or_create`, `update_or_create` or of a model's constructor (which
is what `bulk_create` stores), the field list of `bulk_update`, an `F()` expression, and a
plain `UPDATE ... SET` on the table.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from tests import sql_statements

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


# --- Writes through the statements of the apps' sql.py modules -------------------------------
# A statement there names its table and columns through `_meta` (quoted identifiers), so the
# scan reads it as it runs: every module-level text, and what each statement builder returns
# for the arguments below. A tracked field it writes (UPDATE ... SET, INSERT INTO (columns))
# is written by every module that calls a function of that sql.py reaching the statement.
SQL_MODULES = sorted(str(path.relative_to(ROOT)) for app in APPS for path in (ROOT / app).glob("sql.py"))


def rendered_writes(text: str) -> set[tuple[str, str]]:
    """Tracked fields a statement's text writes, its identifiers quoted or not."""
    found = set()
    for model, table in TABLES.items():
        q = rf'"?{table}"?'
        targets = re.findall(rf"UPDATE\s+{q}\s+SET\s+(.*?)(?:\bWHERE\b|\bRETURNING\b|$)", text, re.I | re.S)
        for columns, values in re.findall(
            rf"INSERT\s+INTO\s+{q}\s*\((.*?)\)\s*VALUES\s*\(((?:%\(\w+\)s|[^()])*)\)", text, re.I | re.S
        ):
            # A column given a value; one filled with its default (core.sql names that parameter
            # default_<field>) is the row's start, as the ORM would have stored it.
            pairs = zip(columns.split(","), values.split(","), strict=False)
            targets.append(
                ", ".join(c for c, v in pairs if re.fullmatch(r"\s*%(\((?!default_)\w+\))?s\s*", v))
            )
        for target in targets:
            for owner_model, field in OWNERS:
                if owner_model == model and re.search(rf'(?:^|[\s,(])"?{field}"?\s*(?:=|,|$)', target):
                    found.add((model, field))
    return found


def _module_names(tree: ast.Module) -> dict[str, set[str]]:
    """Each module-level function or assignment, and the module-level names it uses."""
    uses: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            targets = [node.name]
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            nodes = node.targets if isinstance(node, ast.Assign) else [node.target]
            targets = [n.id for target in nodes for n in ast.walk(target) if isinstance(n, ast.Name)]
        else:
            continue
        used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        for target in targets:
            uses[target] = uses.get(target, set()) | used
    return uses


def sql_function_writes(path: str) -> dict[str, set[tuple[str, str]]]:
    """The public functions of a sql.py module and the tracked fields their statements write."""
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    builders = sql_statements.builders()
    uses = _module_names(ast.parse((ROOT / path).read_text()))
    direct: dict[str, set[tuple[str, str]]] = {}
    for name in uses:
        value = getattr(module, name, None)
        texts: list[str] = []
        if isinstance(value, str):
            texts = [value]
        elif name in builders:
            texts = builders[name](value)
        direct[name] = set().union(*(rendered_writes(text) for text in texts)) if texts else set()
    unbuilt = [
        name
        for name, value in vars(module).items()
        if name.endswith("_sql") and callable(value) and name not in builders and name in uses
    ]
    assert unbuilt == [], f"{path}: give the scan arguments for {unbuilt} (tests/sql_statements.py)"

    def reach(name: str, seen: set[str]) -> set[tuple[str, str]]:
        found = set(direct.get(name, set()))
        for used in uses.get(name, set()) - seen:
            if used in uses:
                found |= reach(used, seen | {used})
        return found

    return {
        name: writes
        for name in uses
        if not name.startswith("_")
        and callable(getattr(module, name, None))
        and (writes := reach(name, {name}))
    }


def _calls_of(source: str, module: str, function: str) -> list[int]:
    """Lines calling `function` of `module` (by the module's last name or an alias)."""
    tree = ast.parse(source)
    last = module.rsplit(".", 1)[-1]
    aliases = {last}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if f"{node.module}.{alias.name}" == module:
                    aliases.add(alias.asname or alias.name)
                if node.module == module and alias.name == function:
                    aliases.add(f"=={alias.asname or alias.name}")
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == function and isinstance(func.value, ast.Name):
            if func.value.id in aliases:
                lines.append(node.lineno)
        elif isinstance(func, ast.Name) and f"=={func.id}" in aliases:
            lines.append(node.lineno)
    return lines


def test_a_state_written_by_a_sql_statement_is_written_by_its_owner_only() -> None:
    strangers = []
    for path in SQL_MODULES:
        module = path.removesuffix(".py").replace("/", ".")
        for function, writes in sql_function_writes(path).items():
            for source in project_sources():
                name = str(source.relative_to(ROOT))
                if name in EXCEPTIONS or name == path:
                    continue
                for line in _calls_of(source.read_text(), module, function):
                    strangers += [
                        f"{name}:{line} {module}.{function} writes {model}.{field}"
                        for model, field in writes
                        if OWNERS[(model, field)] != name
                    ]
    assert strangers == []


def test_the_sql_statements_writing_a_state_are_found() -> None:
    # What messaging/sql.py writes of the message status is seen, through composed statements.
    found = sql_function_writes("messaging/sql.py")
    assert found["message_sent"] == {("Message", "status")}
    assert found["message_forward"] == {("Message", "status")}
    assert found["inbound_insert"] == {("Message", "status")}
    assert "send_claim" not in found  # its WHERE reads the status; it writes the claim only


def test_a_composed_write_is_read_quoted_or_not() -> None:
    text = 'UPDATE "messaging_message" SET "status" = %(s)s, "sent_at" = %(at)s WHERE "status" = %(p)s'
    assert rendered_writes(text) == {("Message", "status")}
    assert rendered_writes('INSERT INTO "messaging_message" ("wa_id", "status") VALUES (%s, %s)') == {
        ("Message", "status")
    }
    assert rendered_writes("INSERT INTO messaging_message (wa_id, status) VALUES (%s, '')") == set()
    assert (
        rendered_writes(
            'INSERT INTO "messaging_message" ("wa_id", "status") VALUES (%(wa_id)s, %(default_status)s)'
        )
        == set()
    )
    assert rendered_writes('UPDATE "messaging_message" SET "claimed_at" = %s WHERE "status" = %s') == set()
