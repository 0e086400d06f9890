"""What the LGPD commands share: the customer a typed phone names, or a clear refusal."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from recovery.lgpd import customer_for_request
from recovery.models import Customer


class CustomerCommand(BaseCommand):
    """A command about one person, named by their phone typed any way (`+55 (48) 99932-7881`)."""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("phone", help="The phone in any format, e.g. +5548999327881")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            customer = customer_for_request(options["phone"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.handle_customer(customer)

    def handle_customer(self, customer: Customer) -> None:
        raise NotImplementedError
