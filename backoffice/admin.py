"""The admin's front page: Sara's recovery dashboard above the usual list of models (SPEC §8)."""

from __future__ import annotations

from django.contrib import admin
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from backoffice import dashboard, selectors
from recovery.admin_handoff import wait_label

admin.site.site_header = _("Sara back-office")
admin.site.site_title = "Sara"
admin.site.index_title = _("Recovery dashboard")
# The model list beside every page costs a quarter of a laptop's width that the lists need;
# the breadcrumbs and the dashboard's index lead everywhere it did.
admin.site.enable_nav_sidebar = False

_plain_index = admin.site.index


def index_with_dashboard(request, extra_context=None):
    if not request.user.has_perm("recovery.view_abandonment"):
        # Revenue and conversions are the shop's business figures: a staff account given no
        # permission (yet) sees none of them.
        return _plain_index(request, extra_context=extra_context)
    figures = selectors.dashboard(now=timezone.now())
    context = {
        "dashboard": figures,
        "cards": dashboard.cards(figures),
        "funnel_chart": dashboard.funnel_chart(figures.days),
        "revenue_chart": dashboard.revenue_chart(figures.days),
        "failure_rows": dashboard.failure_rows(figures),
        "oldest_wait": wait_label(figures.oldest_wait_since, timezone.now()),
        **(extra_context or {}),
    }
    return _plain_index(request, extra_context=context)


# config/urls.py mounts Django's default site, and AdminSite has no hook for extra index
# context: wrapping its index keeps Django's own view (login, app list) and adds the figures.
admin.site.index = index_with_dashboard  # type: ignore[method-assign]  # on purpose, see above


_lookup_allowed = admin.ModelAdmin.lookup_allowed
# Lookups a changelist's query string may use but that only break it: a regex is compiled by
# the database (`?error_code__regex=(` is a DataError, a 500, on PostgreSQL) and lets anyone
# with view rights run arbitrary patterns. Refused, Django answers 400.
_REFUSED_LOOKUPS = ("regex", "iregex")


def lookup_allowed(self, lookup, value, request=None):
    if lookup.rsplit("__", 1)[-1] in _REFUSED_LOOKUPS:
        return False
    return _lookup_allowed(self, lookup, value, request)


admin.ModelAdmin.lookup_allowed = lookup_allowed  # type: ignore[method-assign]  # on purpose, see above
