"""Live reload: SIGHUP (`systemctl reload`) re-reads the config and admins files.

What the server runs on is changed in place, without disconnecting anyone:
the landing room's name, the configured rooms, open_rooms, registration,
history, the motd, every [limits] key (the one Limits object that every
connection reads at use), the admin accounts, and the certificate and key
of TLS listeners (for new connections).  Listen endpoints and the data
directory cannot change while running: if the file changes them, the log
says a restart is needed and the rest still applies.  A config file that
does not load is refused whole, with one log line, and nothing changes.

SIGHUP also means "your terminal has gone".  So in the foreground at a
terminal (`twistd -n`, `make run`) chatd stops when its terminal hangs up,
as it always did (unless nohup asked it not to), and `kill -HUP` while the
terminal is there reloads.  The hangup signal can come a moment before the
terminal reads as hung up (tmux signals, then closes), so the terminal is
also looked at once a second, which costs one ioctl.
"""

from __future__ import annotations

import os
import signal
import termios
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Protocol

from twisted.application import service
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from chatd import config
from chatd.core.auth import AdminFile, UserFile
from chatd.core.errors import RoomError
from chatd.line.factory import ChatFactory
from chatd.tls import CertificateError

log = Logger()

# Settings that only a restart can change.
RESTART_ONLY = ("listen", "data_dir", "metrics", "irc", "irc_server_name", "web", "web_origins")


class Renewable(Protocol):
    """A listener (chatd.tap.Listener) whose TLS certificate can be renewed."""

    description: str

    def reload_tls(self) -> str | None: ...


