"""Delivery's counters: the outbox rows the dispatcher delivered or failed, per channel.
They live below web/, which serves them at /metrics in the app's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from models.enums import OutboxChannel


class DeliveryCounters:
    """The delivery counters, in the registry given: the app's, or a dispatcher's own when it
    runs without an app (its counts are then read by no one)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        deliveries = Counter(
            "keybin_outbox_deliveries",
            "Outbox rows delivered",
            ["channel"],
            registry=registry,
        )
        failures = Counter(
            "keybin_outbox_failures",
            "Outbox deliveries that failed: to be retried (retry) or given up for good (dead)",
            ["channel", "outcome"],
            registry=registry,
        )
        # Children made once: every series exists (at 0) from the start, and the hot path
        # skips the label lookup.
        self._delivered = {c.value: deliveries.labels(c.value) for c in OutboxChannel}
        self._retried = {c.value: failures.labels(c.value, "retry") for c in OutboxChannel}
        self._dead = {c.value: failures.labels(c.value, "dead") for c in OutboxChannel}

    def delivered(self, channel: str) -> None:
        self._delivered[channel].inc()

    def failed(self, channel: str, *, dead: bool) -> None:
        """A delivery failed: `dead` when the row is given up, else it is retried later."""
        (self._dead if dead else self._retried)[channel].inc()
