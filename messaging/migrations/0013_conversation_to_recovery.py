"""The conversation now lives in recovery (its 0012): messaging forgets it; the table stays."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0012_sequence_templates"),
        ("recovery", "0012_conversation_from_messaging"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(
                    model_name="conversation",
                    name="conversation_customer_status",
                ),
                migrations.RemoveIndex(
                    model_name="conversation",
                    name="conversation_open_idx",
                ),
                migrations.RemoveConstraint(
                    model_name="conversation",
                    name="conversation_one_open_per_customer",
                ),
                migrations.AlterField(
                    model_name="message",
                    name="conversation",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="messages",
                        to="recovery.conversation",
                        verbose_name="conversation",
                    ),
                ),
                migrations.DeleteModel(
                    name="Conversation",
                ),
            ],
            database_operations=[],
        ),
    ]
