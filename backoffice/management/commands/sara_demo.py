"""Seed a demo product and a local admin user, for trying Sara on the embedded defaults."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from recovery.models import Product


class Command(BaseCommand):
    help = "Create the demo product 'curso-python' and, in DEBUG only, the admin user admin/admin."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("sara_demo is for development (DEBUG on) only.")
        Product.objects.get_or_create(
            product_id="curso-python",
            defaults={
                "name": "Curso de Python",
                "description": "Curso online de Python: 40 horas de vídeo, exercícios e certificado.",
                "payment_link": "https://pay.example.com/curso-python",
                "discount_link": "https://pay.example.com/curso-python?cupom=VOLTA10",
                "discount_percent": Decimal("10"),
            },
        )
        user_model = get_user_model()
        if not user_model.objects.filter(username="admin").exists():
            user_model.objects.create_superuser("admin", "admin@example.com", "admin")
        self.stdout.write("Demo product 'curso-python' and admin user (admin/admin) ready.")