class ReloadService(service.Service):
    """Installs the SIGHUP handler while running; reload() does the work."""

    def __init__(self, read_settings: Callable[[], config.Settings],
                 running: config.Settings, factory: ChatFactory, admins: AdminFile,
                 listeners: Sequence[Renewable], reactor: IReactorFromThreads,
                 terminal: int | None = None,
                 terminal_gone: Callable[[int], bool] | None = None,
                 users: UserFile | None = None):
        """terminal: the fd of the terminal chatd runs at (found at start if
        None); terminal_gone(fd) says if it has hung up (tests replace it)."""
        self._read_settings = read_settings
        self._running = running
        self._factory = factory
        self._admins = admins
        self._users = users
        self._user_count: int | None = None  # registered names, as last read
        self._listeners = listeners
        self._reactor = reactor
        self._admin_names: set[str] = set()
        self._previous_handler = None
        self._installed = False
        self._terminal = terminal  # the terminal we run at, by fd
        self._terminal_gone = terminal_gone or _hung_up
        self._watch: LoopingCall | None = None

    def startService(self) -> None:
        service.Service.startService(self)
        self._admin_names = set(self._admins.names())
        if self._users is not None:
            try:
                self._user_count = len(self._users.names())
            except (OSError, ValueError):
                pass  # said at the first login or reload that reads it
        if self._terminal is None:
            self._terminal = next((fd for fd in (0, 1, 2) if os.isatty(fd)), None)
        self._previous_handler = signal.signal(signal.SIGHUP, self._on_sighup)
        self._installed = True
        if self._terminal is not None and self._previous_handler != signal.SIG_IGN:
            self._watch = LoopingCall(self._check_terminal)
            self._watch.clock = self._reactor
            self._watch.start(1.0, now=False)

    def stopService(self):
        service.Service.stopService(self)
        if self._watch is not None and self._watch.running:
            self._watch.stop()
        self._watch = None
        if self._installed:
            self._installed = False
            previous, self._previous_handler = self._previous_handler, None
            # None: it was not set from Python, so it was the default.
            signal.signal(signal.SIGHUP, signal.SIG_DFL if previous is None else previous)

    def _on_sighup(self, signum, frame) -> None:
        # A signal handler runs between any two bytecodes, maybe inside the
        # reactor: do the work in the reactor's own time, as Twisted does for SIGINT.
        self._reactor.callFromThread(self._sighup)

    def _sighup(self) -> None:
        """Reload, unless the signal says the terminal chatd runs at has gone."""
        if not self._check_terminal():
            self.reload()

    def _check_terminal(self) -> bool:
        """If the terminal chatd runs at has hung up, stop chatd (or, under
        nohup, carry on); True if it has."""
        if self._terminal is None or not self._terminal_gone(self._terminal):
            return False
        if self._previous_handler == signal.SIG_IGN:
            log.info("the terminal has gone; carrying on, as nohup asked")
        elif self.running:
            log.info("the terminal has gone: stopping")
            if self._watch is not None and self._watch.running:
                self._watch.stop()
            self._reactor.stop()
        return True

    def reload(self) -> bool:
        """Apply the config and admins files as they are now; False if refused."""
        try:
            new = self._read_settings()
        except config.ConfigError as e:
            log.error("reload refused, still running with the previous config: {why}",
                      why=str(e))
            return False
        changes = self._apply(new)
        changes += self._reload_admins()
        changes += self._reload_users()
        changes += self._reload_tls()
        restart = [key for key in RESTART_ONLY
                   if getattr(new, key) != getattr(self._running, key)]
        if restart:
            log.warn("reload: {keys} changed in the config file: restart chatd for that",
                     keys=" and ".join(restart))
        log.info("reload: {changes}", changes=", ".join(changes) or "nothing changed")
        return True

    def _apply(self, new: config.Settings) -> list[str]:
        """Rooms, motd and limits, changed in place; what changed."""
        changes = []
        server = self._factory.server
        room = server.landing
        if new.room != room.name:
            old = room.name
            try:
                server.rename_room(room, new.room)
                changes.append(f"room {old!r} -> {new.room!r}")
            except RoomError as e:
                log.error("reload: the landing room keeps its name: {why}", why=str(e))
        changes += server.configure(new.rooms, new.open_rooms, new.registration)
        if server.history is not None and server.history.limit != new.history:
            changes.append(f"history {server.history.limit} -> {new.history}")
            server.history.limit = new.history
        if new.motd != server.motd:
            changes.append("motd changed")
            server.motd = new.motd
        limits = self._factory.limits
        for f in fields(limits):
            old, value = getattr(limits, f.name), getattr(new.limits, f.name)
            if old != value:
                changes.append(f"limits.{f.name} {old} -> {value}")
                setattr(limits, f.name, value)
        if any(change.startswith("limits.") for change in changes):
            self._factory.limits_changed()
        return changes

    def _reload_admins(self) -> list[str]:
        """Read the admins file even if it looks unchanged; who was added or removed."""
        try:
            names = set(self._admins.reread())
        except (OSError, ValueError) as e:
            log.error("reload: cannot read {path}: {why}", path=str(self._admins.path),
                      why=getattr(e, "strerror", None) or str(e))
            return []
        before, self._admin_names = self._admin_names, names
        changes = []
        if names - before:
            changes.append("admins added: " + " ".join(sorted(names - before)))
        if before - names:
            changes.append("admins removed: " + " ".join(sorted(before - names)))
        # An admin whose account is gone keeps no powers, even if logged in.
        # (A new admin who is in the room without a password stays a user.)
        for member in self._factory.server.users:
            if member.admin and not self._admins.is_admin(member.name):
                member.admin = False
                changes.append(f"{member.name} is no longer an admin")
        return changes

    def _reload_users(self) -> list[str]:
        """Read the registered users' file again; how many names it holds."""
        if self._users is None:
            return []
        try:
            count = len(self._users.reread())
        except (OSError, ValueError) as e:
            log.error("reload: cannot read {path}: {why}", path=str(self._users.path),
                      why=getattr(e, "strerror", None) or str(e))
            return []
        if count != self._user_count:
            self._user_count = count
            return [f"{count} registered names"]
        return []

    def _reload_tls(self) -> list[str]:
        changes = []
        for listener in self._listeners:
            try:
                renewed = listener.reload_tls()
            except CertificateError as e:
                log.error("reload: {endpoint} keeps its current certificate, the files"
                          " did not load: {why}", why=str(e), endpoint=listener.description)
                continue
            if renewed is not None:
                changes.append(f"new certificate for {listener.description} ({renewed})")
        return changes


def _hung_up(fd: int) -> bool:
    """True if the terminal on fd has hung up (its calls then fail with EIO)."""
    try:
        termios.tcgetattr(fd)
    except (termios.error, OSError):
        return True
    return False
