"""The web page in a real browser: headless Chromium, driven by selenium,
against `twistd -n chatd` with a line listener and a web one.  Browser
people and line people (a plain socket, as nc would be) share the rooms.

Each browser has a throwaway profile in the test's tmp dir; every wait is a
WebDriverWait (or a socket read) with a deadline.  The browser tests skip,
saying why, when chromium, chromedriver or selenium is missing (`make test`
installs them); the Origin test needs no browser and always runs.
"""

from __future__ import annotations

import os
import shutil
import socket
from itertools import count

import pytest

from tests.helpers_client import ADMIN, ADMIN_PASSWORD, ROOT, TIMEOUT, LineConn, Server, free_port

try:
    from selenium import webdriver
    from selenium.common.exceptions import (
        NoAlertPresentException,
        NoSuchElementException,
        StaleElementReferenceException,
        TimeoutException,
    )
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # the browser tests skip; the Origin test still runs
    webdriver = None

_names = count(1)
# CHATD_SCREENSHOT=docs/screenshot.png refreshes the README's picture.
SCREENSHOT = os.environ.get("CHATD_SCREENSHOT")
XSS = "<img src=x onerror=alert(1)>"


def unique(prefix: str) -> str:
    return f"{prefix}{next(_names)}"


@pytest.fixture(scope="module")
def chatd(tmp_path_factory):
    """(line port, web port) of one chatd for the module, history on.

    Names and texts are unique per test, so history from an earlier test
    cannot stand in for what a later one waits for.
    """
    line, web = free_port(), free_port()
    server = Server(tmp_path_factory.mktemp("chatd"), [f"tcp:{line}:interface=127.0.0.1"],
                    web=[f"tcp:{web}:interface=127.0.0.1"], history=20).start(line)
    yield line, web
    server.stop()


class Page:
    """One browser window on the chat page, with the waits the tests use."""

    def __init__(self, driver):
        self.driver = driver

    def wait(self, condition, what: str, timeout: float = TIMEOUT):
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(
                lambda d: condition())
        except TimeoutException:
            raise AssertionError(
                f"timed out waiting for {what}; messages: {self.texts('#messages .msg')!r};"
                f" console: {[e['message'] for e in self.driver.get_log('browser')]!r}"
            ) from None

    def texts(self, selector: str) -> list[str]:
        """The text of every element selector matches, read in one go (the
        page redraws lists, so elements found one by one may go stale)."""
        return self.driver.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0]),"
            " e => e.textContent)", selector)

    def find(self, selector: str):
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def shown(self, selector: str) -> bool:
        """selector is on the page and visible (False while the page redraws it)."""
        try:
            found = self.driver.find_elements(By.CSS_SELECTOR, selector)
            return bool(found) and found[0].is_displayed()
        except StaleElementReferenceException:
            return False

    def click(self, selector: str) -> bool:
        """Click selector; False if the page redrew it meanwhile (try again)."""
        try:
            self.find(selector).click()
            return True
        except (StaleElementReferenceException, NoSuchElementException):
            return False

    def login(self, name: str, password: str | None = None) -> Page:
        self.wait(lambda: self.find("#status").text == "connected", "the WebSocket")
        self.wait(lambda: self.shown("#login-name"), "the login form")
        self.find("#login-name").send_keys(name, Keys.ENTER)
        if password is not None:
            self.wait(lambda: self.shown("#login-password"), "the password field")
            self.find("#login-password").send_keys(password, Keys.ENTER)
        self.wait(lambda: self.shown("#message-input"), f"{name} to be logged in")
        return self

    def say(self, text: str) -> None:
        self.find("#message-input").send_keys(text, Keys.ENTER)

    def line(self, text: str, kind: str = "message") -> str:
        """Wait for a line of the given kind containing text; its text."""
        return self.wait(
            lambda: next((t for t in self.texts(f"#messages .msg.msg-{kind}") if text in t),
                         None), f"a .msg-{kind} line with {text!r}")

    def title(self, room: str) -> None:
        self.wait(lambda: self.find("#room-title").text == room, f"room {room} on show")

    def open_room(self, room: str) -> None:
        """Click the room in the room list (joined: show it; else: join)."""
        self.wait(lambda: self.shown(f'#rooms .room[data-room="{room}"]'), f"{room} listed")
        self.wait(lambda: self.click(f'#rooms .room[data-room="{room}"] button'),
                  f"a click on {room}")
        self.title(room)


