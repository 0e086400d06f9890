"""The picture of the code: no circle of imports between the project's modules; raw SQL only
in the apps' `sql.py` modules.

Built with grimp (import-linter's own graph), which reads every import statement, those inside
functions included: a lazy import is still a tie between two modules.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import grimp
import pytest

from tests import sql_statements

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "sara", "recovery", "messaging", "compliance", "backoffice", "config")


def import_circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The groups of modules that reach each other through imports (Tarjan's strongly
    connected components), each sorted; a module alone is no circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(start: str) -> None:
        # Iterative, so a deep chain of imports cannot exhaust Python's recursion limit.
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            module, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[module] = min(low[module], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
            if low[module] == index[module]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == module:
                        break
                if len(group) > 1:
                    circles.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return circles


def test_no_circle_of_imports_between_the_projects_modules() -> None:
    graph = grimp.build_graph(*PACKAGES, include_external_packages=False)

    assert import_circles(graph) == []


def test_a_lazy_import_that_closes_a_circle_is_found() -> None:
    graph = grimp.ImportGraph()
    for module in ("app.tasks", "app.services", "app.models"):
        graph.add_module(module)
    graph.add_import(importer="app.tasks", imported="app.services")
    graph.add_import(importer="app.services", imported="app.models")
    assert import_circles(graph) == []

    # What `from app import tasks` inside a service function records.
    graph.add_import(importer="app.services", imported="app.tasks")

    assert import_circles(graph) == [["app.services", "app.tasks"]]


def test_grimp_reads_imports_made_inside_functions() -> None:
    graph = grimp.build_graph("messaging", "core", include_external_packages=False)

    # messaging.apps imports its task module inside AppConfig.ready.
    assert graph.direct_import_exists(importer="messaging.apps", imported="messaging.tasks")


def test_the_errors_services_raise_are_domain_errors() -> None:
    import inspect

    from core.errors import DomainError
    from recovery import errors, handoff

    defined = [
        cls
        for module in (errors, handoff)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, Exception) and cls.__module__ == module.__name__
    ]

    assert defined
    assert [cls.__name__ for cls in defined if not issubclass(cls, DomainError)] == []


# --- Raw SQL only in `<app>/sql.py` ---------------------------------------------------------
SQL_WORDS = re.compile(r"\b(SELECT|INSERT\s+INTO|UPDATE|DELETE\s+FROM|WITH|SET\s+LOCAL)\b", re.I)
EXECUTING = {"execute", "executemany", "raw", "extra", "RawSQL"}


def raw_sql_uses(source: str) -> list[tuple[int, str]]:
    """(line, what) of each raw SQL use in a module: `connection.cursor()`, `connections[...]
    .cursor()`, a call of execute/executemany/raw/extra/RawSQL given a string with SQL words,
    and a `noqa: S608` (a string built into SQL)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name == "cursor" and isinstance(func, ast.Attribute):
            owner = func.value
            if (isinstance(owner, ast.Name) and owner.id == "connection") or isinstance(owner, ast.Subscript):
                found.append((node.lineno, "connection.cursor()"))
        if name in EXECUTING and any(SQL_WORDS.search(_text_of(arg)) for arg in node.args[:1]):
            found.append((node.lineno, f"{name}() of SQL text"))
    return found + _noqa_s608(source)


def _text_of(node: ast.AST) -> str:
    """The string constants inside a node, joined."""
    return " ".join(_strings(node))


def _noqa_s608(source: str) -> list[tuple[int, str]]:
    """Lines that silence ruff's "string built into SQL"."""
    return [
        (number, "noqa: S608")
        for number, line in enumerate(source.splitlines(), start=1)
        if "noqa: S608" in line
    ]


def _project_modules() -> list[Path]:
    return sorted(
        path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    )


def test_raw_sql_is_only_in_the_apps_sql_modules() -> None:
    outside = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in _project_modules()
        if path.name != "sql.py"
        for line, what in raw_sql_uses(path.read_text())
    ]
    assert outside == []


STATEMENT_WORDS = re.compile(SQL_WORDS.pattern)


