"""The conversation joins the recovery that owns it: the same table, nothing runs in the database.

Only Django's picture of the models changes (messaging's 0013 drops its side). The content type
moves with the model, so the permissions granted on conversations (the staff groups, the API's
`use_api`) and the admin's history stay attached to it.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps


def content_type_move(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _content_type_relabel(apps, old="messaging", new="recovery")


def content_type_back(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _content_type_relabel(apps, old="recovery", new="messaging")


def _content_type_relabel(apps: StateApps, *, old: str, new: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")  # noqa: N806 - a model class
    # A database made before any content type existed has none to move (post_migrate makes it).
    if not ContentType.objects.filter(app_label=new, model="conversation").exists():
        ContentType.objects.filter(app_label=old, model="conversation").update(app_label=new)


class Migration(migrations.Migration):
    dependencies = [
        ("recovery", "0011_sequence_steps"),
        ("messaging", "0012_sequence_templates"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Conversation",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("awaiting_response", "Awaiting reply"),
                                    ("active", "Active"),
                                    ("closed", "Closed"),
                                    ("error", "Error"),
                                ],
                                default="awaiting_response",
                                max_length=20,
                                verbose_name="status",
                            ),
                        ),
                        (
                            "close_reason",
                            models.CharField(blank=True, max_length=200, verbose_name="close reason"),
                        ),
                        ("message_count", models.PositiveIntegerField(default=0, verbose_name="messages")),
                        ("exchanges", models.PositiveSmallIntegerField(default=0, verbose_name="exchanges")),
                        (
                            "needs_human",
                            models.BooleanField(
                                default=False,
                                help_text="Waiting for a person; Sara stays silent.",
                                verbose_name="waiting for a person",
                            ),
                        ),
                        (
                            "handoff_reason",
                            models.CharField(
                                blank=True,
                                choices=[
                                    ("exchange_limit", "Exchange limit reached"),
                                    ("human", "Asked for a person"),
                                    ("payment_mismatch", "Payment mismatch"),
                                    ("manual", "Flagged by hand"),
                                ],
                                max_length=20,
                                verbose_name="hand-off reason",
                            ),
                        ),
                        (
                            "handoff_at",
                            models.DateTimeField(blank=True, null=True, verbose_name="waiting since"),
                        ),
                        (
                            "assigned_at",
                            models.DateTimeField(blank=True, null=True, verbose_name="assigned at"),
                        ),
                        (
                            "last_message_at",
                            models.DateTimeField(blank=True, null=True, verbose_name="last message at"),
                        ),
                        (
                            "last_user_message_at",
                            models.DateTimeField(
                                blank=True, null=True, verbose_name="customer last wrote at"
                            ),
                        ),
                        ("followup_sent", models.BooleanField(default=False, verbose_name="follow-up sent")),
                        (
                            "sequence_step",
                            models.PositiveSmallIntegerField(
                                db_default=0, default=0, verbose_name="sequence step sent"
                            ),
                        ),
                        ("closed_at", models.DateTimeField(blank=True, null=True, verbose_name="closed at")),
                        ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="created at")),
                        ("updated_at", models.DateTimeField(auto_now=True, verbose_name="updated at")),
                        (
                            "abandonment",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="conversation",
                                to="recovery.abandonment",
                                verbose_name="cart",
                            ),
                        ),
                        (
                            "assigned_to",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="assigned_conversations",
                                to=settings.AUTH_USER_MODEL,
                                verbose_name="assigned to",
                            ),
                        ),
                        (
                            "customer",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="conversations",
                                to="recovery.customer",
                                verbose_name="customer",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "conversation",
                        "verbose_name_plural": "conversations",
                        "db_table": "messaging_conversation",
                        "ordering": ["-created_at"],
                        "permissions": [("use_api", "Can use the conversations API")],
                        "indexes": [
                            models.Index(fields=["customer", "status"], name="conversation_customer_status"),
                            models.Index(
                                condition=models.Q(("status__in", ["awaiting_response", "active", "error"])),
                                fields=["status", "created_at"],
                                name="conversation_open_idx",
                            ),
                        ],
                        "constraints": [
                            models.UniqueConstraint(
                                condition=models.Q(("status__in", ["awaiting_response", "active", "error"])),
                                fields=("customer",),
                                name="conversation_one_open_per_customer",
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_type_move, content_type_back),
    ]
