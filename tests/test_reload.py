"""Live reload (SIGHUP): ReloadService.reload() against a room of StringTransport users."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs, formatEvent
from twisted.trial import unittest

from chatd import config
from chatd.reload import ReloadService
from chatd.tap import Listener, Options, makeService
from chatd.tls import RenewableTLS
from tests.helpers import ProtocolHarness
from tests.helpers_client import make_cert


def conf(room: str = "testroom", motd: str = "", **limits) -> str:
    """A config file's text; the limits not given are chatd's defaults."""
    lines = ["[server]", f"room = {room!r}", f"motd = {motd!r}", "[limits]"]
    return "\n".join(lines + [f"{key} = {value!r}" for key, value in limits.items()]) + "\n"


START = conf()


def messages(events) -> list[str]:
    """The text of each logged event, as the log file would show it."""
    return [formatEvent(e) for e in events]


class ReloadTestCase(unittest.TestCase):
    def setUp(self):
        self.dir = Path(self.mktemp())
        self.dir.mkdir(parents=True)
        self.path = self.dir / "chatd.toml"
        self.path.write_text(START)
        self.h = ProtocolHarness(self.dir, admins={"boss": "boss-password"},
                                 **vars(config.load(self.path).limits))
        self.reloader = ReloadService(lambda: config.load(self.path), config.load(self.path),
                                      self.h.factory, self.h.admin_file, [], self.h.clock)
        self.reloader.startService()
        self.addCleanup(self.reloader.stopService)

    def reload(self, text: str | None = None) -> tuple[bool, list[str]]:
        if text is not None:
            self.path.write_text(text)
        with capturedLogs() as events:
            ok = self.reloader.reload()
        return ok, messages(events)


class LiveSettingsTests(ReloadTestCase):
    def test_idle_timeout_turned_on_and_shortened_for_users_connected(self):
        """idle_timeout switched on by a reload disconnects a user who was
        already logged in and silent, counting from their last line; a later
        reload that shortens it applies at once, not after the old wait."""
        alice, bob = self.h.login("alice"), self.h.login("bob")
        self.h.read(alice), self.h.read(bob)
        self.reload(conf(idle_timeout=600))
        self.h.clock.advance(300)
        self.h.send(bob, "still here")
        self.reload(conf(idle_timeout=400))
        self.h.clock.advance(100)  # alice: 400 s silent
        self.assertEqual(self.h.read(alice), ["<bob> still here", "! idle timeout"])
        self.assertTrue(self.h.closed(alice))
        self.assertEqual(self.h.read(bob), ["* alice left (idle timeout)"])
        self.assertFalse(self.h.closed(bob))

    def test_motd_room_and_limits_change_for_everyone_connected(self):
        """After a reload the two users still connected are held to the new
        flood_burst and max_line at once, and a new login sees the new room
        name and motd; the log says what changed."""
        alice, bob = self.h.login("alice"), self.h.login("bob")
        self.h.read(alice)
        ok, log = self.reload(conf(room="hall", motd="be kind", flood_burst=2, max_line=100))
        self.assertTrue(ok)
        self.assertEqual(log, ["reload: room 'testroom' -> 'hall', motd changed, "
                               "limits.max_line 2048 -> 100, limits.flood_burst 5 -> 2"])
        self.h.send(alice, "one", "two", "three")
        self.assertEqual(self.h.read(bob), ["<alice> one", "<alice> two"])
        self.assertEqual(self.h.read(alice), ["! slow down"])
        self.h.clock.advance(10)
        self.h.send(bob, "x" * 101)
        self.assertEqual(self.h.read(bob), ["! line too long (max 100 bytes): dropped"])
        self.assertFalse(self.h.closed(alice) or self.h.closed(bob))
        carol = self.h.connect()
        self.assertEqual(self.h.read(carol), ["* welcome to hall", "? username"])
        self.h.send(carol, "carol")
        lines = self.h.read(carol)
        self.assertEqual(lines[0], "* logged in as carol in hall")
        self.assertIn("* be kind", lines)

    def test_raised_flood_burst_applies_at_once(self):
        """Raising flood_burst lets a user who was being refused say more right away."""
        self.reload(conf(flood_burst=1, flood_rate=0.001))
        alice, bob = self.h.login("alice"), self.h.login("bob")
        self.h.read(alice)
        self.h.send(alice, "a", "b")
        self.assertEqual(self.h.read(alice), ["! slow down"])
        self.reload(conf(flood_burst=3, flood_rate=1.0))
        self.h.clock.advance(3)
        self.h.send(alice, "c", "d", "e", "f")
        self.assertEqual(self.h.read(bob), ["<alice> a", "<alice> c", "<alice> d", "<alice> e"])
        self.assertEqual(self.h.read(alice), ["! slow down"])

    def test_raised_flood_kick_applies_to_a_user_already_refused(self):
        """After flood_kick is raised, a flooder who was already being refused is
        kicked once past the new count (not never, nor at the old one)."""
        self.reload(conf(flood_kick=3, flood_rate=0.001))
        alice, bob = self.h.login("alice"), self.h.login("bob")
        self.h.send(alice, *[f"l{i}" for i in range(7)])  # 5 said, 2 refused
        self.reload(conf(flood_kick=6, flood_rate=0.001))
        self.h.send(alice, "r3", "r4", "r5", "r6")
        self.assertFalse(self.h.closed(alice))
        self.assertEqual(self.h.read(alice)[-1], "! slow down")
        self.h.send(alice, "r7")
        self.assertIn("* alice was kicked by server: flooding", self.h.read(bob))

    def test_login_failures_follow_reload(self):
        """A lower login_failures shuts out an address at the new count."""
        self.reload(conf(login_failures=1))
        for _ in range(2):
            proto = self.h.connect()
            self.h.send(proto, "boss", "wrong")
        self.assertEqual(self.h.read(proto)[-1], "! too many failed logins, try later")

    def test_unchanged_file_changes_nothing(self):
        """Reloading the same file says so and leaves everyone as they were."""
        alice = self.h.login("alice")
        ok, log = self.reload()
        self.assertTrue(ok)
        self.assertEqual(log, ["reload: nothing changed"])
        self.assertFalse(self.h.closed(alice))

    def test_listen_and_data_dir_need_a_restart(self):
        """A new listen list or data_dir is not applied; the log says a restart
        is needed, and the rest of the file still takes effect."""
        ok, log = self.reload('[server]\nroom = "testroom"\nlisten = ["tcp:5000"]\n'
                              'data_dir = "elsewhere"\nmotd = "hi"\n')
        self.assertTrue(ok)
        self.assertEqual(log, [
            "reload: listen and data_dir changed in the config file: restart chatd for that",
            "reload: motd changed",
        ])
        self.assertEqual(self.h.server.motd, "hi")


class BrokenConfigTests(ReloadTestCase):
    def test_broken_file_keeps_the_running_config(self):
        """A syntax error, an unknown key, a bad value or a missing file is refused
        with one log line; the room keeps its settings and everyone stays."""
        self.reload(conf(motd="v2", flood_burst=2))
        alice, bob = self.h.login("alice"), self.h.login("bob")
        self.h.read(alice)
        for text, why in [
            ('[server]\nmotd = "v3"\n[limits\n', "config file"),
            (conf(motd="v3", flood_brust=9), "unknown key limits.flood_brust"),
            (conf(motd="v3", flood_burst=0), "limits.flood_burst must be"),
            (conf(motd="v3", max_line="9"), "limits.max_line must be"),
        ]:
            ok, log = self.reload(text)
            self.assertFalse(ok)
            self.assertEqual(len(log), 1, log)
            self.assertTrue(log[0].startswith(
                "reload refused, still running with the previous config: "), log)
            self.assertIn(why, log[0])
        self.path.unlink()
        ok, log = self.reload()
        self.assertEqual((ok, len(log)), (False, 1))
        self.assertIn("cannot read config file", log[0])
        self.assertEqual(self.h.server.motd, "v2")
        self.h.send(alice, "one", "two", "three")
        self.assertEqual(self.h.read(bob), ["<alice> one", "<alice> two"])
        self.assertEqual(self.h.read(alice), ["! slow down"])
        self.assertFalse(self.h.closed(alice) or self.h.closed(bob))


    def test_file_that_is_not_utf8_refused_in_one_line(self):
        """A config file saved in another encoding is refused with one log
        line naming the problem, not a traceback; the motd stays."""
        self.reload(conf(motd="v2"))
        self.path.write_bytes(b'[server]\nmotd = "caf\xe9"\n')
        ok, log = self.reload()
        self.assertEqual((ok, len(log)), (False, 1), log)
        self.assertIn("is not UTF-8", log[0])
        self.assertEqual(self.h.server.motd, "v2")


class AdminReloadTests(ReloadTestCase):
    def test_admins_added_and_removed_are_logged_by_name(self):
        """Admin accounts added or removed with chatd-admin are named in the log
        (never a hash); a removed admin who is logged in loses admin powers
        but stays connected."""
        boss = self.h.login("boss", "boss-password")
        self.h.read(boss)
        self.h.admin_file.set_password("Carol", "carol-password")
        self.h.admin_file.remove("boss")
        ok, log = self.reload()
        self.assertEqual(log, ["reload: admins added: Carol, admins removed: boss, "
                               "boss is no longer an admin"])
        self.h.login("mallory")
        self.h.read(boss)
        self.h.send(boss, "/kick mallory")
        self.assertEqual(self.h.read(boss), ["! permission denied"])
        self.assertFalse(self.h.closed(boss))
        self.assertTrue(self.h.server.is_admin_name("carol"))

    def test_reload_rereads_an_admins_file_that_looks_unchanged(self):
        """Even an edit that keeps the file's size, inode and mtime is read on reload."""
        path = self.h.admin_file.path
        self.assertTrue(self.h.server.is_admin_name("boss"))
        before = path.stat()
        with open(path, "r+b") as f:
            f.write(b"bozz")
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        self.assertTrue(self.h.server.is_admin_name("boss"), "the edit is not seen by itself")
        ok, log = self.reload()
        self.assertEqual(log, ["reload: admins added: bozz, admins removed: boss"])
        self.assertFalse(self.h.server.is_admin_name("boss"))
        self.assertTrue(self.h.server.is_admin_name("bozz"))


