"""Customers, products and abandoned carts."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from core.logging import mask_phone

CENT = Decimal("0.01")


class Customer(models.Model):
    phone = models.CharField(max_length=20, unique=True, help_text="E.164, e.g. +5548999327881")
    name = models.CharField(max_length=200, blank=True)
    opted_out = models.BooleanField(default=False)
    opted_out_at = models.DateTimeField(null=True, blank=True)
    opted_out_reason = models.CharField(max_length=50, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name or 'Customer'} ({mask_phone(self.phone)})"


class Product(models.Model):
    product_id = models.CharField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text="Context the AI uses to answer questions.")
    payment_link = models.URLField(max_length=500, blank=True)
    discount_link = models.URLField(max_length=500, blank=True)
    discount_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("90"))],
    )
    # The product's list price: supplies a cart's value where a platform sends none (SPEC §11).
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    faq = models.TextField(blank=True, help_text="Questions and answers about this product, for Sara.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(discount_percent__gte=0, discount_percent__lte=90),
                name="product_discount_percent_range",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.product_id})"

    @property
    def has_discount(self) -> bool:
        return bool(self.active and self.discount_link and self.discount_percent > 0)


class Abandonment(models.Model):
    class Status(models.TextChoices):
        INITIATED = "initiated"
        ACTIVE = "active"
        CONVERTED = "converted"
        DECLINED = "declined"
        EXPIRED = "expired"
        SKIPPED = "skipped"

    class ConversionLink(models.TextChoices):
        ORIGINAL = "original"
        DISCOUNTED = "discounted"

    external_id = models.CharField(max_length=100, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="abandonments")
    product = models.ForeignKey(
        Product, null=True, blank=True, on_delete=models.SET_NULL, related_name="abandonments"
    )
    external_product_id = models.CharField(max_length=100, blank=True)
    external_user_id = models.CharField(max_length=100, blank=True)
    value = models.DecimalField(max_digits=12, decimal_places=2)
    payment_link = models.URLField(max_length=500)
    status = models.CharField(max_length=20, choices=Status, default=Status.INITIATED)
    discount_offers = models.PositiveSmallIntegerField(default=0)
    payment_id = models.CharField(max_length=100, unique=True, null=True, blank=True)
    conversion_link = models.CharField(max_length=20, choices=ConversionLink, blank=True)
    converted_at = models.DateTimeField(null=True, blank=True)
    # What the customer paid, as the payment or the platform reports it.
    paid_amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    # Why a cart was not chased (status skipped): opted_out, unknown_product...
    skip_reason = models.CharField(max_length=50, blank=True)
    abandoned_at = models.DateTimeField(null=True, blank=True)
    # Every discount Sara offered this cart, as offered: {"percent", "value", "link", "at"}.
    quotes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status"], name="abandonment_status_idx")]
        constraints = [
            models.CheckConstraint(condition=models.Q(value__gt=0), name="abandonment_value_positive"),
        ]

    def __str__(self) -> str:
        return self.external_id

    def discount_available(self) -> bool:
        return bool(self.product and self.product.has_discount)

    def discounted_value(self) -> Decimal | None:
        """value × (1 − discount%/100), half-up to the cent; None when there is no discount."""
        if not self.discount_available():
            return None
        factor = 1 - self.product.discount_percent / Decimal(100)
        return (self.value * factor).quantize(CENT, rounding=ROUND_HALF_UP)


class SourceCheckout(models.Model):
    """A platform's cart as Sara follows it (SPEC §11): the one owner of its source state.

    A Shopify checkout waits here (status waiting, due_at) until the sweep opens it; every
    platform's cart keeps its key here so a paid order finds it, and a cart paid before Sara
    wrote is marked completed and never chased. Contact data is kept only while a row waits.
    """

    class Status(models.TextChoices):
        WAITING = "waiting"
        OPENED = "opened"
        COMPLETED = "completed"
        SKIPPED = "skipped"

    platform = models.CharField(max_length=20)
    checkout_id = models.CharField(max_length=200, help_text="The cart's id on its platform.")
    # A second key some platforms use for the same cart (Shopify's and Nuvemshop's token).
    token = models.CharField(max_length=200, blank=True, db_index=True)
    status = models.CharField(max_length=20, choices=Status, default=Status.WAITING)
    skip_reason = models.CharField(max_length=50, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    name = models.CharField(max_length=200, blank=True)
    product_id = models.CharField(max_length=100, blank=True)
    value = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    link = models.URLField(max_length=1000, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    abandonment = models.ForeignKey(
        Abandonment, null=True, blank=True, on_delete=models.SET_NULL, related_name="source_checkouts"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("source checkout")
        verbose_name_plural = _("sources")
        constraints = [
            models.UniqueConstraint(fields=["platform", "checkout_id"], name="sourcecheckout_unique_key"),
        ]
        indexes = [
            # The sweep's question, "which waits are over?", reads only the waiting rows.
            models.Index(fields=["due_at"], name="sourcecheckout_due", condition=models.Q(status="waiting")),
        ]

    def __str__(self) -> str:
        return f"{self.platform}:{self.checkout_id}"
