"""Purchases record a dispute, and one payment intent belongs to one purchase.

A refund or dispute can arrive before the purchase is credited; the purchase
now keeps both until it is, and links to its payment intent as soon as any
event names it.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0003_price_per_provider_and_model"),
    ]

    operations = [
        migrations.AddField(
            model_name="purchase",
            name="disputed",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddConstraint(
            model_name="purchase",
            constraint=models.UniqueConstraint(
                condition=models.Q(("payment_intent", ""), _negated=True),
                fields=("payment_intent",),
                name="one_purchase_per_payment_intent",
            ),
        ),
    ]
