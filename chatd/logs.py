"""JSON logs for log shippers: `twistd --logger chatd.logs.json_observer ...`.

Each event becomes one line holding one JSON object: `time` (ISO 8601,
UTC), `level`, `namespace`, `text` (the message as the plain log shows
it), then the event's own fields (`name`, `host`, `endpoint`...) whose
values JSON can hold; `traceback` when the event carries a failure.

twisted.logger's jsonFileLogObserver writes a different shape (every
internal log_* key, records separated by \\x1e, no formatted text), which
a shipper would have to take apart; this writes what a shipper indexes.

twistd calls a --logger factory with no arguments, so it cannot see
--logfile: the JSON goes to standard output.  Run in the foreground
(`twistd -n`, as systemd and containers do) and let the supervisor or a
shell redirection take it.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import IO

from twisted.logger import ILogObserver, formatEvent
from zope.interface import implementer

# Values of fields whose name contains this never reach the output.
_SECRET = "password"
HIDDEN = "[hidden]"
# What twisted.python.log events carry besides their text and system.
_LEGACY_KEYS = frozenset({"message", "isError", "format", "why", "failure", "time"})


def _jsonable(value) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def event_as_dict(event: dict) -> dict:
    """The JSON object written for one twisted.logger event."""
    event = {key: (HIDDEN if _SECRET in key.lower() else value)
             for key, value in event.items()}
    level = event.get("log_level")
    out = {
        "time": datetime.fromtimestamp(event.get("log_time", 0), UTC)
        .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": getattr(level, "name", "info"),
        "namespace": event.get("log_namespace", "-"),
        "text": formatEvent(event),
    }
    skip = _LEGACY_KEYS if "log_legacy" in event else ()
    for key, value in event.items():
        if (key not in out and not key.startswith("log_") and key not in skip
                and _jsonable(value)):
            out[key] = value
    failure = event.get("log_failure")
    if failure is not None:
        out["traceback"] = failure.getTraceback()
    return out


@implementer(ILogObserver)
class JSONLinesObserver:
    """Writes each event as one line of JSON to a text stream, flushed at once."""

    def __init__(self, stream: IO[str]):
        self._stream = stream

    def __call__(self, event: dict) -> None:
        self._stream.write(json.dumps(event_as_dict(event), allow_nan=False) + "\n")
        self._stream.flush()


def json_observer() -> JSONLinesObserver:
    """The factory twistd's --logger calls: JSON lines on standard output."""
    return JSONLinesObserver(sys.stdout)
