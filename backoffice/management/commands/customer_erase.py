"""`manage.py customer_erase <phone>`: anonymise a person, keeping their opt-out (LGPD)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from recovery.lgpd import customer_for_request
from recovery.lifecycle import customer_erase


class Command(BaseCommand):
    help = "Erase the phone, name and message texts of a customer; aggregates and the opt-out stay."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("phone", help="The phone in any format, e.g. +5548999327881")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            customer = customer_erase(customer=customer_for_request(options["phone"]))
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        kept = "kept: they are never contacted again" if customer.opted_out else "none on record"
        self.stdout.write(f"Customer {customer.pk} erased. Opt-out {kept}.")
