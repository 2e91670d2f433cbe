"""The helper that runs real daemons for tests leaks nothing into the test process."""

import gc
import sys
import warnings
from pathlib import Path

from twisted.trial import unittest

from tests.helpers_daemon import spawn

WAITER = "import signal; print('ready', flush=True); signal.pause()"


class SpawnTests(unittest.TestCase):
    def test_output_file_closed(self):
        """spawn closes its copy of the output file: no ResourceWarning, no leaked fd.

        A suite that starts dozens of daemons would otherwise hold one open
        file per daemon until the garbage collector warns about it.
        """
        out = Path(self.mktemp())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            spawn(self, [sys.executable, "-c", WAITER], out, "ready")
            gc.collect()
        leaks = [w for w in caught if issubclass(w.category, ResourceWarning)
                 and str(out) in str(w.message)]
        self.assertEqual(leaks, [])