def text_built_sql(source: str) -> list[tuple[int, str]]:
    """(line, how) of each statement built as text rather than composed with psycopg's `sql`:
    an f-string, a `+`, a `%` or a `str.format` on text with SQL words, and a `noqa: S608`."""

    def words(node: ast.AST) -> bool:
        # Upper case only: the statements are written so, the error messages beside them are not.
        return bool(STATEMENT_WORDS.search(_text_of(node)))

    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.JoinedStr) and words(node):
            found.append((node.lineno, "f-string"))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod) and words(node):
            found.append((node.lineno, "text joined with + or %"))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"
            and isinstance(node.func.value, ast.Constant)
            and words(node.func.value)
        ):
            found.append((node.lineno, "str.format"))
    return found + _noqa_s608(source)


def test_the_sql_modules_compose_every_statement() -> None:
    """Inside `sql.py` too (core's included), statement text is only ever psycopg's `sql.SQL`
    composed with identifiers and placeholders, never text formatted by hand."""
    built = [
        f"{path.relative_to(ROOT)}:{line}: {how}"
        for path in _project_modules()
        if path.name == "sql.py"
        for line, how in text_built_sql(path.read_text())
    ]
    assert built == []


SQL_SCANS = {"raw SQL": raw_sql_uses, "text-built SQL": text_built_sql}


@pytest.mark.parametrize(
    ("scan", "source"),
    [
        ("raw SQL", "from django.db import connection\nwith connection.cursor() as c:\n    pass\n"),
        ("raw SQL", "from django.db import connections\nconnections['default'].cursor()\n"),
        ("raw SQL", "cursor.execute('SELECT 1 FROM messaging_message WHERE id = %s', [1])\n"),
        ("raw SQL", "cursor.execute(f'UPDATE {table} SET status = %s', ['sent'])\n"),
        ("raw SQL", "Message.objects.raw('select * from messaging_message')\n"),
        ("raw SQL", "text = f'DELETE FROM {t}'  # noqa: S608\n"),
        ("text-built SQL", "sql = f'UPDATE {table} SET {column} = %s'\n"),
        ("text-built SQL", "sql = 'INSERT INTO ' + table + ' VALUES (%s)'\n"),
        ("text-built SQL", "sql = 'SELECT * FROM %s' % table\n"),
        ("text-built SQL", "sql = 'DELETE FROM {}'.format(table)\n"),
        ("text-built SQL", "sql = build(table)  # noqa: S608\n"),
    ],
)
def test_each_sql_scan_finds_each_shape_it_looks_for(scan: str, source: str) -> None:
    assert SQL_SCANS[scan](source) != []


@pytest.mark.parametrize(
    ("scan", "source"),
    [
        ("raw SQL", "Message.objects.filter(status='sent').update(status='read')\nrun.execute(plan)\n"),
        (
            "text-built SQL",
            "s = pg_sql.SQL('SELECT {c} FROM {t} WHERE {id} = %(id)s').format(c=c, t=t, id=i)\n",
        ),
    ],
)
def test_each_sql_scan_leaves_clean_code_alone(scan: str, source: str) -> None:
    assert SQL_SCANS[scan](source) == []


# --- Messaging knows nothing of carts: no read through a message's conversation ------------
# A message keeps its conversation's id. Following it (the row, a field of it, a lookup across
# it) reads recovery's data without an import, which the import contracts cannot see.
WALKING_CALLS = {"select_related", "prefetch_related", "Prefetch", "getattr"}
ADMIN_OPTIONS = {
    "list_display",
    "list_select_related",
    "list_filter",
    "search_fields",
    "fields",
    "fieldsets",
    "readonly_fields",
    "autocomplete_fields",
    "raw_id_fields",
    "ordering",
}


def _strings(node: ast.AST) -> list[str]:
    return [
        part.value
        for part in ast.walk(node)
        if isinstance(part, ast.Constant) and isinstance(part.value, str)
    ]


