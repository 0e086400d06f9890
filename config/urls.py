"""Sara's URLs: webhooks (SPEC §4), the integrations API (§8), probes (§9) and the admin."""

from django.contrib import admin
from django.templatetags.static import static
from django.urls import path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView

from core import views as core_views
from core.metrics import metrics_view
from messaging import webhooks as messaging_webhooks
from recovery import api as conversations_api
from recovery import webhooks as recovery_webhooks
from recovery.money import views as money_views
from recovery.sources import views as source_views

urlpatterns = [
    path("webhook/abandonment", recovery_webhooks.abandonment_webhook, name="webhook-abandonment"),
    path("webhook/payment", recovery_webhooks.payment_webhook, name="webhook-payment"),
    path("webhook/sources/<slug:platform>", source_views.source_webhook, name="webhook-source"),
    path("webhook/messages", messaging_webhooks.meta_webhook, name="webhook-messages"),
    path(
        "conversations/<int:pk>", conversations_api.ConversationDetail.as_view(), name="conversation-detail"
    ),
    path(
        "conversations/<int:pk>/close",
        conversations_api.ConversationClose.as_view(),
        name="conversation-close",
    ),
    path(
        "conversations/<int:pk>/reply",
        conversations_api.ConversationReply.as_view(),
        name="conversation-reply",
    ),
    path(
        "conversations/<int:pk>/handback",
        conversations_api.ConversationHandback.as_view(),
        name="conversation-handback",
    ),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("health", core_views.health, name="health"),
    path("metrics", metrics_view, name="metrics"),
    path("ready", core_views.ready, name="ready"),
    # Before the admin's own URLs, which would answer anything under admin/ with its 404.
    path("admin/money/", money_views.money_page, name="money"),
    path("admin/money.csv", money_views.money_csv, name="money-csv"),
    path("admin/", admin.site.urls),
    # People who type the bare address land in the back-office; browsers asking for the
    # conventional icon path get the static one instead of a 404 on every page.
    path("", RedirectView.as_view(pattern_name="admin:index"), name="home"),
    path("favicon.ico", RedirectView.as_view(url=static("sara/favicon.svg"), permanent=True)),
]

handler404 = "core.views.not_found"
handler500 = "core.views.server_error"
