"""Kernel socket settings: the listen backlog and TCP options on client sockets.

Two failures a chat server only meets in real use: a burst of connections
overflowing the listen queue (Twisted's default backlog is 50, and a client
whose handshake the kernel dropped then waits forever for a greeting), and a
peer that vanished without a FIN holding its name until a write to it times
out, which may never happen in a quiet room.
"""

from __future__ import annotations

import socket

from twisted.logger import Logger

log = Logger()

# Linux caps it at net.core.somaxconn (4096 by default since 5.4).
DEFAULT_BACKLOG = 1024

# Endpoint types whose string takes backlog=N.  systemd: adopts a socket
# that systemd put in the listening state itself (its Backlog=).
_TAKES_BACKLOG = frozenset({"tcp", "tcp6", "ssl", "tls", "unix"})
# Endpoint types that wrap another endpoint string and pass its arguments on.
_WRAPPERS = frozenset({"haproxy"})

# Linux's largest values for these options (include/net/tcp.h).
MAX_KEEPALIVE_SECONDS = 32767
MAX_KEEPALIVE_PROBES = 127


def _fields(description: str) -> list[tuple[str | None, str]] | None:
    """(key, value) per ':'-separated field of an endpoint string, key None
    for a positional field, read as Twisted reads it: a backslash escapes the
    next character, and the first unescaped '=' makes a field a keyword.
    None if the string ends inside an escape (Twisted refuses it)."""
    fields: list[tuple[str | None, str]] = []
    key: str | None = None
    current = ""
    chars = iter(description)
    for ch in chars:
        if ch == "\\":
            escaped = next(chars, None)
            if escaped is None:
                return None
            current += escaped
        elif ch == ":":
            fields.append((key, current))
            key, current = None, ""
        elif ch == "=" and key is None:
            key, current = current, ""
        else:
            current += ch
    fields.append((key, current))
    return fields


def with_backlog(description: str, backlog: int = DEFAULT_BACKLOG) -> str:
    """The endpoint string with backlog=BACKLOG added, if its type takes a
    backlog and it does not name one; otherwise the string unchanged."""
    fields = _fields(description)
    if fields is None or any(key == "backlog" for key, _ in fields):
        return description
    kinds = [value.lower() for key, value in fields if key is None]
    while kinds and kinds[0] in _WRAPPERS:
        kinds.pop(0)
    if not kinds or kinds[0] not in _TAKES_BACKLOG:
        return description
    return f"{description}:backlog={backlog}"


def peer_host(transport) -> str:
    """The peer's address without the port: what limits and bans key on
    (an IPv4 client of an IPv6 listener as plain IPv4)."""
    addr = transport.getPeer()
    host = getattr(addr, "host", None) or str(addr)
    return host.removeprefix("::ffff:") if host.startswith("::ffff:") and "." in host else host


def tcp_socket(transport) -> socket.socket | None:
    """The TCP socket under transport, through TLS or PROXY-protocol
    wrappers (each wraps the transport below it); None for a UNIX socket or
    a transport with no socket."""
    for _ in range(4):
        get_handle = getattr(transport, "getHandle", None)
        handle = get_handle() if get_handle is not None else None
        if isinstance(handle, socket.socket):
            return handle if handle.family in (socket.AF_INET, socket.AF_INET6) else None
        transport = getattr(transport, "transport", None)
        if transport is None:
            return None
    return None


MAX_USER_TIMEOUT_MS = 2**31 - 1


def tune_client(transport, limits) -> None:
    """tune_client_socket on the TCP socket under a new connection's
    transport (if it has one), with limits' keepalive settings.  A failure
    is logged, not raised: the peer may be gone already, and admission
    must still run."""
    sock = tcp_socket(transport)
    if sock is None:
        return
    try:
        tune_client_socket(sock, limits.keepalive_idle, limits.keepalive_interval,
                           limits.keepalive_count)
    except OSError as e:
        log.warn("socket options for {host} not set: {why}", host=peer_host(transport),
                 why=e)


def tune_client_socket(sock: socket.socket, idle: int, interval: int, count: int) -> None:
    """No Nagle delay, and TCP keepalive: after `idle` quiet seconds the
    kernel probes the peer every `interval` seconds and closes the
    connection after `count` unanswered probes.

    Keepalive only probes a connection with nothing in flight; data the
    peer never acknowledges is given as long (TCP_USER_TIMEOUT), so a
    vanished peer in a busy room goes as soon as one in a quiet room.
    """
    # Chat lines are small and latency matters.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    # TCP_KEEPIDLE is TCP_KEEPALIVE on macOS; the rest are Linux's names.
    idle_option = getattr(socket, "TCP_KEEPIDLE", None) or getattr(socket, "TCP_KEEPALIVE", None)
    for option, value in (
        (idle_option, idle),
        (getattr(socket, "TCP_KEEPINTVL", None), interval),
        (getattr(socket, "TCP_KEEPCNT", None), count),
        # In milliseconds, in a C int: the kernel's limits allow more.
        (getattr(socket, "TCP_USER_TIMEOUT", None),
         min((idle + interval * count) * 1000, MAX_USER_TIMEOUT_MS)),
    ):
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)
