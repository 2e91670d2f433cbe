"""chatd-client's command line: the arguments, and which front end runs.

    chatd-client [--user NAME] [--tls [--cafile PATH]] [HOST [PORT]]

main() is the console script (setup.cfg) and `python -m chatd.client`.  It
picks the front end by whether stdin and stdout are a terminal, runs it
until the session ends, and turns the end into one line on stderr and the
exit status listed in chatd.client.session.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import TYPE_CHECKING

from twisted.internet import ssl
from twisted.logger import globalLogBeginner

from chatd.client import pipe, tui
from chatd.client.session import Client, Exit

if TYPE_CHECKING:
    from twisted.internet._sslverify import IOpenSSLTrustRoot

PROG = "chatd-client"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Chat in a chatd room, at a terminal or from a script.",
        epilog="The password of an admin is read from CHATD_PASSWORD if set, else "
               "asked with no echo.  Exit status: see README.md.")
    parser.add_argument("host", nargs="?", default="localhost",
                        help="server name or address [default: localhost]")
    parser.add_argument("port", nargs="?", default=4000, type=_port,
                        help="server port [default: 4000]")
    parser.add_argument("--user", "-u", metavar="NAME",
                        help="log in as NAME instead of answering the prompt")
    parser.add_argument("--tls", action="store_true",
                        help="connect with TLS, verifying the server's certificate")
    parser.add_argument("--cafile", metavar="PATH",
                        help="trust the CA certificate(s) in PATH (PEM) instead "
                             "of the system's (needs --tls)")
    args = parser.parse_args(argv)
    if args.cafile and not args.tls:
        parser.error("--cafile needs --tls")
    return args


def _port(text: str) -> int:
    port = int(text) if text.isdigit() else 0
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return port


def load_trust(path: str) -> IOpenSSLTrustRoot:
    """The certificates in a PEM file, as a trust root for optionsForClientTLS."""
    with open(path, "rb") as f:
        data = f.read()
    blocks = re.findall(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----",
                        data, re.DOTALL)
    if not blocks:
        raise ValueError("no PEM certificate in it")
    return ssl.trustRootFromCertificates([ssl.Certificate.loadPEM(b) for b in blocks])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    trust = None
    if args.cafile:
        try:
            trust = load_trust(args.cafile)
        except (OSError, ValueError, ssl.SSL.Error) as e:
            print(f"{PROG}: cannot use --cafile {args.cafile}: {e}", file=sys.stderr)
            return Exit.USAGE
    from twisted.internet import reactor

    client = Client(reactor, args, trust)
    on_terminal = sys.stdin.isatty() and sys.stdout.isatty()
    globalLogBeginner.beginLoggingTo([client.observe], redirectStandardIO=False)
    if on_terminal:
        tui.run(reactor, client)
    else:
        pipe.run(reactor, client)
    if client.code == Exit.INTERNAL and client.failure_text:
        print(client.failure_text, file=sys.stderr)
    if client.message:
        print(f"{PROG}: {client.message}", file=sys.stderr)
    return int(client.code)
