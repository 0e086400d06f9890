from django.apps import AppConfig


class SaraConfig(AppConfig):
    name = "sara"
    verbose_name = "Sara"
