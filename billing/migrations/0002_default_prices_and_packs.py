"""List prices at 1 credit = $0.001 (shared reference, gemini-image-api.md) and two packs."""

from django.db import migrations

PRICES = [
    ("flash", "512", 45),
    ("flash", "1K", 67),
    ("flash", "2K", 101),
    ("flash", "4K", 151),
    ("pro", "1K", 134),
    ("pro", "2K", 134),
    ("pro", "4K", 240),
]
PACKS = [
    ("Starter", 10_000, 1_000),
    ("Studio", 100_000, 9_500),
]


def seed(apps, schema_editor):
    Price = apps.get_model("billing", "Price")
    CreditPack = apps.get_model("billing", "CreditPack")
    for tier, size, credits in PRICES:
        Price.objects.get_or_create(tier=tier, size=size, defaults={"credits": credits})
    if not CreditPack.objects.exists():
        for name, credits, price in PACKS:
            CreditPack.objects.create(name=name, credits=credits, price=price, currency="usd")


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
