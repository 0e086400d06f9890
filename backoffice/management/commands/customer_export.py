"""`manage.py customer_export <phone>`: a JSON of everything Sara stores about a person."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from recovery.lgpd import customer_export, customer_for_request


class Command(BaseCommand):
    help = "Print a JSON export of everything stored about the customer with this phone (LGPD)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("phone", help="The phone in any format, e.g. +5548999327881")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            customer = customer_for_request(options["phone"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(customer_export(customer=customer), ensure_ascii=False, indent=2))
