"""The Shillings application server: business logic and storage behind the internal protocol."""
