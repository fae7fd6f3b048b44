"""Shared runtime of every service: configuration, the PostgreSQL event store (the outbox),
the relay to RabbitMQ, idempotent consumers, metrics and health. Services import it; it
imports no service."""
