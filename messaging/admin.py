from django.contrib import admin

from messaging.models import Conversation, Message, StatusUpdate, WebhookEvent


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    can_delete = False
    fields = [
        "created_at",
        "direction",
        "kind",
        "purpose",
        "text",
        "status",
        "intent",
        "sentiment",
        "error_code",
    ]
    readonly_fields = fields
    ordering = ["created_at", "id"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["id", "customer", "status", "close_reason", "needs_human", "exchanges", "last_message_at"]
    list_filter = ["status", "needs_human", "followup_sent"]
    search_fields = ["customer__phone", "abandonment__external_id"]
    list_select_related = ["customer"]
    readonly_fields = ["abandonment", "customer", "message_count", "exchanges", "last_message_at",
                       "last_user_message_at", "followup_sent", "closed_at", "created_at", "updated_at"]  # fmt: skip
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "conversation",
        "direction",
        "kind",
        "purpose",
        "status",
        "error_code",
        "attempts",
        "created_at",
    ]
    list_filter = ["direction", "status", "kind", "purpose", "error_code"]
    search_fields = ["whatsapp_message_id", "wa_id"]
    list_select_related = ["conversation"]
    readonly_fields = [
        "whatsapp_message_id",
        "metadata",
        "created_at",
        "sent_at",
        "delivered_at",
        "read_at",
        "failed_at",
    ]
    raw_id_fields = ["conversation"]


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ["id", "type", "external_id", "processed", "error", "created_at"]
    list_filter = ["type", "processed"]
    search_fields = ["external_id", "reference"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(StatusUpdate)
class StatusUpdateAdmin(admin.ModelAdmin):
    list_display = ["whatsapp_message_id", "status", "timestamp", "created_at"]
    search_fields = ["whatsapp_message_id"]
