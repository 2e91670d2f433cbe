"""chatd-client's pieces without I/O: pacing under the flood limit, the
/limits and /rooms queries the session hides, what it knows of the room,
Tab completion and the widths of grapheme clusters."""

from __future__ import annotations

import argparse

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from twisted.internet import task
from twisted.internet.testing import StringTransport

from chatd.client import widths
from chatd.client.editing import ChatCompleter
from chatd.client.pacing import LIMITS_WAIT, Pacer
from chatd.client.roomview import RoomView
from chatd.client.session import Session
from chatd.config import Limits
from chatd.core.limits import TokenBucket


def paced(burst: int, rate: float, lines: int) -> tuple[task.Clock, list[float], TokenBucket]:
    """lines sent through a Pacer, each charged to the server's own bucket
    (chatd.core.limits) when written; the times they were written."""
    clock = task.Clock()
    server = TokenBucket(clock, Limits(flood_burst=burst, flood_rate=rate))
    times: list[float] = []

    def write(line: bytes) -> None:
        assert server.take(), f"line {len(times)} would get '! slow down'"
        times.append(clock.seconds())

    pacer = Pacer(clock, write, burst, rate)
    for i in range(lines):
        pacer.send(b"line %d" % i)
    while pacer.pending:
        clock.advance(0.01)
    return clock, times, server


@pytest.mark.parametrize("burst, rate", [(5, 2.0), (1, 0.5), (10, 20.0), (2, 1.0)])
def test_pacer_never_trips_the_servers_flood_limit(burst, rate):
    """A paste of 60 lines goes out whole, every line within the server's
    bucket, at about 90% of its rate after a burst that keeps one token back."""
    clock, times, _ = paced(burst, rate, 60)
    assert len(times) == 60
    at_once = sum(1 for t in times if t == 0)
    assert at_once == max(1, burst - 1)
    steady = (len(times) - at_once) / (times[-1] - times[at_once - 1])
    assert 0.85 * rate <= steady <= 0.95 * rate


def test_pacer_keeps_order_and_blank_lines_are_free():
    """Blank lines (which the server does not charge) keep their place in the
    queue and cost nothing; each line's sent() is called once it is written."""
    clock, written, sent = task.Clock(), [], []
    pacer = Pacer(clock, written.append, burst=2, rate=1.0)
    for line in [b"a", b"", b"b", b" ", b"c"]:
        pacer.send(line, sent=lambda line=line: sent.append(line))
    assert written == [b"a", b""]  # the next costs a token: one is kept back
    clock.pump([0.5] * 20)
    assert written == [b"a", b"", b"b", b" ", b"c"] == sent


def test_pacer_waits_for_the_limits_then_takes_them():
    """Held until the server's limits are known; a smaller burst counts what
    was already spent; without an answer it goes on after LIMITS_WAIT."""
    clock, written = task.Clock(), []
    pacer = Pacer(clock, written.append)
    pacer.send(b"/limits")
    pacer.hold()
    pacer.send(b"typed early")
    assert written == [b"/limits"]
    pacer.set_limits(2, 1.0)  # 1 of 2 tokens spent: none to spare with the reserve
    assert written == [b"/limits"]
    clock.advance(1 / 0.9)
    assert written == [b"/limits", b"typed early"]
    other = Pacer(clock, written.append)
    other.hold()
    other.send(b"x")
    clock.advance(LIMITS_WAIT)
    assert written[-1] == b"x"


def session_in_room(*lines: str) -> tuple[Session, StringTransport, list[str]]:
    class Front:
        retry_username = False

        def __init__(self):
            self.shown = []

        def show(self, line):
            self.shown.append(line)

        def logged_in(self, name):
            pass

    client = argparse.Namespace(reactor=task.Clock(), args=argparse.Namespace(user="zoe"),
                                front=Front(), session=None, quitting=False)
    session = Session(client)
    transport = StringTransport()
    session.makeConnection(transport)
    session.dataReceived(b"".join(line.encode() + b"\r\n" for line in (
        "* welcome to chatd", "? username", "* logged in as zoe in chatd",
        "* online (2): amy, zoe") + lines))
    return session, transport, client.front.shown


