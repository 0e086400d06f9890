"""The two back-office groups (SPEC §8): support edits and reads; ops also retries and re-drives."""

from django.contrib.auth.management import create_permissions
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

SUPPORT = [
    "recovery.view_customer",
    "recovery.change_customer",
    "recovery.add_product",
    "recovery.change_product",
    "recovery.view_product",
    "recovery.view_abandonment",
    "compliance.add_optoutkeyword",
    "compliance.change_optoutkeyword",
    "compliance.view_optoutkeyword",
    "messaging.view_conversation",
    "messaging.change_conversation",
    "messaging.view_message",
    "messaging.view_webhookevent",
]
OPS = [
    *SUPPORT,
    "messaging.view_statusupdate",
    "messaging.retry_send",
    "messaging.redrive_work",
]
GROUPS = {"support": SUPPORT, "ops": OPS}


def create_groups(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    # Permissions are normally made after the whole migrate run (post_migrate); this migration
    # needs them now, so make them here (create_permissions skips those that exist).
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    groups_grant(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


def groups_grant(Group: type, Permission: type) -> None:  # noqa: N803 - model classes
    """Each group with its permissions (the permissions must exist)."""
    for name, codenames in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for dotted in codenames:
            app_label, codename = dotted.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def remove_groups(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("compliance", "0002_seed_optout_keywords"),
        ("messaging", "0002_message_ops_permissions"),
        ("recovery", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
