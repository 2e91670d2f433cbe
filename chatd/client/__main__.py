"""`python -m chatd.client`: the same as the chatd-client console script."""

import sys

from chatd.client.cli import main

if __name__ == "__main__":
    sys.exit(main())
