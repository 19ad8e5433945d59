"""Mutual TLS for the app server's listening endpoint (``SHILLINGS_APP_TLS_*``)."""

from __future__ import annotations

from typing import Any

from twisted.internet import ssl
from twisted.internet.protocol import Factory
from twisted.protocols.tls import TLSMemoryBIOFactory

from shillings_app.config import TlsFiles


def tls_wrapped(tls: TlsFiles | None, factory: Factory) -> Any:
    """``factory`` behind TLS that requires a client certificate signed by ``tls.client_ca``
    (Twisted's ``ssl:`` server endpoints cannot require one), or ``factory`` itself."""
    if tls is None:
        return factory
    with open(tls.cert, "rb") as c, open(tls.key, "rb") as k, open(tls.client_ca, "rb") as a:
        own = ssl.PrivateCertificate.loadPEM(c.read() + b"\n" + k.read())
        ca = ssl.Certificate.loadPEM(a.read())
    options = ssl.CertificateOptions(
        privateKey=own.privateKey.original,
        certificate=own.original,
        verify=True,
        caCerts=[ca.original],
        requireCertificate=True,
    )
    return TLSMemoryBIOFactory(options, False, factory)
