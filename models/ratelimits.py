"""Rate-limit counters kept in the database, so every instance counts the same hits."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class RateCounter(Model):
    """Hits of one (action, subject) key within one fixed window."""

    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=255)
    window = fields.BigIntField()  # the window's start, Unix seconds
    hits = fields.IntField(default=0)

    class Meta:
        table = "rate_counter"
        unique_together = (("key", "window"),)
        indexes = (("window",),)
