"""Real IRC clients, irssi and WeeChat, in tmux panes against `twistd -n chatd`
with a line listener and an IRC one: IRC people and line people (a plain
socket, as netcat would be) in the same room, #chatd.

Each client runs with a throwaway home directory holding its whole
configuration (server, nick, password, autojoin), so nothing is typed at a
first-run prompt, no password is on a command line, and the user's own
configuration is never read or written.  The screen is read with
capture-pane; every wait polls it with a deadline.
"""

from __future__ import annotations

import shutil
from itertools import count
from pathlib import Path

import pytest

from tests.helpers_client import ADMIN, ADMIN_PASSWORD, LineConn, Server, admin, free_port
from tests.test_client_tty import Pane

pytestmark = pytest.mark.skipif(
    not all(map(shutil.which, ("tmux", "irssi", "weechat"))),
    reason="needs tmux, irssi and weechat (tests/ensure-tools.sh tmux irssi weechat)")

HOST = "chatd.test"  # [irc] server_name: the host part of every nick!user@host
_names = count(1)

CONFIG = f'[irc]\nserver_name = "{HOST}"\n'  # the default limits: clients must cope


@pytest.fixture(scope="module")
def ports(tmp_path_factory):
    """(line port, IRC port) of one chatd for the module; names are unique per test."""
    line, irc = free_port(), free_port()
    server = Server(tmp_path_factory.mktemp("chatd"), [f"tcp:{line}:interface=127.0.0.1"],
                    irc=[f"tcp:{irc}:interface=127.0.0.1"], config=CONFIG).start(line)
    yield line, irc
    server.stop()


class Irssi:
    """irssi, its config file written beforehand; PASS for a password."""

    name = "irssi"

    def __init__(self, port: int, nick: str, password: str | None = None):
        password_line = f'password = "{password}"; ' if password else ""
        self.config = (
            f'servers = ( {{ address = "127.0.0.1"; chatnet = "chatd"; port = "{port}"; '
            f'use_tls = "no"; autoconnect = "yes"; {password_line}}} );\n'
            'chatnets = { chatd = { type = "IRC"; }; };\n'
            'channels = ( { name = "#chatd"; chatnet = "chatd"; autojoin = "yes"; } );\n'
            f'settings = {{ core = {{ real_name = "{nick}"; user_name = "{nick}"; '
            f'nick = "{nick}"; }};\n'
            # irssi paces commands after the first five, 2.2 s apart:
            # JOIN and the first message would wait seconds.
            '  "irc/core" = { cmds_max_at_once = "20"; };\n'
            # One window for everything: the channel is on screen.
            '  "fe-common/core" = { autocreate_windows = "no"; }; };\n')

    def argv(self, home: Path) -> list[str]:
        (home / "config").write_text(self.config)
        return ["irssi", f"--home={home}", f"--config={home / 'config'}"]

    # What the screen shows, per event (HOST is the server's name).
    SHOWS = {
        "joined": "-!- {nick} [{nick}@{host}] has joined {channel}",
        "parted": "-!- {nick} [{nick}@{host}] has left {channel}",
        "quit": "-!- {nick} [{nick}@{host}] has quit",
        "kicked": "-!- {nick} was kicked from {channel} by {by}",
        "said": "{nick}> {text}",  # "< ann> hi", "<@boss> hi"
    }


class WeeChat:
    """WeeChat, its irc.conf written beforehand; SASL PLAIN for a password."""

    name = "weechat"

    def __init__(self, port: int, nick: str, password: str | None = None):
        # Plain IRC: the option is "ssl" up to WeeChat 3.8, "tls" (on by
        # default) from 4.0; the one a version does not know is ignored.
        lines = ["[server]", f'chatd.addresses = "127.0.0.1/{port}"', "chatd.ssl = off",
                 "chatd.tls = off",
                 f'chatd.nicks = "{nick}"', f'chatd.username = "{nick}"',
                 'chatd.autojoin = "#chatd"', "chatd.autoconnect = on",
                 # WeeChat sends a line every 2 s once it has sent one.
                 "chatd.anti_flood_prio_high = 0", "chatd.anti_flood_prio_low = 0"]
        if password:
            lines += ["chatd.sasl_mechanism = plain", f'chatd.sasl_username = "{nick}"',
                      f'chatd.sasl_password = "{password}"', "chatd.sasl_fail = disconnect"]
        self.irc_conf = "\n".join(lines) + "\n"

    def argv(self, home: Path) -> list[str]:
        (home / "irc.conf").write_text(self.irc_conf)
        # The buffer list would take a third of the screen.
        (home / "buflist.conf").write_text("[look]\nenabled = off\n")
        return ["weechat", f"--dir={home}"]

    SHOWS = {
        "joined": "--> | {nick} ({nick}@{host}) has joined {channel}",
        "parted": "<-- | {nick} ({nick}@{host}) has left {channel}",
        "quit": "<-- | {nick} ({nick}@{host}) has quit",
        "kicked": "<-- | {by} has kicked {nick}",
        "said": "{nick} | {text}",
    }


