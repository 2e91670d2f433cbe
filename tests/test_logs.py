"""JSON logs: one object per event, what a log shipper needs, never a password."""

import io
import json

from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from twisted.trial import unittest

from chatd.logs import JSONLinesObserver, event_as_dict


class JSONEventTests(unittest.TestCase):
    def log(self, level, text, **fields):
        """Log through a real Logger into the JSON observer; the parsed lines."""
        out = io.StringIO()
        log = Logger(namespace="chatd.test", observer=JSONLinesObserver(out))
        log.emit(level, text, **fields)
        return [json.loads(line) for line in out.getvalue().splitlines()]

    def test_one_object_per_event_with_text_and_fields(self):
        """Each event is one line: time, level, namespace, the formatted text, its fields."""
        [event] = self.log(LogLevel.info, "{name} joined from {address}",
                           name="alice", address="127.0.0.1")
        self.assertRegex(event["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual({k: event[k] for k in ("level", "namespace", "text", "name",
                                                 "address")},
                         {"level": "info", "namespace": "chatd.test",
                          "text": "alice joined from 127.0.0.1", "name": "alice",
                          "address": "127.0.0.1"})
        self.assertFalse([key for key in event if key.startswith("log_")])

    def test_fields_json_cannot_hold_are_left_out(self):
        """An object or NaN in a field does not break the line; it is left out."""
        [event] = self.log(LogLevel.warn, "odd {thing}", thing=object(),
                           ratio=float("nan"), count=3)
        self.assertEqual(event["level"], "warn")
        self.assertEqual(event["count"], 3)
        self.assertNotIn("thing", event)
        self.assertNotIn("ratio", event)
        self.assertTrue(event["text"].startswith("odd <object object"))

    def test_password_fields_hidden(self):
        """A field named like a password never reaches the output, in text or fields."""
        out = io.StringIO()
        Logger(observer=JSONLinesObserver(out)).info(
            "created admin with password: {password}", password="hunter2-secret",
            new_password="other-secret")
        self.assertNotIn("secret", out.getvalue())
        event = json.loads(out.getvalue())
        self.assertEqual(event["text"], "created admin with password: [hidden]")

    def test_failure_gives_a_traceback(self):
        """log.failure events carry their traceback as a field of the same line."""
        failure = Failure(ZeroDivisionError("division by zero"))
        event = event_as_dict({"log_format": "it broke", "log_failure": failure,
                               "log_level": LogLevel.critical, "log_time": 0.0,
                               "log_namespace": "chatd.test"})
        self.assertEqual((event["time"], event["level"], event["text"]),
                         ("1970-01-01T00:00:00.000Z", "critical", "it broke"))
        self.assertIn("ZeroDivisionError", event["traceback"])
