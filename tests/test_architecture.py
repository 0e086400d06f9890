"""The picture of the code: no circle of imports between the project's modules.

Built with grimp (import-linter's own graph), which reads every import statement, those inside
functions included: a lazy import is still a tie between two modules.
"""

from __future__ import annotations

import grimp

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
