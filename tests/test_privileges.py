"""`twistd --uid nobody --gid nogroup chatd`: the data files belong to the user chatd runs as.

twistd binds ports as root, drops privileges, then starts the services.  These
tests run the real twistd as root (as this project's machines and CI do)
and check what an operator sees on a first run under an unprivileged user.
"""

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from twisted.trial import unittest

from tests.helpers_daemon import spawn
from tests.helpers_hostile import wait_for
from tests.test_twistd import DEADLINE, TWISTD, free_port, login

USER = "nobody"


def nobody_group() -> str:
    """Debian calls nobody's group nogroup; other systems call it nobody."""
    found = subprocess.run(["getent", "group", "nogroup"], capture_output=True)
    return "nogroup" if found.returncode == 0 else "nobody"


class UnprivilegedTests(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root: twistd --uid only drops privileges from root")
        try:
            self.uid = pwd.getpwnam(USER).pw_uid
        except KeyError:
            raise unittest.SkipTest(f"no user {USER!r} on this machine") from None
        self.group = nobody_group()
        # pytest's and trial's temporary directories may be 0700: nobody must
        # be able to reach this one.
        self.dir = Path(tempfile.mkdtemp(prefix="chatd-uid-"))
        self.addCleanup(shutil.rmtree, self.dir)
        self.dir.chmod(0o755)
        self.port = free_port()

    def argv(self, data: Path, *twistd_options: str) -> list[str]:
        return [TWISTD, "--pidfile=", "--uid", USER, "--gid", self.group,
                *twistd_options, "chatd",
                "--listen", f"tcp:{self.port}:interface=127.0.0.1",
                "--data-dir", str(data)]

    def start(self, data: Path) -> Path:
        out = self.dir / "out.log"
        spawn(self, self.argv(data, "-n"), out, "chatd room")
        return out

    def admin_logs_in_and_bans(self, data: Path) -> None:
        out = self.start(data)
        password = (data / "initial-admin-password").read_text().strip()
        admin = login(self.port, "admin", password)
        mallory = login(self.port, "mallory")
        admin.say("/ban mallory spam")
        self.assertEqual(mallory.until("!"), "! you were banned by admin: spam")
        self.assertEqual(admin.until("* mallory was"), "* mallory was banned by admin: spam")
        for name in ("admins", "chatd.sqlite3", "initial-admin-password"):
            self.assertEqual((data / name).stat().st_uid, self.uid, f"{name} is nobody's")
        self.assertNotIn("Traceback", out.read_text())

    def test_fresh_data_dir(self):
        """A data dir that does not exist yet is created by nobody; admin logs in and bans."""
        parent = self.dir / "srv"
        parent.mkdir()
        os.chown(parent, self.uid, -1)
        data = parent / "chatd"
        self.admin_logs_in_and_bans(data)
        self.assertEqual(data.stat().st_uid, self.uid)

    def test_empty_dir_owned_by_nobody(self):
        """The README's `install -d -o nobody -g nogroup DIR`: admin logs in and bans."""
        data = self.dir / "chatd"
        data.mkdir()
        shutil.chown(data, USER, self.group)
        self.admin_logs_in_and_bans(data)

    def test_root_owned_dir_refused_at_start(self):
        """A data dir nobody cannot write stops chatd at start: status 1 and one clear line."""
        data = self.dir / "chatd"
        data.mkdir()
        result = subprocess.run(self.argv(data, "-n"), capture_output=True, text=True,
                                timeout=DEADLINE)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        output = result.stdout + result.stderr
        self.assertNotIn("Traceback", output)
        lines = [line for line in output.splitlines() if str(data) in line]
        self.assertEqual(len(lines), 1, output)
        self.assertIn(f"chatd: data directory {data} is not writable by nobody: give it to"
                      f" them with: install -d -o nobody -g {self.group} {data}", lines[0])
        self.assertEqual(os.listdir(data), [], "nothing was created as root")

    def test_uncreatable_dir_refused_at_start(self):
        """A data dir nobody cannot create (its parent is root's) stops chatd with one line."""
        data = self.dir / "srv" / "chatd"
        result = subprocess.run(self.argv(data, "-n"), capture_output=True, text=True,
                                timeout=DEADLINE)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn(f"chatd: cannot create data directory {data} as nobody: Permission"
                      f" denied; create it with: install -d -o nobody -g {self.group} {data}",
                      result.stdout)
        self.assertNotIn("Traceback", result.stdout + result.stderr)

    def test_root_owned_dir_refused_in_daemon_mode(self):
        """Daemonized, the operator's terminal shows why, the log has one line, status 1."""
        data = self.dir / "chatd"
        data.mkdir()
        logfile = self.dir / "chatd.log"
        result = subprocess.run(self.argv(data, "--logfile", str(logfile)),
                                capture_output=True, text=True, timeout=DEADLINE)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn(f"data directory {data} is not writable", result.stderr)
        wait_for(lambda: "chatd: data directory" in logfile.read_text(), "the log line")
        log = logfile.read_text()
        self.assertEqual(len([line for line in log.splitlines() if str(data) in line]), 1, log)
        self.assertNotIn("Traceback", log)

    def test_root_owned_file_refused(self):
        """An admins file left by a run as root is named, with the chown that fixes it."""
        data = self.dir / "chatd"
        data.mkdir()
        shutil.chown(data, USER, self.group)
        (data / "admins").write_text("")
        (data / "admins").chmod(0o600)
        result = subprocess.run(self.argv(data, "-n"), capture_output=True, text=True,
                                timeout=DEADLINE)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn(f"chatd: {data / 'admins'} is not writable by nobody: "
                      f"chown nobody:{self.group} {data / 'admins'}", result.stdout)


    def test_chatd_admin_as_root_keeps_the_owner(self):
        """chatd-admin run by root leaves the admins file readable by the nobody chatd."""
        data = self.dir / "chatd"
        data.mkdir()
        shutil.chown(data, USER, self.group)
        subprocess.run([str(Path(TWISTD).parent / "chatd-admin"), "--data-dir", str(data),
                        "add", "boss"], input="long enough password\n", text=True,
                       check=True, capture_output=True, timeout=DEADLINE)
        self.assertEqual((data / "admins").stat().st_uid, self.uid)
        self.start(data)
        login(self.port, "boss", "long enough password").close()
