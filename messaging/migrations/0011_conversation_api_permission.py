"""The conversations API's own permission, given to the support and ops groups (SPEC §9)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

GROUPS = ("support", "ops")


def grant(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    # Permissions are normally made after the whole migrate run (post_migrate): make this one now.
    app_config = apps.get_app_config("messaging")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")  # noqa: N806
    Permission = apps.get_model("auth", "Permission")  # noqa: N806
    permission = Permission.objects.get(content_type__app_label="messaging", codename="use_api")
    for group in Group.objects.filter(name__in=GROUPS):
        group.permissions.add(permission)


def revoke(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    Permission = apps.get_model("auth", "Permission")  # noqa: N806
    Permission.objects.filter(content_type__app_label="messaging", codename="use_api").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0010_whatsapp_message_kinds"),
        ("compliance", "0003_staff_groups"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="conversation",
            options={
                "ordering": ["-created_at"],
                "permissions": [("use_api", "Can use the conversations API")],
                "verbose_name": "conversation",
                "verbose_name_plural": "conversations",
            },
        ),
        migrations.RunPython(grant, revoke),
    ]
