"""factory-boy factories for Sara's models."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from messaging.models import Message
from recovery.models import Abandonment, Conversation, Customer, Product


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    phone = factory.Sequence(lambda n: f"+5548991{n % 10**6:06d}")
    name = "Maria Silva"


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    product_id = factory.Sequence(lambda n: f"prod-{n}")
    name = "Curso de Python"
    description = "Curso online de Python com 40 horas de vídeo e certificado."
    payment_link = "https://pay.example.com/curso-python"
    discount_link = "https://pay.example.com/curso-python?cupom=VOLTA10"
    discount_percent = Decimal("10")
    active = True


class AbandonmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Abandonment

    external_id = factory.Sequence(lambda n: f"ab-{n}")
    customer = factory.SubFactory(CustomerFactory)
    product = factory.SubFactory(ProductFactory)
    external_product_id = factory.LazyAttribute(lambda o: o.product.product_id if o.product else "unknown")
    value = Decimal("297.00")
    payment_link = "https://pay.example.com/cart/123"
    status = Abandonment.Status.INITIATED


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation

    abandonment = factory.SubFactory(AbandonmentFactory)
    customer = factory.LazyAttribute(lambda o: o.abandonment.customer)
    status = Conversation.Status.AWAITING_RESPONSE


class InboundMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    conversation = None
    direction = Message.Direction.IN
    kind = Message.Kind.TEXT
    wa_id = "5548999327881"
    text = "Oi"
    whatsapp_message_id = factory.Sequence(lambda n: f"wamid.in.{n}")
    status = Message.Status.RECEIVED
    whatsapp_timestamp = factory.LazyFunction(timezone.now)


class OutboundMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    direction = Message.Direction.OUT
    kind = Message.Kind.TEXT
    purpose = Message.Purpose.REPLY
    wa_id = factory.LazyAttribute(lambda o: o.conversation.customer.phone.lstrip("+"))
    text = "Olá!"
    status = Message.Status.PENDING


def maria_cart(**abandonment: object) -> Abandonment:
    """Maria's cart (+55 48 99932-7881) with its conversation, the first template already out."""
    cart = AbandonmentFactory(
        customer=CustomerFactory(phone="+5548999327881", name="Maria Silva"), **abandonment
    )
    ConversationFactory(abandonment=cart)
    return cart


def reply_in_window(text: str = "Olá! O link de pagamento é https://pay.example.com/cart/123") -> Message:
    """A pending free-form reply to a customer who wrote a minute ago."""
    conversation = ConversationFactory(
        abandonment__customer__phone="+5548999327881",
        status=Conversation.Status.ACTIVE,
        last_user_message_at=timezone.now() - timedelta(minutes=1),
    )
    return OutboundMessageFactory(conversation=conversation, text=text)