def test_session_asks_the_limits_and_hides_the_answers():
    """After login the client sends /limits and /rooms; their answers set the
    pace and the rooms known, and are not shown; what follows is."""
    session, transport, shown = session_in_room(
        "<amy> hi", "* limits flood_burst=8 flood_rate=4 max_line=2048",
        "* rooms (2): chatd (2), games (1)", "* rooms (1): chatd (2)")
    assert transport.value() == b"zoe\r\n/limits\r\n/rooms\r\n"
    assert (session.pacer.burst, session.pacer.rate) == (8, 4.0)
    assert session.room.rooms == {"chatd"}
    assert shown[-2:] == ["<amy> hi", "* rooms (1): chatd (2)"]
    assert not any(line.startswith("* limits") for line in shown)


def test_older_server_without_limits_means_the_defaults():
    """`! unknown command /limits` (an older server) is hidden, and lines go
    out at the server's default pace."""
    session, transport, shown = session_in_room(
        "! unknown command /limits (try /help)", "* rooms (1): chatd (2)")
    session.say("hello")
    assert transport.value().endswith(b"/rooms\r\nhello\r\n")
    assert (session.pacer.burst, session.pacer.rate) == (5, 2.0)
    assert not any(line.startswith("!") for line in shown)


def test_room_view_follows_the_notices():
    """The status line's room and head count follow logins, joins, leaves,
    kicks and moves between rooms."""
    view = RoomView()
    for line in ["* logged in as zoe (admin) in chatd", "* online (3): amy, @boss, zoe",
                 "* bob joined", "* amy left: lunch", "* boss was kicked by x",
                 "* bob left (joined games)", "<cy> * cy joined"]:
        view.feed(line)
    assert (view.room, view.count, view.admin) == ("chatd", 1, True)
    assert view.rooms == {"chatd", "games"}
    view.feed("* you are in games")
    view.feed("* online (60): " + ", ".join(f"u{i}" for i in range(50))
              + ", and 10 more (/who lists everyone)")
    view.feed("* somebody left")
    assert (view.room, view.count) == ("games", 59)
    view.feed("[dan] psst")
    assert view.people()[-1] == "dan"


def completions(text: str, names=("amy", "Bea", "ben")) -> list[str]:
    view = RoomView()
    view.feed("* logged in as zoe in chatd")
    view.feed(f"* online ({len(names) + 1}): " + ", ".join([*names, "zoe"]))
    view.rooms |= {"games", "garden"}
    front = argparse.Namespace(purpose="chat", client=argparse.Namespace(
        session=argparse.Namespace(room=view, name="zoe")))
    found = ChatCompleter(front).get_completions(Document(text), CompleteEvent())
    return [text[:len(text) + c.start_position] + c.text for c in found]


@pytest.mark.parametrize("typed, expected", [
    ("/wh", ["/who"]),
    ("/m", ["/me ", "/msg "]),
    ("/kic", []),  # not an admin
    ("b", ["Bea", "ben"]),
    ("hi B", ["hi Bea", "hi ben"]),
    ("/msg a", ["/msg amy"]),
    ("/join ga", ["/join games", "/join garden"]),
    ("/join games x", []),
    ("/topic a", []),
    ("well, hello b", ["well, hello Bea", "well, hello ben"]),
    ("/me waves at a", ["/me waves at amy"]),
])
def test_tab_completes_commands_names_and_rooms(typed, expected):
    """Tab completes /commands, names in the room (never your own) and room
    names after /join."""
    assert completions(typed) == expected


def test_clusters_are_one_cell_of_their_width(monkeypatch):
    """👍🏽, 👨‍👩‍👧 and ❤️ are laid out as one cell of wcwidth's width where the
    terminal joins them, and as their code points where it does not."""
    family = "\U0001F468\u200d\U0001F469\u200d\U0001F467"
    marked = widths.mark_clusters([("", f"a{family}b\u1100\u1161")])
    assert marked[1] == (" class:cluster-w2", "\U0001F468")
    assert marked[2] == (" class:cluster-tail", family[1:])
    assert "".join(text for _, text in marked) == f"a{family}b\u1100\u1161"
    monkeypatch.setitem(widths.joined, "zwj", False)
    assert widths.cluster_width(family) is None
    assert widths.cluster_width("\U0001F44D\U0001F3FD") == 2