@pytest.fixture
def browser(tmp_path):
    """open(url) -> Page: a new headless Chromium window, its own profile.

    Every window is shot to the tmp dir and closed at the end of the test.
    """
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    missing = [name for name, found in (("chromium", chromium), ("chromedriver", driver_path),
                                        ("selenium", webdriver)) if not found]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (make test installs them: "
                    "tests/ensure-tools.sh chromium chromedriver:chromium-driver, "
                    "pip install -e '.[test]')")
    pages: list[Page] = []

    def open_page(url: str) -> Page:
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        options.add_argument("--headless=new")
        options.add_argument(f"--user-data-dir={tmp_path / f'profile{len(pages)}'}")
        options.add_argument("--window-size=1000,640")
        options.add_argument("--no-first-run")
        options.add_argument("--disable-dev-shm-usage")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # for failures
        if os.geteuid() == 0:
            options.add_argument("--no-sandbox")  # Chromium refuses root otherwise
        service = Service(driver_path, log_output=str(tmp_path / f"chromedriver{len(pages)}.log"))
        driver = webdriver.Chrome(options=options, service=service)
        page = Page(driver)
        pages.append(page)
        driver.set_page_load_timeout(TIMEOUT)
        driver.set_script_timeout(TIMEOUT)
        driver.get(url)
        return page

    yield open_page
    for number, page in enumerate(pages):
        try:
            page.driver.save_screenshot(str(tmp_path / f"page{number}.png"))
        finally:
            page.driver.quit()


def url(chatd) -> str:
    return f"http://127.0.0.1:{chatd[1]}/"


def test_browser_and_line_user_talk_both_ways(chatd, browser, tmp_path):
    """A browser user and an nc user in the same room hear each other; the
    message box has the focus after login and sends on Enter."""
    ann, bob = unique("ann"), unique("bob")
    page = browser(url(chatd)).login(ann)
    page.title("chatd")
    line = LineConn(chatd[0]).login(bob)
    page.line(f"{bob} joined", kind="notice")
    page.wait(lambda: bob in page.texts("#members .member"), f"{bob} in the member list")

    page.driver.switch_to.active_element.send_keys(f"hello from {ann}", Keys.ENTER)
    assert line.expect(f"<{ann}> hello from {ann}") == f"<{ann}> hello from {ann}"

    line.send(f"hello from {bob}")
    assert f"hello from {bob}" in page.line(f"hello from {bob}")
    line.send(f"/me waves at {ann}")
    page.line(f"waves at {ann}", kind="action")
    line.send(f"/msg {ann} psst {ann}")
    page.line(f"psst {ann}", kind="private")

    page.driver.save_screenshot(str(tmp_path / "web.png"))
    if SCREENSHOT:
        page.driver.save_screenshot(str(ROOT / SCREENSHOT))
    line.close()


def test_switching_rooms(chatd, browser):
    """A browser user in two rooms sees each room's lines when it is on show,
    and what they type goes to the room on show."""
    cat, dan = unique("cat"), unique("dan")
    games = unique("games")
    line = LineConn(chatd[0]).login(dan)
    page = browser(url(chatd)).login(cat)
    page.say(f"/join {games}")
    page.title(games)
    line.send(f"in chatd for {cat}")  # said in chatd while games is on show
    page.open_room("chatd")
    page.line(f"in chatd for {cat}")

    line.send(f"/join {games}")
    line.expect(f"* you are in {games}")
    page.open_room(games)
    page.line(f"{dan} joined", kind="notice")
    assert not [t for t in page.texts("#messages .msg") if f"in chatd for {cat}" in t]
    page.say(f"said in {games}")
    line.expect(f"<{cat}> said in {games}")
    line.close()


