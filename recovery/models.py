"""Customers, products and abandoned carts."""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from core.forms import format_decimal
from core.logging import mask_phone
from recovery.discount_links import stated_percent
from recovery.faq import EXAMPLE as FAQ_EXAMPLE
from recovery.faq import faq_first_bad_line

CENT = Decimal("0.01")


class Customer(models.Model):
    # Null for a person known only by the business-scoped user id Meta sends in place of the
    # phone for users with a username (an opt-out from such a person must still be kept).
    phone = models.CharField(
        max_length=20,
        unique=True,
        null=True,
        blank=True,
        help_text=_("E.164, e.g. +5548999327881"),
        verbose_name=_("phone"),
    )
    # Meta's business-scoped user id (BSUID, e.g. BR.1502576394655843): a message is matched by
    # it when it carries no phone. Up to 128 characters after the country prefix.
    whatsapp_user_id = models.CharField(
        max_length=150, unique=True, null=True, blank=True, verbose_name=_("WhatsApp user id (BSUID)")
    )
    whatsapp_username = models.CharField(
        max_length=100, blank=True, default="", db_default="", verbose_name=_("WhatsApp username")
    )
    name = models.CharField(max_length=200, blank=True, verbose_name=_("name"))
    opted_out = models.BooleanField(default=False, verbose_name=_("opted out"))
    opted_out_at = models.DateTimeField(null=True, blank=True, verbose_name=_("opted out at"))
    opted_out_reason = models.CharField(max_length=50, blank=True, verbose_name=_("opt-out reason"))
    # What support typed when opting a person out by hand (the reason above is the channel).
    # db_default: the webhook's plain INSERT of a new customer names only the columns it knows.
    opt_out_note = models.TextField(blank=True, db_default="", verbose_name=_("opt-out note"))
    # An erased person keeps this row (phone → keyed digest, name gone) for the figures and
    # the opt-out; when and why it was erased answer "why can't I find this number?".
    erased_at = models.DateTimeField(null=True, blank=True, verbose_name=_("personal data erased at"))
    erasure_reason = models.TextField(blank=True, db_default="", verbose_name=_("erasure reason"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("customer")
        verbose_name_plural = _("customers")

    def __str__(self) -> str:
        if (self.phone or "").startswith("erased:"):
            return str(_("Erased customer #%(id)s") % {"id": self.pk})
        if not self.phone:
            return f"{self.name or _('Customer')} (@{self.whatsapp_username or self.whatsapp_user_id})"
        return f"{self.name or _('Customer')} ({mask_phone(self.phone)})"


class Product(models.Model):
    product_id = models.CharField(max_length=100, unique=True, verbose_name=_("product id"))
    name = models.CharField(max_length=200, verbose_name=_("name"))
    description = models.TextField(
        blank=True, help_text=_("Context the AI uses to answer questions."), verbose_name=_("description")
    )
    payment_link = models.URLField(max_length=500, blank=True, verbose_name=_("payment link"))
    discount_link = models.URLField(max_length=500, blank=True, verbose_name=_("discount link"))
    discount_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("90"))],
        verbose_name=_("discount percent"),
    )
    # The product's list price: supplies a cart's value where a platform sends none (SPEC §11).
    price = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, verbose_name=_("price")
    )
    faq = models.TextField(
        blank=True, help_text=_("Questions and answers about this product, for Sara."), verbose_name=_("FAQ")
    )
    active = models.BooleanField(default=True, verbose_name=pgettext_lazy("masculine", "active"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        ordering = ["name"]
        verbose_name = _("product")
        verbose_name_plural = _("products")
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

    def clean(self) -> None:
        """Refuse what Sara would misuse: a link giving another percent than the one Sara quotes
        (it would promise 15 % and send a 10 % coupon), and an FAQ it cannot read."""
        errors: dict[str, str] = {}
        stated = stated_percent(self.discount_link) if self.discount_link else None
        if stated is not None and self.discount_percent and stated.percent != self.discount_percent:
            errors["discount_percent"] = _(
                "The percent is %(percent)s %% but the discount link gives %(link)s %% (%(where)s): "
                "Sara would promise one and charge the other. Make them agree."
            ) % {
                "percent": format_decimal(self.discount_percent),
                "link": format_decimal(stated.percent),
                "where": stated.where,
            }
        bad_line = faq_first_bad_line(self.faq or "")
        if bad_line is not None:
            errors["faq"] = _(
                "Sara reads the FAQ only as questions starting with “P:”, each followed by its answer "
                "starting with “R:”; this line does not follow that form: “%(line)s”. For example: %(example)s"
            ) % {"line": bad_line[:80], "example": FAQ_EXAMPLE}
        if errors:
            raise ValidationError(errors)


class Abandonment(models.Model):
    class Status(models.TextChoices):
        INITIATED = "initiated", _("Initiated")
        ACTIVE = "active", _("In conversation")
        CONVERTED = "converted", _("Recovered")
        DECLINED = "declined", _("Declined")
        EXPIRED = "expired", _("Expired")
        SKIPPED = "skipped", _("Skipped")
        # Drawn into the holdout group: never contacted, its payment still recorded (SPEC §13).
        HELD_OUT = "held_out", _("Held out")

    class ConversionLink(models.TextChoices):
        ORIGINAL = "original", _("Original link")
        DISCOUNTED = "discounted", _("Discount link")

    external_id = models.CharField(max_length=100, unique=True, verbose_name=_("abandonment id"))
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="abandonments", verbose_name=_("customer")
    )
    product = models.ForeignKey(
        Product,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="abandonments",
        verbose_name=_("product"),
    )
    external_product_id = models.CharField(
        max_length=100, blank=True, verbose_name=_("product id in the payload")
    )
    external_user_id = models.CharField(max_length=100, blank=True, verbose_name=_("user id in the payload"))
    value = models.DecimalField(max_digits=12, decimal_places=2, verbose_name=_("value"))
    payment_link = models.URLField(max_length=500, verbose_name=_("payment link"))
    status = models.CharField(
        max_length=20, choices=Status, default=Status.INITIATED, verbose_name=_("status")
    )
    discount_offers = models.PositiveSmallIntegerField(default=0, verbose_name=_("discount offers"))
    payment_id = models.CharField(
        max_length=100, unique=True, null=True, blank=True, verbose_name=_("payment id")
    )
    conversion_link = models.CharField(
        max_length=20, choices=ConversionLink, blank=True, verbose_name=_("link paid")
    )
    converted_at = models.DateTimeField(null=True, blank=True, verbose_name=_("converted at"))
    # What the customer paid, as the payment or the platform reports it.
    paid_amount = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, verbose_name=_("amount paid")
    )
    # Why a cart was not chased (status skipped): opted_out, unknown_product...
    skip_reason = models.CharField(max_length=50, blank=True, verbose_name=_("skip reason"))
    abandoned_at = models.DateTimeField(null=True, blank=True, verbose_name=_("abandoned at"))
    # Every discount Sara offered this cart, as offered: {"percent", "value", "link", "at"}.
    quotes = models.JSONField(default=list, blank=True, verbose_name=_("discount quotes"))
    # The cart's own holdout draw: the share in force when it was drawn (null: never drawn, e.g.
    # an opted-out customer's cart) and whether it fell in the group Sara leaves alone. Kept on
    # the cart so a later change of SARA_HOLDOUT_PERCENT leaves past comparisons intact. A
    # held-out cart keeps status held_out when it is paid; converted_at and paid_amount say so.
    holdout_percent = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True, verbose_name=_("holdout share (%)")
    )
    held_out = models.BooleanField(default=False, db_default=False, verbose_name=_("held out"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("abandoned cart")
        verbose_name_plural = _("abandoned carts")
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
        product = self.product
        if product is None or not product.has_discount:
            return None
        factor = 1 - product.discount_percent / Decimal(100)
        return (self.value * factor).quantize(CENT, rounding=ROUND_HALF_UP)


# Safe until the shop writes its own: nothing here promises a price, a deadline or a discount
# the shop never made (a precise offer binds the shop, CDC arts. 30 and 35).
SHOP_DEFAULTS = {
    "name": "Nossa loja",
    "about": "Loja online brasileira que vende para todo o Brasil.",
    "shipping": (
        "Entregamos em todo o Brasil. O valor e o prazo do frete aparecem no checkout assim que "
        "você informa o CEP, antes de pagar."
    ),
    "payment_methods": (
        "PIX (aprovação na hora), boleto bancário (compensa em até 3 dias úteis) e cartão de crédito."
    ),
    "installments": (
        "Parcelamento no cartão de crédito: as parcelas disponíveis aparecem no checkout, antes de pagar."
    ),
    "returns": (
        "Você pode desistir da compra em até 7 dias após receber o pedido (Código de Defesa do "
        "Consumidor, art. 49). Trocas e devoluções pelo nosso atendimento."
    ),
    "support_hours": "Segunda a sexta, das 9h às 18h, exceto feriados.",
}


class Conversation(models.Model):
    class Status(models.TextChoices):
        AWAITING_RESPONSE = "awaiting_response", _("Awaiting reply")
        ACTIVE = "active", _("Active")
        CLOSED = "closed", _("Closed")
        ERROR = "error", _("Error")

    OPEN_STATUSES = (Status.AWAITING_RESPONSE, Status.ACTIVE, Status.ERROR)

    class CloseReason(models.TextChoices):
        CONVERTED = "converted", _("Paid")
        OPTED_OUT = "opted_out", _("Opted out")
        EXPIRED = "expired", _("Expired")
        SUPERSEDED = "superseded", _("Replaced by a newer cart")
        MANUAL = "manual", _("Closed by hand")
        # A person finished the conversation from the back-office.
        RESOLVED = "resolved", _("Resolved by a person")
        ERASED = "erased", _("Personal data erased")  # the customer's data was erased (LGPD)
        # The customer moved to a WhatsApp number another customer record holds.
        NUMBER_CHANGED = "number_changed", _("Customer changed number")

    class HandoffReason(models.TextChoices):
        """Why a conversation waits for a person (SPEC §8)."""

        EXCHANGE_LIMIT = "exchange_limit", _("Exchange limit reached")
        ASKED_FOR_PERSON = "human", _("Asked for a person")
        PAYMENT_MISMATCH = "payment_mismatch", _("Payment mismatch")
        MANUAL = "manual", _("Flagged by hand")
        # The customer wrote after a person resolved the conversation: it reopens for a person.
        CUSTOMER_WROTE_AGAIN = "customer_wrote", _("Customer wrote again")

    abandonment = models.OneToOneField(
        Abandonment, on_delete=models.PROTECT, related_name="conversation", verbose_name=_("cart")
    )
    customer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        related_name="conversations",
        verbose_name=_("customer"),
    )
    status = models.CharField(
        max_length=20, choices=Status, default=Status.AWAITING_RESPONSE, verbose_name=_("status")
    )
    close_reason = models.CharField(max_length=200, blank=True, verbose_name=_("close reason"))
    message_count = models.PositiveIntegerField(default=0, verbose_name=_("messages"))
    exchanges = models.PositiveSmallIntegerField(default=0, verbose_name=_("exchanges"))
    needs_human = models.BooleanField(
        default=False,
        help_text=_("Waiting for a person; Sara stays silent."),
        verbose_name=_("waiting for a person"),
    )
    handoff_reason = models.CharField(
        max_length=20, choices=HandoffReason, blank=True, verbose_name=_("hand-off reason")
    )
    # When the conversation started waiting for a person: the inbox orders by this wait.
    handoff_at = models.DateTimeField(null=True, blank=True, verbose_name=_("waiting since"))
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_conversations",
        verbose_name=_("assigned to"),
    )
    assigned_at = models.DateTimeField(null=True, blank=True, verbose_name=_("assigned at"))
    last_message_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last message at"))
    last_user_message_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("customer last wrote at")
    )
    followup_sent = models.BooleanField(default=False, verbose_name=_("follow-up sent"))
    # The recovery sequence (SPEC §15): the order of the last step queued, 0 before the first.
    # A database default too: the cart path inserts conversations with plain SQL elsewhere.
    sequence_step = models.PositiveSmallIntegerField(
        default=0, db_default=0, verbose_name=_("sequence step sent")
    )
    closed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("closed at"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        # The table kept its name when the model moved here from messaging.
        db_table = "messaging_conversation"
        ordering = ["-created_at"]
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        # The integrations API (SPEC §8, §9): support and ops have it through their groups.
        permissions = [("use_api", _("Can use the conversations API"))]
        indexes = [
            models.Index(fields=["customer", "status"], name="conversation_customer_status"),
            # Behind sweep_windows: only conversations still open are ever due.
            models.Index(
                fields=["status", "created_at"],
                name="conversation_open_idx",
                condition=models.Q(status__in=["awaiting_response", "active", "error"]),
            ),
        ]
        constraints = [
            # One open conversation per customer: a new abandonment supersedes the old one.
            models.UniqueConstraint(
                fields=["customer"],
                condition=models.Q(status__in=["awaiting_response", "active", "error"]),
                name="conversation_one_open_per_customer",
            )
        ]

    def __str__(self) -> str:
        return str(
            _("Conversation %(id)s (%(status)s)")
            % {"id": self.pk, "status": self.get_status_display().lower()}
        )

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    @property
    def resolved_by_staff(self) -> bool:
        """Closed by a person ("Resolver", or with the reason they typed), not by Sara's own
        course (paid, expired, opted out, replaced, erased, number changed)."""
        if self.is_open:
            return False
        reason = self.close_reason
        return reason in (self.CloseReason.RESOLVED, self.CloseReason.MANUAL) or (
            bool(reason) and reason not in self.CloseReason.values
        )

    @property
    def close_reason_label(self) -> str:
        """The close reason as people read it: a known code translated, a typed reason as typed."""
        code = self.close_reason
        if not code:
            return "—"
        if code in self.CloseReason.values:
            return str(self.CloseReason(code).label)
        return code


class Shop(models.Model):
    """The shop's own words, the only source of what Sara may tell a customer (SPEC §10).

    One row, made by a migration with safe defaults and edited in the admin.
    """

    name = models.CharField(_("name"), max_length=200, default=SHOP_DEFAULTS["name"])
    about = models.TextField(_("about the shop"), blank=True, default=SHOP_DEFAULTS["about"])
    shipping = models.TextField(
        _("shipping"),
        blank=True,
        default=SHOP_DEFAULTS["shipping"],
        help_text=_("Prices, regions and delivery times, written as the customer should read them."),
    )
    payment_methods = models.TextField(
        _("payment methods"),
        blank=True,
        default=SHOP_DEFAULTS["payment_methods"],
        help_text=_("PIX, boleto, card."),
    )
    installments = models.TextField(_("installments"), blank=True, default=SHOP_DEFAULTS["installments"])
    returns = models.TextField(_("exchanges and returns"), blank=True, default=SHOP_DEFAULTS["returns"])
    support_hours = models.CharField(
        _("support hours"), max_length=300, blank=True, default=SHOP_DEFAULTS["support_hours"]
    )
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("shop")
        verbose_name_plural = _("shop")

    def __str__(self) -> str:
        return self.name


class SourceCheckout(models.Model):
    """A platform's cart as Sara follows it (SPEC §11): the one owner of its source state.

    A Shopify checkout waits here (status waiting, due_at) until the sweep opens it; every
    platform's cart keeps its key here so a paid order finds it, and a cart paid before Sara
    wrote is marked completed and never chased. Contact data is kept only while a row waits.
    """

    class Status(models.TextChoices):
        WAITING = "waiting", _("Waiting to be contacted")
        OPENED = "opened", _("Opened")
        COMPLETED = "completed", _("Paid before contact")
        SKIPPED = "skipped", _("Skipped")

    platform = models.CharField(max_length=20, verbose_name=_("platform"))
    checkout_id = models.CharField(
        max_length=200, help_text=_("The cart's id on its platform."), verbose_name=_("cart id")
    )
    # A second key some platforms use for the same cart (Shopify's and Nuvemshop's token).
    token = models.CharField(max_length=200, blank=True, db_index=True, verbose_name=_("token"))
    status = models.CharField(max_length=20, choices=Status, default=Status.WAITING, verbose_name=_("status"))
    skip_reason = models.CharField(max_length=50, blank=True, verbose_name=_("skip reason"))
    phone = models.CharField(max_length=40, blank=True, verbose_name=_("phone"))
    name = models.CharField(max_length=200, blank=True, verbose_name=_("name"))
    product_id = models.CharField(max_length=100, blank=True, verbose_name=_("product id"))
    value = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, verbose_name=_("value")
    )
    link = models.URLField(max_length=1000, blank=True, verbose_name=_("link"))
    due_at = models.DateTimeField(null=True, blank=True, verbose_name=_("contact due at"))
    # When the platform last changed the cart: webhooks come in any order, the newest state wins.
    source_updated_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("changed on the platform at")
    )
    # A paid order for this cart is still being confirmed with the platform: nobody chases it.
    payment_pending = models.BooleanField(default=False, verbose_name=_("payment being confirmed"))
    abandonment = models.ForeignKey(
        Abandonment,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="source_checkouts",
        verbose_name=_("abandonment"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("platform cart")
        verbose_name_plural = _("platform carts")
        constraints = [
            models.UniqueConstraint(fields=["platform", "checkout_id"], name="sourcecheckout_unique_key"),
        ]
        indexes = [
            # The sweep's question, "which waits are over?", reads only the waiting rows.
            models.Index(fields=["due_at"], name="sourcecheckout_due", condition=models.Q(status="waiting")),
        ]

    def __str__(self) -> str:
        return str(
            _("%(platform)s cart %(id)s") % {"platform": self.platform.title(), "id": self.checkout_id}
        )


class SequenceStep(models.Model):
    """One step of the recovery sequence (SPEC §15), edited in the admin.

    The first step waits its delay after the cart, each later one after the step before it was
    sent. The seeded steps leave the delay and the templates empty: they follow the settings
    (FOLLOWUP_AFTER_HOURS, WHATSAPP_TEMPLATE_NAME, WHATSAPP_FOLLOWUP_TEMPLATE_NAME), so an
    upgrade changes nothing for a running shop until someone edits them here.
    """

    order = models.PositiveSmallIntegerField(
        unique=True, validators=[MinValueValidator(1)], verbose_name=_("order")
    )
    delay_hours = models.DecimalField(
        max_digits=6,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("720"))],
        help_text=_(
            "Hours after the cart (first step) or after the previous step was sent. Empty: "
            "at once for the first step, FOLLOWUP_AFTER_HOURS for the others."
        ),
        verbose_name=_("delay (hours)"),
    )
    active = models.BooleanField(default=True, verbose_name=pgettext_lazy("masculine", "active"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        ordering = ["order"]
        verbose_name = _("sequence step")
        verbose_name_plural = _("sequence steps")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(delay_hours__isnull=True) | models.Q(delay_hours__gte=0),
                name="sequencestep_delay_not_negative",
            )
        ]

    def __str__(self) -> str:
        return str(_("Step %(order)s") % {"order": self.order})

    def delay(self, *, first: bool) -> timedelta:
        """Its wait; without one, at once for the first step and FOLLOWUP_AFTER_HOURS after."""
        if self.delay_hours is not None:
            return timedelta(hours=float(self.delay_hours))
        return timedelta(0) if first else timedelta(hours=settings.FOLLOWUP_AFTER_HOURS)

    def clean(self) -> None:
        """A step due once the conversation expired would never go: the admin refuses it (SPEC §15).

        Counted from the cart: a conversation nobody answered expires SARA_EXPIRE_AFTER_HOURS
        after it opened, and any answer stops the sequence anyway. Saving this step may push a
        later one past it too.
        """
        if not self.active or self.order is None:
            return
        late = self._steps_after_expiry()
        if not late:
            return
        order, elapsed = late[0]
        raise ValidationError(
            {
                "delay_hours": _(
                    "Step %(order)s would go %(hours)s h after the cart, when the conversation has "
                    "already expired (SARA_EXPIRE_AFTER_HOURS = %(expire)s h): it would never be "
                    "sent. Shorten the delays."
                )
                % {
                    "order": order,
                    "hours": f"{elapsed.total_seconds() / 3600:g}".replace(".", ","),
                    "expire": f"{settings.SARA_EXPIRE_AFTER_HOURS:g}".replace(".", ","),
                }
            }
        )

    def _steps_after_expiry(self) -> list[tuple[int, timedelta]]:
        """(order, time after the cart) of each active step at or past the expiry, this one saved."""
        rows = {row.pk: row for row in SequenceStep.objects.exclude(pk=self.pk)}
        rows[self.pk] = self  # a step being added (no pk yet) joins the others
        expire = timedelta(hours=settings.SARA_EXPIRE_AFTER_HOURS)
        late: list[tuple[int, timedelta]] = []
        elapsed = timedelta(0)
        for index, row in enumerate(sorted((r for r in rows.values() if r.active), key=lambda r: r.order)):
            elapsed += row.delay(first=index == 0)
            if elapsed >= expire:
                late.append((row.order, elapsed))
        return late


