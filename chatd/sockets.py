"""Kernel socket settings: the listen backlog.

A failure a chat server only meets in real use: a burst of connections
overflowing the listen queue (Twisted's default backlog is 50, and a client
whose handshake the kernel dropped then waits forever for a greeting).
"""

from __future__ import annotations

# Linux caps it at net.core.somaxconn (4096 by default since 5.4).
DEFAULT_BACKLOG = 1024

# Endpoint types whose string takes backlog=N.  systemd: adopts a socket
# that systemd put in the listening state itself (its Backlog=).
_TAKES_BACKLOG = frozenset({"tcp", "tcp6", "ssl", "tls", "unix"})
# Endpoint types that wrap another endpoint string and pass its arguments on.
_WRAPPERS = frozenset({"haproxy"})


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