class RecordingReactor(MemoryReactorClock):
    def callFromThread(self, f, *args, **kwargs):
        self.callLater(0, f, *args, **kwargs)


class SignalTests(unittest.TestCase):
    def test_sighup_reloads_through_the_reactor(self):
        """makeService wires a SIGHUP handler that reloads in the reactor's turn;
        stopping the service puts the previous handler back."""
        directory = Path(self.mktemp())
        directory.mkdir()
        path = directory / "chatd.toml"
        path.write_text(START)
        options = Options()
        options.parseOptions(["--config", str(path), "--data-dir", str(directory / "data"),
                              "--listen", "tcp:0:interface=127.0.0.1"])
        reactor = RecordingReactor()
        svc = makeService(options, reactor)
        previous = signal.getsignal(signal.SIGHUP)
        svc.privilegedStartService()
        svc.startService()
        self.addCleanup(lambda: svc.running and svc.stopService())
        # Without a handler the signal would end the whole test run, not fail one test.
        self.assertNotIn(signal.getsignal(signal.SIGHUP), (signal.SIG_DFL, previous))
        path.write_text(conf(motd="after the signal"))
        with capturedLogs() as events:
            signal.raise_signal(signal.SIGHUP)
            self.assertEqual(messages(events), [], "nothing happens inside the handler")
            reactor.advance(0)
        self.assertEqual(messages(events), ["reload: motd changed"])
        svc.stopService()
        self.assertEqual(signal.getsignal(signal.SIGHUP), previous)


