"""The money page in a real browser: from the admin home to the figures of a simulated month."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.admin.test_browser import browser, page, screenshot, sign_in, staff  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_support_opens_the_money_page_from_the_home_and_exports_what_it_shows(page, sign_in, settings):  # noqa: F811
    settings.DEBUG = True
    end = timezone.localdate() - timedelta(days=1)
    call_command("sara_simulate_month", "--carts", "600", "--end", end.isoformat(), stdout=io.StringIO())
    sign_in(staff("suporte", "support"))

    page.goto("/admin/")
    page.click("#money-link")
    page.wait_for_selector("#money-table")

    assert page.locator("#money-chart polyline").count() == 2
    assert "Receita incremental líquida" in page.locator("#money-cards").text_content()
    rows = page.locator("#money-table tbody tr")
    assert rows.count() == 1 + 1 + 2 + 30  # the range, a template, two steps, thirty days
    screenshot(page, "admin-money.png")

    page.fill("input[name=start]", (end - timedelta(days=6)).isoformat())
    page.fill("input[name=end]", end.isoformat())
    page.click("#money-range button[type=submit]")
    page.wait_for_selector("#money-table")
    assert page.locator("#money-table tbody tr").count() == 1 + 1 + 2 + 7
    shown = [
        [cell.strip() for cell in row.locator("th, td").all_text_contents()]
        for row in page.locator("#money-table tr").all()
    ]
    # Then a blank line and the sequence's table per step and variant (SPEC §15).
    shown += [[]] + [
        [cell.strip() for cell in row.locator("th, td").all_text_contents()]
        for row in page.locator("#money-sequence-table tr").all()
    ]

    with page.expect_download() as download:
        page.click("#money-csv")
    exported = download.value.path().read_text(encoding="utf-8-sig")
    assert list(csv.reader(io.StringIO(exported), delimiter=";")) == shown


@pytest.mark.parametrize("width", [1280, 390])
def test_the_money_page_fits_a_laptop_and_a_phone_without_scrolling_sideways(page, sign_in, settings, width):  # noqa: F811
    settings.DEBUG = True
    end = timezone.localdate() - timedelta(days=1)
    call_command("sara_simulate_month", "--carts", "600", "--end", end.isoformat(), stdout=io.StringIO())
    sign_in(staff("suporte", "support"))
    page.set_viewport_size({"width": width, "height": 900})

    page.goto("/admin/money/")
    page.wait_for_selector("#money-table")

    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], widths
    # The wide tables scroll inside their own box; the figures a person reads first are on screen.
    assert page.locator("#money-cards").is_visible()
    assert page.locator("#money-reconcile-table").is_visible()
    screenshot(page, f"money-{width}.png")