CLIENTS = [Irssi, WeeChat]


@pytest.fixture
def irc_client(tmp_path):
    """start(Client, port, nick, password=None) -> the Pane it runs in."""
    made: list[Pane] = []

    def start(kind, port: int, nick: str, password: str | None = None):
        client = kind(port, nick, password)
        home = tmp_path / f"{kind.name}-{nick}"
        home.mkdir()
        # HOME too: neither client may read or write the real user's files.
        pane = Pane(client.argv(home), env=f"HOME={home}", width=120)
        made.append(pane)
        return pane

    yield start
    for pane in made:
        pane.close()


def on_screen(pane: Pane, kind, event: str, channel: str = "#chatd", **values: str
              ) -> list[str]:
    """Wait for the client of kind to show event (a key of its SHOWS)."""
    text = kind.SHOWS[event].format(host=HOST, channel=channel, **values)
    return pane.wait(lambda screen: any(text in line for line in screen), repr(text))


def say(pane: Pane, text: str) -> None:
    pane.type(text)
    pane.keys("Enter")


@pytest.mark.parametrize("kind", CLIENTS, ids=lambda k: k.name)
def test_irc_and_line_users_talk_and_see_each_other_come_and_go(ports, irc_client, kind):
    """An IRC user in #chatd and line users in room chatd: messages both ways,
    joins, a part, a quit and an admin's /kick all show in the IRC client; the
    IRC user's own join, part and quit show to the line user."""
    line, irc = ports
    n = next(_names)
    me, ben, cat, dan = (f"{x}{kind.name[0]}{n}" for x in ("me", "ben", "cat", "dan"))
    ben_conn = LineConn(line).login(ben)
    pane = irc_client(kind, irc, me)
    on_screen(pane, kind, "joined", nick=me)
    ben_conn.expect(f"* {me} joined")

    ben_conn.send("hello from the line, caf\u00e9")
    on_screen(pane, kind, "said", nick=ben, text="hello from the line, caf\u00e9")
    say(pane, "hello from IRC, na\u00efve")
    assert ben_conn.expect(f"<{me}>") == f"<{me}> hello from IRC, na\u00efve"

    cat_conn = LineConn(line).login(cat)
    on_screen(pane, kind, "joined", nick=cat)
    cat_conn.send("/join elsewhere")
    on_screen(pane, kind, "parted", nick=cat)
    cat_conn.send("/quit")
    cat_conn.expect("* bye")
    cat_conn.close()

    dan_conn = LineConn(line).login(dan)
    on_screen(pane, kind, "joined", nick=dan)
    boss = admin(line)
    boss.send(f"/kick {dan} enough")
    boss.expect(f"* {dan} was kicked")
    on_screen(pane, kind, "kicked", nick=dan, by=ADMIN)
    boss.send("/quit")
    on_screen(pane, kind, "quit", nick=ADMIN)
    boss.close()
    dan_conn.close()

    say(pane, "/part #chatd")
    ben_conn.expect(f"* {me} left")
    say(pane, "/quit see you")
    assert pane.exit_code() == 0
    ben_conn.close()


@pytest.mark.parametrize("kind", CLIENTS, ids=lambda k: k.name)
def test_admin_on_irc_kicks_from_a_channel_and_bans(ports, irc_client, kind):
    """The admin logs in from an IRC client (irssi: PASS, WeeChat: SASL PLAIN).
    Their /kick in #games takes a line user out of that room alone, back to
    chatd; then MODE #chatd +b bans the line user, who is disconnected and
    refused at the next login."""
    line, irc = ports
    victim = f"vic{kind.name[0]}{next(_names)}"
    victim_conn = LineConn(line).login(victim)
    pane = irc_client(kind, irc, ADMIN, ADMIN_PASSWORD)
    on_screen(pane, kind, "joined", nick=ADMIN)
    victim_conn.expect(f"* {ADMIN} joined")
    assert not any(ADMIN_PASSWORD in line for line in pane.lines())

    victim_conn.send("/join games")
    victim_conn.expect("* you are in games")
    say(pane, "/join #games")
    on_screen(pane, kind, "joined", nick=ADMIN, channel="#games")
    victim_conn.expect(f"* {ADMIN} joined")
    say(pane, f"/kick {victim} off topic")
    on_screen(pane, kind, "kicked", nick=victim, by=ADMIN, channel="#games")
    victim_conn.expect(f"! you were kicked from games by {ADMIN}: off topic")
    victim_conn.expect("* you are in chatd")

    say(pane, f"/quote MODE #chatd +b {victim}!*@*")
    victim_conn.expect(f"! you were banned by {ADMIN}")
    again = LineConn(line)
    again.expect("? username")
    again.send(victim)
    again.expect("! you are banned")
    again.close()
    victim_conn.close()
    say(pane, "/quit")
    assert pane.exit_code() == 0
