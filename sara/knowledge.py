"""What Sara knows about the shop and the product in the cart: plain values, no models."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sara.money import brl

# Labels the model reads, in the order the shop's answers are most often needed.
SHOP_FIELDS = (
    ("name", "Loja"),
    ("about", "Sobre a loja"),
    ("shipping", "Frete e entrega"),
    ("payment_methods", "Formas de pagamento"),
    ("installments", "Parcelamento"),
    ("returns", "Trocas e devoluções"),
    ("support_hours", "Atendimento"),
)


@dataclass(frozen=True)
class ShopKnowledge:
    """The shop's own words (SPEC §10), and the product's price and FAQ.

    The shop part is the same in every conversation, so it belongs to the prompt's stable
    prefix; the product part changes with the cart and goes after it.
    """

    name: str = ""
    about: str = ""
    shipping: str = ""
    payment_methods: str = ""
    installments: str = ""
    returns: str = ""
    support_hours: str = ""
    product_price: Decimal | None = None
    product_faq: str = ""

    def shop_text(self) -> str:
        lines = [
            f"- {label}: {getattr(self, field).strip()}"
            for field, label in SHOP_FIELDS
            if getattr(self, field).strip()
        ]
        return "\n".join(lines) or "- (a loja ainda não escreveu nada)"

    def product_text(self) -> str:
        lines = []
        if self.product_price is not None:
            lines.append(f"- Preço de tabela: {brl(self.product_price)}")
        if self.product_faq.strip():
            lines.append(f"- Perguntas frequentes:\n{self.product_faq.strip()}")
        return "\n".join(lines)

    def all_text(self) -> str:
        """Every word the shop wrote: the figures in it are the ones a reply may repeat."""
        parts = [getattr(self, field) for field, _ in SHOP_FIELDS]
        parts.append(self.product_faq)
        if self.product_price is not None:
            parts.append(brl(self.product_price))
        return "\n".join(p for p in parts if p)
