"""Statements of recovery/sql.py against the ORM query each replaces (SPEC §12); the money
report's statement has its own file (test_money_sql.py)."""

from __future__ import annotations

import pytest

from recovery import sql
from recovery.models import Shop

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_shop_first_is_the_orms_first_shop() -> None:
    Shop.objects.all().delete()
    assert sql.shop_first() is None
    Shop.objects.create(name="Loja B")
    Shop.objects.create(name="Loja C")
    found = sql.shop_first()
    expected = Shop.objects.order_by("id").first()
    assert found is not None and expected is not None
    assert (found.pk, found.name, found.about) == (expected.pk, expected.name, expected.about)
