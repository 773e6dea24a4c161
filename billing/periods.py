"""Where days, weeks and months begin, for caps, budgets and usage reports."""

from datetime import datetime, timedelta

from django.utils import timezone

PERIODS = ("day", "week", "month")


def day_start(now: datetime | None = None) -> datetime:
    now = timezone.localtime(now or timezone.now())
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(now: datetime | None = None) -> datetime:
    return day_start(now).replace(day=1)


def week_start(now: datetime | None = None) -> datetime:
    start = day_start(now)
    return start - timedelta(days=start.weekday())


def period_start(period: str, now: datetime | None = None) -> datetime:
    """The start of the current day, week (Monday) or month, in the site's time zone."""
    return {"day": day_start, "week": week_start, "month": month_start}[period](now)
