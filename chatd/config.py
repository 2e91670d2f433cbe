"""Settings: built-in defaults, then the TOML config file, then options.

Unknown tables or keys in the file are errors, so a typo never silently
leaves a default in force.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from chatd.core.text import NAME_RULE, clean, name_key, valid_name
from chatd.sockets import MAX_KEEPALIVE_PROBES, MAX_KEEPALIVE_SECONDS


class ConfigError(Exception):
    pass


# No limit needs more; larger values only overflow counters.
LIMIT_MAX = 10**9


@dataclass
class Limits:
    """What one client may do; see docs/protocol.md, "Limits"."""

    max_line: int = 2048
    login_timeout: float = 30.0
    flood_burst: int = 5
    flood_rate: float = 2.0
    flood_kick: int = 10
    flood_kick_window: float = 30.0
    sendq: int = 256 * 1024
    max_clients: int = 10000
    max_per_ip: int = 10
    login_failures: int = 3
    login_failure_window: float = 300.0
    idle_timeout: float = 0.0
    keepalive_idle: int = 60
    keepalive_interval: int = 10
    keepalive_count: int = 5

    def check(self) -> None:
        if self.max_line < 64:
            raise ConfigError("limits.max_line must be at least 64")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _MAY_BE_ZERO:
                if not (0 <= value <= LIMIT_MAX):  # also refuses nan
                    raise ConfigError(
                        f"limits.{f.name} must be at least 0 (off) and at most {LIMIT_MAX}")
            elif not (0 < value <= LIMIT_MAX):
                raise ConfigError(f"limits.{f.name} must be more than 0 and at most {LIMIT_MAX}")
        for name, most in _KERNEL_MAX.items():
            if getattr(self, name) > most:
                raise ConfigError(f"limits.{name} must be at most {most}")


# Limits where 0 means "off".
_MAY_BE_ZERO = frozenset({"idle_timeout"})
# What the kernel accepts for the keepalive socket options.
_KERNEL_MAX = {"keepalive_idle": MAX_KEEPALIVE_SECONDS,
               "keepalive_interval": MAX_KEEPALIVE_SECONDS,
               "keepalive_count": MAX_KEEPALIVE_PROBES}


@dataclass
class Settings:
    listen: list[str] = field(default_factory=lambda: ["tcp:4000"])
    room: str = "chatd"
    data_dir: str = "var"
    motd: str = ""
    limits: Limits = field(default_factory=Limits)
    # Endpoints for the Prometheus /metrics page; empty: off.
    metrics: list[str] = field(default_factory=list)
    # IRC listeners ([irc] listen); empty: no IRC.
    irc: list[str] = field(default_factory=list)
    # The IRC server's name in prefixes and numerics ([irc] server_name); "": the host name.
    irc_server_name: str = ""
    # Web page and WebSocket listeners ([web] listen); empty: no web page.
    web: list[str] = field(default_factory=list)
    # Origins besides the page's own allowed to open the WebSocket ([web] origins).
    web_origins: list[str] = field(default_factory=list)
    # Rooms that always exist, besides `room`, where everyone lands.
    rooms: list[str] = field(default_factory=list)
    # Whether /join may create a room that is not configured.
    open_rooms: bool = True
    # Who may protect a name with /register: one of REGISTRATION.
    registration: str = "open"
    # Messages and actions of a room replayed to whoever joins it; 0: off.
    history: int = 50
    # [cluster]: the Redis URL ("": one process, no cluster), this node's
    # name ("": host name and pid), and the presence TTL in seconds.
    cluster: str = ""
    cluster_node: str = ""
    cluster_ttl: float = 15.0


# "open": anyone logged in; "admins": only admins (and chatd-admin add-user); "off": no one.
REGISTRATION = ("open", "admins", "off")
HISTORY_MAX = 1000

_SERVER_TYPES = {"listen": list, "room": str, "data_dir": str, "motd": str,
                 "rooms": list, "open_rooms": bool, "registration": str, "history": int}


def _check_table(table: dict, cls, where: str) -> dict:
    known = {f.name: f for f in fields(cls)}
    out = {}
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"unknown key {where}.{key}")
        default = getattr(cls(), key)
        if isinstance(default, float) and type(value) is int:
            value = float(value)
        if type(value) is not type(default):
            kind = "number" if isinstance(default, float) else type(default).__name__
            raise ConfigError(
                f"{where}.{key} must be a {kind}, not {type(value).__name__}"
            )
        out[key] = value
    return out


def load(path: str | Path | None) -> Settings:
    """Settings from the file at path (or the defaults if path is None)."""
    settings = Settings()
    if path is None:
        return settings
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path}: {e}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {path} is not UTF-8 (byte {e.start})") from e
    unknown = set(doc) - {"server", "limits", "metrics", "irc", "web", "cluster"}
    if unknown:
        raise ConfigError(f"unknown table [{sorted(unknown)[0]}] in {path}")
    for table in ("server", "limits", "metrics", "irc", "web", "cluster"):
        if not isinstance(doc.get(table, {}), dict):
            raise ConfigError(f"{table} must be a table: [{table}]")
    server = dict(doc.get("server", {}))
    limits = _check_table(doc.get("limits", {}), Limits, "limits")
    server_values = {}
    for key, value in server.items():
        if key not in _SERVER_TYPES:
            raise ConfigError(f"unknown key server.{key}")
        kind = _SERVER_TYPES[key]
        if type(value) is not kind:  # not isinstance: true is no int
            raise ConfigError(f"server.{key} must be a {kind.__name__}")
        server_values[key] = value
    if "listen" in server_values and not all(
        isinstance(item, str) for item in server_values["listen"]
    ):
        raise ConfigError("server.listen must be a list of endpoint strings")
    if "motd" in server_values:
        lines = server_values["motd"].splitlines() or [""]
        server_values["motd"] = "\n".join(clean(line) for line in lines)
    if len(server_values.get("room", "").splitlines()) > 1:
        raise ConfigError("server.room must be one line")
    irc_listen, irc_name = _irc(doc.get("irc", {}))
    web_listen, web_origins = _web(doc.get("web", {}))
    settings = Settings(**server_values, limits=Limits(**limits),
                        metrics=_metrics_listen(doc.get("metrics", {})),
                        irc=irc_listen, irc_server_name=irc_name,
                        web=web_listen, web_origins=web_origins,
                        **_cluster(doc.get("cluster", {})))
    _check_server(settings)
    settings.limits.check()
    return settings


def _check_server(settings: Settings) -> None:
    """The [server] values a type cannot check: room names follow the username rule."""
    if not valid_name(settings.room):
        raise ConfigError(f"server.room {settings.room!r} is not a valid room name:"
                          f" use {NAME_RULE}")
    seen: dict[str, str] = {}
    for room in settings.rooms:
        if not isinstance(room, str) or not valid_name(room):
            raise ConfigError(f"server.rooms: {room!r} is not a valid room name:"
                              f" use {NAME_RULE}")
        if name_key(room) in seen:
            raise ConfigError(f"server.rooms names {seen[name_key(room)]!r} twice"
                              f" (as {room!r}: room names ignore case)")
        seen[name_key(room)] = room
    if settings.registration not in REGISTRATION:
        raise ConfigError(f"server.registration must be \"open\", \"admins\" or \"off\","
                          f" not {settings.registration!r}")
    if not 0 <= settings.history <= HISTORY_MAX:
        raise ConfigError(f"server.history must be at least 0 (off) and at most {HISTORY_MAX}")


def _irc(table: dict) -> tuple[list[str], str]:
    """[irc] listen (endpoint strings) and server_name."""
    for key in table:
        if key not in ("listen", "server_name"):
            raise ConfigError(f"unknown key irc.{key}")
    listen = table.get("listen", [])
    if not isinstance(listen, list) or not all(isinstance(item, str) for item in listen):
        raise ConfigError("irc.listen must be a list of endpoint strings")
    name = table.get("server_name", "")
    if not isinstance(name, str) or any(c in name for c in " \t\r\n:!@\0"):
        raise ConfigError("irc.server_name must be a host-like name (no spaces, ':', '!' or '@')")
    return listen, name


_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def _web(table: dict) -> tuple[list[str], list[str]]:
    """[web] listen (endpoint strings) and origins (scheme://host[:port])."""
    for key in table:
        if key not in ("listen", "origins"):
            raise ConfigError(f"unknown key web.{key}")
    listen = table.get("listen", [])
    if not isinstance(listen, list) or not all(isinstance(item, str) for item in listen):
        raise ConfigError("web.listen must be a list of endpoint strings")
    origins = table.get("origins", [])
    if not isinstance(origins, list) or not all(
            isinstance(item, str) and _ORIGIN.fullmatch(item) for item in origins):
        raise ConfigError('web.origins must be a list of origins such as'
                          ' "https://chat.example.org" (scheme://host[:port], no path)')
    return listen, origins


def _cluster(table: dict) -> dict:
    """[cluster] redis (a redis:// or rediss:// URL), node and ttl."""
    types = {"redis": str, "node": str, "ttl": (int, float)}
    out = {}
    for key, value in table.items():
        if key not in types:
            raise ConfigError(f"unknown key cluster.{key}")
        if not isinstance(value, types[key]) or isinstance(value, bool):
            raise ConfigError(f"cluster.{key} has the wrong type")
        out["cluster" if key == "redis" else f"cluster_{key}"] = value
    if "cluster_ttl" in out and not 1 <= out["cluster_ttl"] <= 3600:
        raise ConfigError("cluster.ttl must be at least 1 and at most 3600 seconds")
    out.setdefault("cluster_ttl", 15.0)
    out["cluster_ttl"] = float(out["cluster_ttl"])
    return out


def check_cluster(settings: Settings) -> None:
    """The cluster URL and node name, checked (also when given as options)."""
    if settings.cluster:
        from chatd.cluster.url import parse
        try:
            parse(settings.cluster)
        except ValueError as e:
            raise ConfigError(f"cluster: {e}") from None
        try:
            import txredisapi  # noqa: F401
        except ImportError:
            raise ConfigError("--cluster needs the Redis client: pip install"
                              " 'chatd[cluster]' (txredisapi)") from None
    if settings.cluster_node and not re.fullmatch(r"[A-Za-z0-9._-]{1,64}",
                                                  settings.cluster_node):
        raise ConfigError("cluster.node must be 1-64 letters, digits, '.', '_' or '-'")


def _metrics_listen(table: dict) -> list[str]:
    """[metrics] listen: endpoint strings for the /metrics page."""
    for key in table:
        if key != "listen":
            raise ConfigError(f"unknown key metrics.{key}")
    listen = table.get("listen", [])
    if not isinstance(listen, list) or not all(isinstance(item, str) for item in listen):
        raise ConfigError("metrics.listen must be a list of endpoint strings")
    return listen
