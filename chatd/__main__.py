"""`python -m chatd [options]`: the daemon in the foreground.

The same as `twistd -n --pidfile= chatd [options]`: chatd's options only;
for twistd's own (--uid, --logfile, ...) run twistd itself.
"""

from __future__ import annotations

import sys

from twisted.scripts import twistd

from chatd.tap import Options


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    if "--help" in args or "-h" in args:
        options = Options()
        options.synopsis = f"Usage: python -m chatd {Options.synopsis}"
        options.longdesc += (
            "  Runs in the foreground, as twistd -n --pidfile= chatd; for "
            "twistd's own options (--uid, --logfile, ...) run twistd.")
        options.parseOptions(["--help"])  # prints, then exits 0
    sys.argv = ["twistd", "-n", "--pidfile=", "chatd", *args]
    twistd.run()


if __name__ == "__main__":
    main()
