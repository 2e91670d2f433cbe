"""The --cluster address: redis://[:PASSWORD@]HOST[:PORT][/DB], or rediss:// for TLS."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class RedisAddress:
    host: str
    port: int = 6379
    db: int = 0
    password: str | None = field(default=None, repr=False)
    username: str | None = None
    tls: bool = False

    def __str__(self) -> str:
        """The address as logs may show it: never the password."""
        scheme = "rediss" if self.tls else "redis"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/{self.db}"


def parse(url: str) -> RedisAddress:
    """Parse url; ValueError with a message fit for --help's user."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError("the cluster URL must start with redis:// or rediss://")
    try:
        port = parts.port or 6379
    except ValueError:
        raise ValueError("the port in the cluster URL is not a number") from None
    if not parts.hostname:
        raise ValueError("the cluster URL names no host")
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise ValueError(f"the database in the cluster URL must be a number, not {path!r}")
    return RedisAddress(
        host=parts.hostname, port=port, db=int(path or 0),
        password=unquote(parts.password) if parts.password else None,
        username=unquote(parts.username) if parts.username else None,
        tls=parts.scheme == "rediss")
