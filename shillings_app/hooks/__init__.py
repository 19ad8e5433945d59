"""The webhook delivery workers (``shillings-app hooks``, SPEC §7): each fans new events out
to their user's endpoints, claims due deliveries with ``FOR UPDATE SKIP LOCKED`` under a
lease, sends them signed per Standard Webhooks, and records every attempt."""
