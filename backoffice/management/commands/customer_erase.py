"""`manage.py customer_erase <phone>`: erase every copy of a person's data, keeping them blocked (LGPD)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from backoffice.management.customer_command import CustomerCommand
from recovery.lgpd import customer_erase
from recovery.models import Customer


class Command(CustomerCommand):
    help = (
        "Erase everything Sara stores about a customer (phone, names, e-mail, CPF, texts, raw "
        "webhooks, admin history); the figures stay and the person is never contacted again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--reason", default="", help="The request, e.g. 'LGPD e-mail 30/11, ticket 4521'."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.reason = options["reason"]
        super().handle(*args, **options)

    def handle_customer(self, customer: Customer) -> None:
        customer = customer_erase(customer=customer, reason=self.reason)
        kept = " Their opt-out is kept." if customer.opted_out else ""
        self.stdout.write(f"Customer {customer.pk} erased: they are never contacted again.{kept}")
