"""Wiring: options, the config file, and makeService, without opening sockets."""

from pathlib import Path

from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial import unittest

from chatd import config
from chatd.tap import Listener, ListenError, Options, makeService

ROOT = Path(__file__).resolve().parent.parent


class OptionsTests(unittest.TestCase):
    def parse(self, *argv):
        options = Options()
        options.parseOptions(list(argv))
        return options.settings

    def test_defaults(self):
        """With no options chatd listens on tcp:4000 and keeps its data in var/."""
        settings = self.parse()
        self.assertEqual(settings.listen, ["tcp:4000"])
        self.assertEqual(settings.data_dir, "var")
        self.assertEqual(settings.limits.max_line, 2048)

    def test_sample_config_is_the_defaults(self):
        """etc/chatd.toml documents every key with its default value."""
        self.assertEqual(config.load(ROOT / "etc" / "chatd.toml"), config.Settings())

    def test_options_override_config(self):
        """--listen (repeatable) and --data-dir win over the config file."""
        path = Path(self.mktemp())
        path.write_text('[server]\nlisten = ["tcp:5000"]\ndata_dir = "x"\n'
                        'room = "lobby"\nmotd = "hi"\n[limits]\nmax_line = 512\n')
        settings = self.parse("--config", str(path))
        self.assertEqual((settings.listen, settings.data_dir, settings.room,
                          settings.motd, settings.limits.max_line),
                         (["tcp:5000"], "x", "lobby", "hi", 512))
        settings = self.parse("--config", str(path), "--listen", "tcp:1",
                              "--listen", "tcp:2", "--data-dir", "y")
        self.assertEqual((settings.listen, settings.data_dir), (["tcp:1", "tcp:2"], "y"))

    def test_bad_config_is_a_usage_error(self):
        """A typo, a wrong type, bad TOML or a missing file is a clear usage error."""
        path = Path(self.mktemp())
        for text, expected in [
            ("[server]\nlisen = []\n", "unknown key server.lisen"),
            ("[server]\nroom = 3\n", "server.room must be a str"),
            ("[limits]\nmax_line = '9'\n", "limits.max_line must be a int"),
            ("[limits]\nflood_rate = true\n", "limits.flood_rate must be a number"),
            ("[servers]\n", "unknown table [servers]"),
            ("[server\n", "config file"),
            ('server = "x"\n', "server must be a table"),
            ("limits = 3\n", "limits must be a table"),
            ("[limits]\nlogin_timeout = nan\n", "limits.login_timeout must be more than 0"),
            ("[limits]\nflood_kick = 9223372036854775807\n", "at most 1000000000"),
            ('[server]\nroom = "a\\nb"\n', "server.room must be one line"),
        ]:
            path.write_text(text)
            error = self.assertRaises(usage.UsageError, self.parse, "--config", str(path))
            self.assertIn(expected, str(error))
        error = self.assertRaises(usage.UsageError, self.parse, "--config", "/nonexistent.toml")
        self.assertIn("cannot read config file", str(error))


class RoomKeysTests(unittest.TestCase):
    """[server] rooms, open_rooms, registration and history."""

    def load(self, text: str) -> config.Settings:
        path = Path(self.mktemp())
        path.write_text("[server]\n" + text + "\n")
        return config.load(path)

    def test_defaults(self):
        """Out of the box: no extra rooms, /join creates rooms, anyone may /register,
        and the last 50 lines of a room are shown to whoever joins it."""
        settings = config.load(None)
        self.assertEqual((settings.rooms, settings.open_rooms, settings.registration,
                          settings.history), ([], True, "open", 50))

    def test_values_accepted(self):
        """Every documented value loads as written."""
        settings = self.load('rooms = ["games", "Help.desk", "chatd"]\nopen_rooms = false\n'
                             'registration = "admins"\nhistory = 0\nroom = "lobby"')
        self.assertEqual((settings.rooms, settings.open_rooms, settings.registration,
                          settings.history, settings.room),
                         (["games", "Help.desk", "chatd"], False, "admins", 0, "lobby"))
        self.assertEqual(self.load('registration = "off"').registration, "off")
        self.assertEqual(self.load("history = 1000").history, 1000)

    def test_bad_values_refused(self):
        """A room name no one could /join, a room listed twice, an unknown
        registration mode or a history too long is a clear config error."""
        for text, expected in [
            ('rooms = ["games", "two words"]', "server.rooms: 'two words' is not a valid room"),
            ('rooms = ["games", 3]', "server.rooms: 3 is not a valid room name"),
            ('rooms = ["x" ]\nroom = "#chat"', "server.room '#chat' is not a valid room name"),
            ('room = ""', "server.room '' is not a valid room name"),
            ('room = "the room"', "use 1-24 letters, digits"),
            ('rooms = ["Games", "games"]', "server.rooms names 'Games' twice"),
            ('rooms = "games"', "server.rooms must be a list"),
            ("open_rooms = 1", "server.open_rooms must be a bool"),
            ('registration = "closed"', 'must be "open", "admins" or "off", not \'closed\''),
            ("registration = true", "server.registration must be a str"),
            ("history = -1", "server.history must be at least 0 (off) and at most 1000"),
            ("history = 1001", "server.history must be at least 0 (off) and at most 1000"),
            ("history = 2.5", "server.history must be a int"),
            ("history = true", "server.history must be a int"),
        ]:
            error = self.assertRaises(config.ConfigError, self.load, text)
            self.assertIn(expected, str(error))


class MakeServiceTests(unittest.TestCase):
    def make(self, *argv):
        self.data = Path(self.mktemp()) / "data"
        options = Options()
        options.parseOptions(["--data-dir", str(self.data), *argv])
        self.reactor = MemoryReactorClock()
        return makeService(options, self.reactor)

    def test_one_listener_per_endpoint(self):
        """Each --listen becomes a listener, and the data directory is created at start.

        Not before: makeService runs as root, before twistd drops to --uid.
        """
        svc = self.make("--listen", "tcp:4001", "--listen", "tcp:4002:interface=127.0.0.1")
        self.assertFalse(self.data.exists())
        listeners = [s for s in svc if isinstance(s, Listener)]
        self.assertEqual([s.description for s in listeners],
                         ["tcp:4001", "tcp:4002:interface=127.0.0.1"])
        svc.privilegedStartService()
        self.assertFalse(self.data.exists())
        svc.startService()
        self.assertTrue(self.data.is_dir())
        self.assertEqual([(port, iface) for port, _, _, iface in self.reactor.tcpServers],
                         [(4001, ""), (4002, "127.0.0.1")])
        svc.stopService()

    def test_first_start_creates_admin(self):
        """The first start with no admins creates 'admin' in DATA_DIR/admins."""
        svc = self.make("--listen", "tcp:4001")
        svc.privilegedStartService()
        svc.startService()
        self.addCleanup(svc.stopService)
        self.assertIn("admin:scrypt$", (self.data / "admins").read_text())

    def test_bad_endpoint(self):
        """A malformed endpoint string stops startup with a clear error."""
        svc = self.make("--listen", "nonsense:1")
        error = self.assertRaises(ListenError, svc.privilegedStartService)
        self.assertIn("bad endpoint 'nonsense:1'", str(error))
