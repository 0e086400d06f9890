from django.contrib import admin

from recovery.models import Abandonment, Customer, Product


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "phone", "opted_out", "opted_out_reason", "created_at"]
    list_filter = ["opted_out", "opted_out_reason"]
    search_fields = ["phone", "name"]
    readonly_fields = ["opted_out_at", "created_at", "updated_at"]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["product_id", "name", "discount_percent", "active", "updated_at"]
    list_filter = ["active"]
    search_fields = ["product_id", "name"]


@admin.register(Abandonment)
class AbandonmentAdmin(admin.ModelAdmin):
    list_display = ["external_id", "customer", "product", "value", "status", "discount_offers", "created_at"]
    list_filter = ["status", "conversion_link"]
    search_fields = ["external_id", "customer__phone", "payment_id"]
    list_select_related = ["customer", "product"]
    readonly_fields = ["external_id", "payment_id", "converted_at", "created_at", "updated_at"]
    raw_id_fields = ["customer", "product"]
