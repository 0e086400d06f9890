"""`manage.py customer_erase <phone>`: anonymise a person, keeping their opt-out (LGPD)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from compliance.lgpd import customer_erase, customer_for_phone
from recovery.phones import InvalidPhone, normalize_phone


class Command(BaseCommand):
    help = "Erase the phone, name and message texts of a customer; aggregates and the opt-out stay."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("phone", help="The phone in any format, e.g. +5548999327881")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            phone = normalize_phone(options["phone"])
        except InvalidPhone as exc:
            raise CommandError(f"Not a valid phone number: {exc}") from exc
        customer = customer_for_phone(phone)
        if customer is None:
            raise CommandError("No customer with this phone.")
        customer = customer_erase(customer=customer)
        kept = "kept: they are never contacted again" if customer.opted_out else "none on record"
        self.stdout.write(f"Customer {customer.pk} erased. Opt-out {kept}.")