class StepVariant(models.Model):
    """A template a step may send, with its weight: carts are split between variants by weight."""

    step = models.ForeignKey(
        SequenceStep, on_delete=models.CASCADE, related_name="variants", verbose_name=_("step")
    )
    template = models.ForeignKey(
        "messaging.Template",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="variants",
        help_text=_(
            "Empty: the template named in the settings (WHATSAPP_TEMPLATE_NAME for the first step, "
            "WHATSAPP_FOLLOWUP_TEMPLATE_NAME for the others)."
        ),
        verbose_name=_("template"),
    )
    weight = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)], verbose_name=_("weight")
    )

    class Meta:
        ordering = ["step__order", "pk"]
        verbose_name = _("template variant")
        verbose_name_plural = _("template variants")
        constraints = [
            models.UniqueConstraint(fields=["step", "template"], name="stepvariant_unique_template"),
            models.CheckConstraint(condition=models.Q(weight__gte=1), name="stepvariant_weight_positive"),
        ]

    def __str__(self) -> str:
        template = self.template or _("template from the settings")
        return f"{self.step}: {template} ×{self.weight}"


# --- The support desk (SPEC §8): what a team answering many conversations a day shares --------


class CannedReply(models.Model):
    """A ready answer support inserts in the reply box by typing "/" and choosing it."""

    title = models.CharField(max_length=80, unique=True, verbose_name=_("title"))
    text = models.TextField(
        max_length=4096,  # WhatsApp's limit for a text message
        help_text=_("Inserted in the reply box, where it can still be edited before sending."),
        verbose_name=_("text"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        ordering = ["title"]
        verbose_name = _("canned reply")
        verbose_name_plural = _("canned replies")

    def __str__(self) -> str:
        return self.title


class PrivateNote(models.Model):
    """A note staff leave on a conversation for each other: shown in the transcript, never sent."""

    conversation = models.ForeignKey(
        "recovery.Conversation",
        on_delete=models.CASCADE,
        related_name="private_notes",
        verbose_name=_("conversation"),
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("author"),
    )
    # Kept on the note: the transcript still names the person if their account goes.
    author_name = models.CharField(max_length=150, verbose_name=_("author's name"))
    text = models.TextField(max_length=4000, verbose_name=_("text"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name = _("private note")
        verbose_name_plural = _("private notes")

    def __str__(self) -> str:
        return self.author_name


class ConversationRead(models.Model):
    """When a staff member last opened a conversation: the customer's messages after it are unread to them."""

    conversation = models.ForeignKey(
        "recovery.Conversation", on_delete=models.CASCADE, related_name="+", verbose_name=_("conversation")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("staff member")
    )
    read_at = models.DateTimeField(verbose_name=_("read at"))

    class Meta:
        verbose_name = _("conversation read")
        verbose_name_plural = _("conversations read")
        constraints = [
            models.UniqueConstraint(fields=["conversation", "user"], name="conversationread_one_per_user")
        ]


class DeskSend(models.Model):
    """A send from the desk, by the key its form carried: the same key twice sends once.

    A double click, a resubmitted form or a retried request repeats the key; the unique
    constraint makes the second one find the first instead of sending again.
    """

    key = models.CharField(max_length=64, unique=True, verbose_name=_("idempotency key"))
    conversation = models.ForeignKey(
        "recovery.Conversation", on_delete=models.CASCADE, related_name="+", verbose_name=_("conversation")
    )
    message = models.ForeignKey(
        "messaging.Message", null=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("message")
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("desk send")
        verbose_name_plural = _("desk sends")


class ConversationMoney(models.Model):
    """What a closed conversation cost and which sequence steps it got, for the money report
    (SPEC §13): worked out once from its messages by recovery.money, which alone writes it.

    A closed conversation's messages no longer change, so the report reads this row instead of
    adding up every message again; the row holds only while the conversation's `closed_at` is the
    one it was worked out for (a reopened and closed again conversation is worked out anew).
    """

    conversation = models.OneToOneField(
        Conversation, primary_key=True, on_delete=models.CASCADE, related_name="money"
    )
    closed_at = models.DateTimeField()
    meta_cost = models.DecimalField(max_digits=20, decimal_places=10)
    model_cost = models.DecimalField(max_digits=20, decimal_places=10)
    template = models.CharField(max_length=512, null=True, blank=True)  # the first template's name
    # {"<step>": {"sent_at": ..., "variant": ..., "cost": ...}}: each step that left.
    steps = models.JSONField(default=dict)

    class Meta:
        verbose_name = _("conversation money")
        verbose_name_plural = _("conversations' money")