class TerminalTests(unittest.TestCase):
    """In the foreground at a terminal (make run), SIGHUP keeps meaning hangup."""

    def service(self, gone: list[bool], nohup: bool = False):
        reactor = RecordingReactor()
        reactor.running = True
        directory = Path(self.mktemp())
        directory.mkdir()
        h = ProtocolHarness(directory)
        previous = signal.signal(signal.SIGHUP, signal.SIG_IGN if nohup else signal.SIG_DFL)
        self.addCleanup(signal.signal, signal.SIGHUP, previous)
        svc = ReloadService(lambda: config.load(None), config.load(None), h.factory,
                            h.admin_file, [], reactor, terminal=99,
                            terminal_gone=lambda fd: gone[0])
        svc.startService()
        self.addCleanup(lambda: svc.running and svc.stopService())
        return svc, reactor

    def test_terminal_that_hangs_up_after_the_signal_stops_chatd(self):
        """A SIGHUP that comes while the terminal still answers reloads; once the
        terminal has hung up (tmux signals first, then closes) chatd stops
        within a second, signal or not."""
        gone = [False]
        svc, reactor = self.service(gone)
        with capturedLogs() as events:
            signal.raise_signal(signal.SIGHUP)
            reactor.advance(0)
        self.assertEqual(len(messages(events)), 1)
        self.assertTrue(messages(events)[0].startswith("reload: "), messages(events))
        self.assertFalse(reactor.hasStopped)
        gone[0] = True
        reactor.advance(1.0)
        self.assertTrue(reactor.hasStopped)

    def test_hangup_signal_with_the_terminal_gone_stops_at_once(self):
        """SIGHUP with the terminal already hung up stops chatd and does not reload."""
        svc, reactor = self.service([True])
        with capturedLogs() as events:
            signal.raise_signal(signal.SIGHUP)
            reactor.advance(0)
        self.assertEqual(messages(events), ["the terminal has gone: stopping"])
        self.assertTrue(reactor.hasStopped)

    def test_under_nohup_chatd_carries_on(self):
        """Started under nohup, chatd keeps serving when its terminal goes."""
        svc, reactor = self.service([True], nohup=True)
        with capturedLogs() as events:
            signal.raise_signal(signal.SIGHUP)
            reactor.advance(0)
            reactor.advance(5.0)
        self.assertEqual(messages(events), ["the terminal has gone; carrying on, as nohup asked"])
        self.assertFalse(reactor.hasStopped)


