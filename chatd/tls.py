"""TLS listeners whose certificate and key can be renewed without a restart.

An `ssl:` endpoint string reads its certificate and key once, and the port
keeps the resulting CertificateOptions for its whole life.  So that a renewed
certificate reaches new connections, chatd listens with a RenewableTLS in its
place: a connection creator (an interface every TLS listener accepts) that
asks whichever CertificateOptions is current for each new connection.
Renewing parses the same endpoint string again and swaps in the fresh one;
connections already open keep the certificate they were made with.

The string is parsed by Twisted's own endpoint parser, given a stand-in
reactor that only records what the endpoint would pass to `listenSSL`, so
chatd accepts exactly the `ssl:` options Twisted does (privateKey, certKey,
extraCertChain, dhParameters, sslmethod, interface, backlog) without copying
the parser or reading private attributes.
"""

from __future__ import annotations

from datetime import datetime

from cryptography.hazmat.primitives import hashes
from OpenSSL import SSL, crypto
from twisted.internet.endpoints import SSL4ServerEndpoint, serverFromString
from twisted.internet.error import VerifyError
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator, IReactorSSL
from twisted.internet.protocol import ServerFactory
from twisted.internet.ssl import CertificateOptions
from zope.interface import implementer


class CertificateError(Exception):
    """The certificate or key of a TLS endpoint could not be loaded; the reason."""


class _ListenSSLRecorder:
    """Stands in for the reactor: keeps what an SSL endpoint would listen with."""

    def listenSSL(self, port, factory, contextFactory, backlog=50, interface=""):
        self.listened = (port, contextFactory, backlog, interface)


def _parse_ssl(description: str) -> tuple[int, CertificateOptions, int, str] | None:
    """(port, options, backlog, interface) of an SSL endpoint string; None for others.

    Reads the certificate and key files now.  Raises what Twisted's parser
    raises for a bad string or unreadable files.
    """
    recorder = _ListenSSLRecorder()
    endpoint = serverFromString(recorder, description)
    if not isinstance(endpoint, SSL4ServerEndpoint):
        return None
    endpoint.listen(ServerFactory())
    return recorder.listened


def _describe(options: CertificateOptions) -> tuple[bytes, str]:
    """The certificate's SHA-256 fingerprint, and its subject and expiry for the log."""
    cert = options.certificate.to_cryptography()
    expires: datetime = cert.not_valid_after_utc
    return (cert.fingerprint(hashes.SHA256()),
            f"{cert.subject.rfc4514_string()}, expires {expires:%Y-%m-%d %H:%M} UTC")


def _load(description: str) -> CertificateOptions:
    try:
        parsed = _parse_ssl(description)
        if parsed is None:
            raise CertificateError(f"{description} is no longer an ssl: endpoint")
        options = parsed[1]
        options.getContext()  # checks that the key matches the certificate
    except (OSError, ValueError, SSL.Error, crypto.Error, VerifyError) as e:
        raise CertificateError(getattr(e, "strerror", None) or str(e)) from e
    return options


@implementer(IOpenSSLServerConnectionCreator)
class RenewableTLS:
    """The TLS settings of one listener, which renew() may replace."""

    def __init__(self, description: str, options: CertificateOptions):
        self.description = description
        self.options = options

    def serverConnectionForTLS(self, tlsProtocol) -> SSL.Connection:
        return SSL.Connection(self.options.getContext(), None)

    def renew(self) -> str | None:
        """Read the certificate and key files again, for new connections.

        Returns what the new certificate is (for the log) if it differs from
        the one in use, else None.  Raises CertificateError, keeping the one
        in use, if the files cannot be read or the key does not match.
        """
        options = _load(self.description)
        old_print, _ = _describe(self.options)
        new_print, about = _describe(options)
        self.options = options
        return about if new_print != old_print else None


def renewable_endpoint(reactor: IReactorSSL, description: str, endpoint):
    """endpoint (parsed from description) made renewable if it is an SSL one.

    Returns (endpoint, RenewableTLS or None).
    """
    if not isinstance(endpoint, SSL4ServerEndpoint):
        return endpoint, None
    port, options, backlog, interface = _parse_ssl(description)
    tls = RenewableTLS(description, options)
    return SSL4ServerEndpoint(reactor, port, tls, backlog, interface), tls
