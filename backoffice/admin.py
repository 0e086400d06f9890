"""The admin's front page: Sara's recovery dashboard above the usual list of models (SPEC §8)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpResponse
from django.utils import timezone

from backoffice import dashboard, selectors
from core import login_guard

admin.site.site_header = "Sara back-office"
admin.site.site_title = "Sara"
admin.site.index_title = "Recovery dashboard"

_plain_index = admin.site.index


def index_with_dashboard(request, extra_context=None):
    figures = selectors.dashboard(now=timezone.now())
    context = {
        "dashboard": figures,
        "cards": dashboard.cards(figures),
        "funnel_chart": dashboard.funnel_chart(figures.days),
        "revenue_chart": dashboard.revenue_chart(figures.days),
        "failure_rows": dashboard.failure_rows(figures),
        **(extra_context or {}),
    }
    return _plain_index(request, extra_context=context)


# config/urls.py mounts Django's default site, and AdminSite has no hook for extra index
# context: wrapping its index keeps Django's own view (login, app list) and adds the figures.
admin.site.index = index_with_dashboard


_plain_login = admin.site.login


def guarded_login(request, extra_context=None):
    """Django's admin login, refused with 429 while the address or the username is locked."""
    if request.method == "POST" and login_guard.is_locked(request, request.POST.get("username", "")):
        return HttpResponse(
            "Too many failed logins. Try again later.", status=429, content_type="text/plain; charset=utf-8"
        )
    return _plain_login(request, extra_context=extra_context)


admin.site.login = guarded_login
