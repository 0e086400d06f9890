"""`manage.py customer_erase <phone>`: anonymise a person, keeping their opt-out (LGPD)."""

from __future__ import annotations

from backoffice.management.customer_command import CustomerCommand
from recovery.lifecycle import customer_erase
from recovery.models import Customer


class Command(CustomerCommand):
    help = "Erase the phone, name and message texts of a customer; aggregates and the opt-out stay."

    def handle_customer(self, customer: Customer) -> None:
        customer = customer_erase(customer=customer)
        kept = "kept: they are never contacted again" if customer.opted_out else "none on record"
        self.stdout.write(f"Customer {customer.pk} erased. Opt-out {kept}.")