def test_history_on_join(chatd, browser):
    """Joining a room shows what was said there before, marked as earlier."""
    eve, fay = unique("eve"), unique("fay")
    room = unique("hist")
    line = LineConn(chatd[0]).login(fay)
    line.send(f"/join {room}")
    line.expect(f"* you are in {room}")
    line.send(f"said before {eve} came")
    line.send(f"/me waved before {eve} came")
    line.send("/topic")  # answered after the two lines above are done
    line.expect(f"no topic in {room}")

    page = browser(url(chatd)).login(eve)
    page.say(f"/join {room}")
    page.title(room)
    page.line(f"said before {eve} came", kind="history")
    page.line(f"waved before {eve} came", kind="history")
    assert not [t for t in page.texts("#messages .msg-message") if f"before {eve}" in t]
    line.close()


def test_admin_in_another_window_kicks(chatd, browser):
    """An admin logged in with the password in a second window kicks a
    browser user with /kick typed in the message box; the kicked page says
    so, and so do the admin's page and the nc user's screen."""
    gus, hal = unique("gus"), unique("hal")
    line = LineConn(chatd[0]).login(hal)
    page = browser(url(chatd)).login(gus)
    boss = browser(url(chatd)).login(ADMIN, ADMIN_PASSWORD)
    boss.wait(lambda: gus in boss.texts("#members .member"), f"{gus} in the admin's list")
    boss.say(f"/kick {gus} spamming")
    shown = page.line("kicked", kind="notice")
    assert ADMIN in shown and "spamming" in shown
    boss.line(f"{gus} was kicked", kind="notice")
    line.expect(f"* {gus} was kicked by {ADMIN}: spamming")
    line.close()


def test_markup_in_a_message_shows_literally_and_runs_nothing(chatd, browser):
    """The message <img src=x onerror=alert(1)> shows as those characters: no
    image is made, no alert opens; and typed in the page it reaches an nc
    user unchanged."""
    ida, jon = unique("ida"), unique("jon")
    page = browser(url(chatd)).login(ida)
    line = LineConn(chatd[0]).login(jon)
    page.line(f"{jon} joined", kind="notice")
    line.send(XSS)
    shown = page.line(XSS)
    assert shown.endswith(XSS)
    line.send(f"after the markup {jon}")  # by then an onerror would have had its turn
    page.line(f"after the markup {jon}")
    assert page.driver.find_elements(By.CSS_SELECTOR, "#messages img") == []
    with pytest.raises(NoAlertPresentException):
        page.driver.switch_to.alert.text  # noqa: B018 (reading it is the check)
    page.say(XSS)
    line.expect(f"<{ida}> {XSS}")
    line.close()


def handshake(port: int, host: str, origin: str) -> bytes:
    """The status line of the answer to a WebSocket handshake on /ws."""
    request = (f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               f"Sec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(request.encode("ascii"))
        answer = b""
        while b"\r\n" not in answer and len(answer) < 65536:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n", 1)[0]


@pytest.mark.parametrize("host, origin, status", [
    ("127.0.0.1:{port}", "http://127.0.0.1:{port}", b"101"),
    ("localhost:{port}", "http://localhost:{port}", b"101"),
    ("127.0.0.1:{port}", "http://evil.example", b"403"),
    ("127.0.0.1:{port}", "http://127.0.0.1:1", b"403"),
    ("127.0.0.1:{port}", "null", b"403"),
])
def test_websocket_origin(chatd, host, origin, status):
    """Another site's page cannot open a WebSocket to chatd in its visitor's
    browser: a handshake whose Origin is not the page's own (as named in
    Host) gets 403, and the page's own origin gets 101."""
    port = chatd[1]
    line = handshake(port, host.format(port=port), origin.format(port=port))
    assert line.split(b" ")[:2] == [b"HTTP/1.1", status], line


def test_page_is_served_at_the_root(chatd):
    """The page opens at / with no redirect, under a strict CSP."""
    with socket.create_connection(("127.0.0.1", chatd[1]), timeout=TIMEOUT) as sock:
        sock.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{chatd[1]}\r\n"
                     "Connection: close\r\n\r\n".encode("ascii"))
        answer = b""
        while len(answer) < 1 << 20:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    assert head.startswith("http/1.1 200"), head
    assert "content-security-policy:" in head and "x-content-type-options: nosniff" in head

