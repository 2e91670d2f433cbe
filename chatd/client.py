"""chatd-client: placeholder until the client lands (issue 3)."""
import sys


def main() -> int:
    print("chatd-client is not built yet", file=sys.stderr)
    return 2
