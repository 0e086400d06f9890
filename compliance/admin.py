from django.contrib import admin

from compliance.models import OptOutKeyword


@admin.register(OptOutKeyword)
class OptOutKeywordAdmin(admin.ModelAdmin):
    list_display = ["keyword", "active", "updated_at"]
    list_filter = ["active"]
    search_fields = ["keyword"]
