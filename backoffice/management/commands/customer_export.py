"""`manage.py customer_export <phone>`: a JSON of everything Sara stores about a person."""

from __future__ import annotations

import json

from backoffice.management.customer_command import CustomerCommand
from recovery.lgpd import customer_export
from recovery.models import Customer


class Command(CustomerCommand):
    help = "Print a JSON export of everything stored about the customer with this phone (LGPD)."

    def handle_customer(self, customer: Customer) -> None:
        self.stdout.write(json.dumps(customer_export(customer=customer), ensure_ascii=False, indent=2))
