"""Signals billing sends, for the apps above it that want to know (metrics)."""

from django.dispatch import Signal

# After a capture or release moved credits (never for a repeat): kind is
# "capture" or "release", with tier, images and credits. Sent inside the
# settling transaction; a receiver that counts should wait for the commit.
hold_settled = Signal()