def conversation_walks(source: str) -> list[tuple[int, str]]:
    """(line, what) of each read through a message's conversation: a lookup with
    `conversation__` (a string or a keyword), the attribute `.conversation` read (the row, or a
    field of it), `select_related`, `prefetch_related`, `Prefetch` or `getattr` given
    "conversation", and an admin option naming the conversation field (its list shows the row)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "conversation__" in node.value:
            found.append((node.lineno, f"lookup {node.value!r}"))
        elif isinstance(node, ast.keyword) and node.arg and "conversation__" in node.arg:
            found.append((node.lineno, f"lookup {node.arg}="))
        elif (
            isinstance(node, ast.Attribute) and node.attr == "conversation" and isinstance(node.ctx, ast.Load)
        ):
            found.append((node.lineno, ".conversation read"))
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in WALKING_CALLS and "conversation" in _strings(ast.Tuple(elts=node.args)):
                found.append((node.lineno, f'{name}("conversation")'))
        elif isinstance(node, ast.Assign):
            names = {target.id for target in node.targets if isinstance(target, ast.Name)}
            if names & ADMIN_OPTIONS and "conversation" in _strings(node.value):
                found.append((node.lineno, f"{', '.join(sorted(names))} names the conversation"))
    return sorted(found)


def test_messaging_reads_nothing_through_a_messages_conversation() -> None:
    walks = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in sorted((ROOT / "messaging").rglob("*.py"))
        if "migrations" not in path.parts
        for line, what in conversation_walks(path.read_text())
    ]
    assert walks == []


@pytest.mark.parametrize(
    "source",
    [
        "Message.objects.filter(conversation__customer__phone=phone)\n",
        "Message.objects.values('conversation__status')\n",
        "search_fields = ['wa_id', 'conversation__customer__phone']\n",
        "when = message.conversation.last_user_message_at\n",
        "conversation = message.conversation\n",
        "Message.objects.update(conversation=answered_by.conversation)\n",
        "Message.objects.select_related('conversation')\n",
        "Message.objects.prefetch_related(Prefetch('conversation'))\n",
        "row = getattr(message, 'conversation')\n",
        "list_display = ['id', 'conversation', 'status']\n",
        "fieldsets = [(None, {'fields': ['conversation', 'text']})]\n",
    ],
)
def test_the_conversation_scan_finds_each_walk(source: str) -> None:
    assert conversation_walks(source) != []


def test_the_conversation_scan_leaves_the_conversations_id_alone() -> None:
    source = (
        "conversation = models.ForeignKey('recovery.Conversation', on_delete=models.PROTECT)\n"
        "indexes = [models.Index(fields=['conversation', 'created_at'], name='message_conversation_created')]\n"
        "Message.objects.filter(conversation_id=7).update(conversation_id=answered_by.conversation_id)\n"
        "column = core_sql.column(Message, 'conversation')\n"
        "first_contact_settled(conversation_id=message.conversation_id, sent=True, now=now)\n"
    )
    assert conversation_walks(source) == []


# --- No app writes another app's tables with raw SQL (SPEC §12) ------------------------------
WRITTEN_TABLE = re.compile(r'\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)"?')


def tables_written(text: str, tables: dict[str, str]) -> set[str]:
    """The apps' tables a statement's text inserts into, updates or deletes from."""
    return {table for table in WRITTEN_TABLE.findall(text) if table in tables}


@pytest.mark.parametrize(("app", "writes"), [("recovery", True), ("messaging", True), ("compliance", False)])
def test_an_apps_plain_sql_writes_only_its_own_tables(app: str, writes: bool) -> None:
    from django.apps import apps

    tables = {model._meta.db_table: model._meta.app_label for model in apps.get_models()}
    texts = sql_statements.statement_texts(importlib.import_module(f"{app}.sql"))
    written = set().union(*(tables_written(text, tables) for text in texts))
    assert bool(written) == writes, f"{app}/sql.py: the scan lost its statements"
    assert {table: tables[table] for table in written if tables[table] != app} == {}


def test_the_table_scan_sees_a_write_into_another_apps_table() -> None:
    tables = {"messaging_message": "messaging", "recovery_customer": "recovery"}
    text = 'UPDATE "messaging_message" SET "status" = %(s)s WHERE "id" IN (SELECT 1 FROM recovery_customer)'
    assert tables_written(text, tables) == {"messaging_message"}
    assert tables_written('SELECT 1 FROM "recovery_customer" FOR NO KEY UPDATE OF c', tables) == set()
