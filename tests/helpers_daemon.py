"""Starting a real chatd (twistd, python -m chatd, under socket activation) for a test."""

import subprocess
from pathlib import Path

from twisted.trial import unittest

from tests.helpers_hostile import wait_for
from tests.test_twistd import DEADLINE


def spawn(case: unittest.TestCase, argv: list[str], out: Path, ready: str,
          stderr=subprocess.STDOUT, cwd: Path | None = None) -> subprocess.Popen:
    """Run argv with its output in out until out says ready; it is stopped at cleanup.

    Fails the test, with the output, if the process ends before it is ready.
    """
    with out.open("w") as sink:  # the child has its own copy once started
        proc = subprocess.Popen(argv, stdout=sink, stderr=stderr,
                                stdin=subprocess.DEVNULL, cwd=cwd)

    def stop():
        if proc.poll() is None:
            proc.terminate()
        proc.wait(DEADLINE)

    case.addCleanup(stop)
    wait_for(lambda: ready in out.read_text() or proc.poll() is not None, repr(ready))
    case.assertIsNone(proc.poll(), out.read_text())
    return proc
