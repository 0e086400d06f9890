from django.db import migrations

KEYWORDS = [
    "parar",
    "remover",
    "cancelar",
    "sair",
    "stop",
    "não quero",
    "me tire",
    "excluir",
    "desinscrever",
    "unsubscribe",
]


def seed(apps, schema_editor):
    OptOutKeyword = apps.get_model("compliance", "OptOutKeyword")
    for keyword in KEYWORDS:
        OptOutKeyword.objects.get_or_create(keyword=keyword, defaults={"active": True})


def unseed(apps, schema_editor):
    apps.get_model("compliance", "OptOutKeyword").objects.filter(keyword__in=KEYWORDS).delete()


class Migration(migrations.Migration):
    dependencies = [("compliance", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
