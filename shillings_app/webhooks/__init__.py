"""Webhook endpoints: their sealed signing secrets (``secrets``) and the networks their URLs
may target (``allow``), shared by the API's handlers and the delivery workers."""
