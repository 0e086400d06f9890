"""Each statement of compliance/sql.py against the ORM query it replaces (SPEC §12)."""

from __future__ import annotations

import pytest

from compliance import sql
from compliance.models import OptOutKeyword

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_active_keywords_are_what_the_orm_lists() -> None:
    OptOutKeyword.objects.create(keyword="não quero mais", active=False)
    OptOutKeyword.objects.create(keyword="me tira", active=True)
    expected = OptOutKeyword.objects.filter(active=True).values_list("keyword", flat=True)
    assert sorted(sql.active_keywords()) == sorted(expected)
    assert "me tira" in sql.active_keywords()
    assert "não quero mais" not in sql.active_keywords()