class RenewableTLSListenerTests(unittest.TestCase):
    def test_ssl_endpoint_keeps_its_options_and_renews(self):
        """An ssl: listener keeps the port, interface and backlog its string gives
        while listening through a renewable certificate."""
        if shutil.which("openssl") is None:
            raise unittest.SkipTest("needs openssl (tests/ensure-tools.sh openssl)")
        directory = Path(self.mktemp())
        directory.mkdir()
        key, cert = make_cert(directory, "a", "IP:127.0.0.1")
        options = Options()
        options.parseOptions([
            "--data-dir", str(directory / "data"), "--listen",
            f"ssl:4443:privateKey={key}:certKey={cert}:interface=127.0.0.1:backlog=7"])
        reactor = RecordingReactor()
        svc = makeService(options, reactor)
        svc.privilegedStartService()
        svc.startService()
        self.addCleanup(svc.stopService)
        [(port, _, creator, backlog, interface)] = reactor.sslServers
        self.assertEqual((port, backlog, interface), (4443, 7, "127.0.0.1"))
        self.assertIsInstance(creator, RenewableTLS)
        [listener] = [s for s in svc if isinstance(s, Listener)]
        self.assertIsNone(listener.reload_tls(), "same files: nothing to say")
        make_cert(directory, "a", "IP:127.0.0.1")
        self.assertIn("CN=a, expires ", listener.reload_tls())


class RoomSettingsReloadTests(ReloadTestCase):
    def test_rooms_open_rooms_and_registration_change_while_running(self):
        """A reload that closes rooms and registration applies to the next
        /join and /register of users already connected; a room it configures
        exists at once, and one it no longer configures goes when empty."""
        alice = self.h.login("alice")
        self.h.read(alice)
        ok, log = self.reload('[server]\nroom = "testroom"\nrooms = ["games"]\n'
                              'open_rooms = false\nregistration = "off"\n')
        self.assertTrue(ok)
        self.assertEqual(log, ["reload: room games added, open_rooms off, "
                               "registration open -> off"])
        self.h.send(alice, "/join lounge", "/register", "/rooms", "/join games")
        self.assertEqual(self.h.read(alice), [
            "! no such room: lounge (/rooms lists them)",
            "! registration is off on this server",
            "* rooms (2): games (0), testroom (1)",
            "* you are in games", "* online (1): alice",
        ])
        ok, log = self.reload(START)
        self.assertEqual(log, ["reload: room games no longer configured, open_rooms on, "
                               "registration off -> open"])
        self.h.clock.advance(10)  # the flood bucket refills
        self.h.send(alice, "/part", "/rooms")
        self.assertEqual(self.h.read(alice)[-1], "* rooms (1): testroom (1)")
