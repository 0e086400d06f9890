"""The agent is tested on plain values: a Context in, an Interpretation and reply text out.

A test here that reaches for the database fails: what needs rows is the recovery's answer to a
customer (tests/recovery) or the transport (tests/messaging), not the agent.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

DATABASE_FIXTURES = {"db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback"}


@pytest.fixture(autouse=True)
def no_database(request: pytest.FixtureRequest, django_db_blocker) -> Iterator[None]:
    if request.node.get_closest_marker("django_db") or DATABASE_FIXTURES & set(request.fixturenames):
        pytest.fail(
            "tests/sara is for the agent on plain values; a test that needs rows goes to tests/recovery"
        )
    # Any query, even one made by a helper the test calls, raises instead of running.
    with django_db_blocker.block():
        yield
