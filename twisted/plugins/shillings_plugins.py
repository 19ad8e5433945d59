"""``twist`` plugins: ``twist shillings-app``, ``twist shillings-hooks`` and ``twist
shillings-web`` run the same services as ``shillings-app serve``, ``shillings-app hooks`` and
``shillings-web`` (configured by ``SHILLINGS_*``
variables; ``twist`` adds its own logging, pid-less foreground run and signal handling)."""

from twisted.application.service import ServiceMaker

shillings_app = ServiceMaker(
    "Shillings app server",
    "shillings_app.service",
    "The Shillings application server (applies pending migrations first).",
    "shillings-app",
)
shillings_hooks = ServiceMaker(
    "Shillings webhook delivery worker",
    "shillings_app.hooks.service",
    "One Shillings webhook delivery worker.",
    "shillings-hooks",
)
shillings_web = ServiceMaker(
    "Shillings web process",
    "shillings_web.service",
    "One Shillings web process (REST API).",
    "shillings-web",
)
