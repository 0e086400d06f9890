"""The text of every statement an app's `sql.py` holds, for the scans that read them
(tests/test_state_owners.py, tests/test_architecture.py).

Most are module-level strings; a statement built per call (`*_sql` functions) is rendered here
with arguments that cover its shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType


def builders() -> dict[str, Callable[[Callable[..., str]], list[str]]]:
    """For each `*_sql` builder, by name: its texts, given the builder."""
    from messaging.statuses import FORWARD_FROM

    return {
        "forward_sql": lambda build: [
            build(status, priced=priced, allowed=len(FORWARD_FROM[status]))
            for status in FORWARD_FROM
            for priced in (False, True)
        ],
        "inbound_insert_sql": lambda build: [build(1), build(2)],
    }


def statement_texts(module: ModuleType) -> list[str]:
    """Every statement of a `sql.py` module: its strings and each builder's renderings."""
    texts = [value for value in vars(module).values() if isinstance(value, str)]
    for name, render in builders().items():
        if callable(build := getattr(module, name, None)):
            texts += render(build)
    return texts
