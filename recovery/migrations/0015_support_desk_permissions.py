"""Support and ops edit the canned replies of the support desk (SPEC §8)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

GROUPS = ("support", "ops")
CODENAMES = ("add_cannedreply", "change_cannedreply", "view_cannedreply")


def grant(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    # Permissions are normally made after the whole migrate run (post_migrate): make these now.
    app_config = apps.get_app_config("recovery")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    groups_grant(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


def groups_grant(Group: type, Permission: type) -> None:  # noqa: N803 - model classes
    permissions = Permission.objects.filter(content_type__app_label="recovery", codename__in=CODENAMES)
    for group in Group.objects.filter(name__in=GROUPS):
        group.permissions.add(*permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("recovery", "0014_support_desk"),
        ("compliance", "0003_staff_groups"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
