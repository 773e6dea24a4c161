"""Prices per provider and model.

The existing rows get a blank provider and model, so they stay the default
price of their tier and size; rows for a provider (and a model of it) can be
added beside them. Holds record which backend their price was looked up for.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0002_default_prices_and_packs"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="price",
            options={"ordering": ["tier", "credits", "provider", "model"]},
        ),
        migrations.RemoveConstraint(
            model_name="price",
            name="one_price_per_tier_size",
        ),
        migrations.AddField(
            model_name="hold",
            name="model",
            field=models.CharField(blank=True, default="", max_length=100),
        ),
        migrations.AddField(
            model_name="hold",
            name="provider",
            field=models.CharField(blank=True, default="", max_length=40),
        ),
        migrations.AddField(
            model_name="price",
            name="model",
            field=models.CharField(
                blank=True,
                default="",
                help_text="Empty: any model of the provider. A model needs its provider.",
                max_length=100,
            ),
        ),
        migrations.AddField(
            model_name="price",
            name="provider",
            field=models.CharField(
                blank=True, default="", help_text="Empty: any provider.", max_length=40
            ),
        ),
        migrations.AddConstraint(
            model_name="price",
            constraint=models.UniqueConstraint(
                fields=("tier", "size", "provider", "model"),
                name="one_price_per_tier_size_provider_model",
            ),
        ),
        migrations.AddConstraint(
            model_name="price",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("model", ""), models.Q(("provider", ""), _negated=True), _connector="OR"
                ),
                name="price_model_needs_provider",
            ),
        ),
    ]
