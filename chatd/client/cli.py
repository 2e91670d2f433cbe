"""chatd-client's command line: the arguments, and which front end runs.

    chatd-client [--user NAME] [--tls [--cafile PATH]] [HOST [PORT]]

main() is the console script (setup.cfg) and `python -m chatd.client`.  It
picks the front end by whether stdin and stdout are a terminal, runs it
until the session ends, and turns the end into one line on stderr and the
exit status listed in chatd.client.session.

The terminal front end needs prompt_toolkit (the `chatd[tui]` extra) and
Twisted's asyncio reactor, installed here before anything imports the
reactor; without prompt_toolkit a terminal gets the pipe front end and a
one-line hint.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import TYPE_CHECKING

from twisted.internet import ssl
from twisted.logger import globalLogBeginner

from chatd.client import pipe
from chatd.client.session import Client, Exit

if TYPE_CHECKING:
    from twisted.internet._sslverify import IOpenSSLTrustRoot

PROG = "chatd-client"
NO_TUI_HINT = f"{PROG}: install chatd[tui] for the full-screen terminal; using plain lines"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Chat in a chatd room, at a terminal or from a script.",
        epilog="At a terminal, with chatd[tui] installed: an input line with "
               "history, Ctrl-R search and Tab completion.  Lines are sent no faster "
               "than the server's flood limit (a paste or a piped file waits its "
               "turn).  The password of an admin is read from CHATD_PASSWORD if "
               "set, else asked with no echo.  Exit status: see README.md.")
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


def _terminal_front_end():
    """chatd.client.tui on the asyncio reactor, or None (and a hint) without
    prompt_toolkit."""
    try:
        from chatd.client import tui
    except ImportError:
        print(NO_TUI_HINT, file=sys.stderr)
        return None
    import asyncio

    from twisted.internet import asyncioreactor

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    asyncioreactor.install(loop)
    return tui


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    trust = None
    if args.cafile:
        try:
            trust = load_trust(args.cafile)
        except (OSError, ValueError, ssl.SSL.Error) as e:
            print(f"{PROG}: cannot use --cafile {args.cafile}: {e}", file=sys.stderr)
            return Exit.USAGE
    front = _terminal_front_end() if sys.stdin.isatty() and sys.stdout.isatty() else None
    from twisted.internet import reactor

    client = Client(reactor, args, trust)
    globalLogBeginner.beginLoggingTo([client.observe], redirectStandardIO=False)
    (front or pipe).run(reactor, client)
    if client.code == Exit.INTERNAL and client.failure_text:
        print(client.failure_text, file=sys.stderr)
    if client.message:
        print(f"{PROG}: {client.message}", file=sys.stderr)
    return int(client.code)
