"""The Shillings web layer: the REST API (Klein) in front of the app servers and Redis."""
