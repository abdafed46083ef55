"""Delivery: the transactional outbox, its dispatcher, mail, SMS and live pub/sub."""
