"""Live reload of a real `twistd -n chatd`: SIGHUP with users connected, and TLS renewal."""

from __future__ import annotations

import os
import pty
import select
import shutil
import signal
import socket
import ssl
import threading
from pathlib import Path

import pytest

from tests import helpers_client, helpers_hostile
from tests.helpers_client import LineConn, free_port, make_cert
from tests.helpers_hostile import wait_for


def reloaded(server: helpers_hostile.Server, count: int) -> list[str]:
    """Send SIGHUP and wait until the log shows `count` reloads done or refused."""
    os.kill(server.proc.pid, signal.SIGHUP)

    def lines():
        found = [line for line in server.log().splitlines()
                 if "reload: " in line or "reload refused" in line]
        done = [line for line in found if "restart chatd" not in line]
        return found if len(done) >= count else None

    return wait_for(lines, f"reload number {count} in the log")


def test_sighup_changes_motd_and_flood_limits_for_users_connected(tmp_path):
    """SIGHUP applies a new motd and flood_burst: the two users connected stay,
    one of them is held to the new burst at once, a new login sees the new
    motd; then a broken file is refused and the server keeps serving with the
    settings it had."""
    server = helpers_hostile.Server(tmp_path / "server").start()
    try:
        alice, bob = server.login("alice"), server.login("bob")
        alice.until("* bob joined")
        server.limits.update(flood_burst=3, flood_rate=0.01)
        server.write_config(motd="new rules: be brief")
        log = reloaded(server, 1)
        assert "motd changed" in log[-1]
        assert "limits.flood_burst 100000 -> 3" in log[-1]
        assert "limits.flood_rate 100000.0 -> 0.01" in log[-1]

        carol = server.login("carol")
        assert carol.line() == "* new rules: be brief"
        alice.say("one", "two", "three", "four")
        assert alice.until("! ") == "! slow down"
        assert [line for line in bob.upto("<alice> three") if line.startswith("<")] == [
            "<alice> one", "<alice> two", "<alice> three"]

        (server.dir / "chatd.toml").write_text('[server]\nmotd = "broken"\n[limits\n')
        log = reloaded(server, 2)
        assert ("reload refused, still running with the previous config: "
                f"config file {server.dir / 'chatd.toml'}: ") in log[-1]
        assert sum("reload refused" in line for line in server.log().splitlines()) == 1
        dave = server.login("dave")
        assert dave.line() == "* new rules: be brief"
        alice.say("five")
        assert alice.until("! ") == "! slow down"
        bob.say("still here")
        assert alice.until("<bob>") == "<bob> still here"
        assert "Traceback" not in server.log()
    finally:
        server.kill()


def _presented(port: int) -> bytes:
    """The certificate a new TLS connection to port is given (DER), after the greeting."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=helpers_client.TIMEOUT) as raw:
        with context.wrap_socket(raw) as tls:
            greeting = tls.recv(100)
            assert greeting.startswith(b"* welcome"), greeting
            return tls.getpeercert(binary_form=True)


def _der(cert: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert.read_text())


@pytest.mark.skipif(shutil.which("openssl") is None,
                    reason="needs openssl (tests/ensure-tools.sh openssl)")
def test_sighup_renews_the_tls_certificate_for_new_connections(tmp_path):
    """After the certificate and key files are replaced and chatd gets SIGHUP,
    new TLS connections get the new certificate; one opened before keeps
    chatting.  A key that does not match is refused and the last good
    certificate stays in use."""
    key_a, cert_a = make_cert(tmp_path, "a", "IP:127.0.0.1")
    key_b, cert_b = make_cert(tmp_path, "b", "IP:127.0.0.1")
    key, cert = tmp_path / "server.key", tmp_path / "server.pem"
    shutil.copy(key_a, key)
    shutil.copy(cert_a, cert)
    plain, secure = free_port(), free_port()
    server = helpers_client.Server(tmp_path, [
        f"tcp:{plain}:interface=127.0.0.1",
        f"ssl:{secure}:privateKey={key}:certKey={cert}:interface=127.0.0.1",
    ]).start(plain)
    try:
        assert _presented(secure) == _der(cert_a)
        context = ssl.create_default_context(cafile=str(cert_a))
        early = context.wrap_socket(socket.create_connection(("127.0.0.1", secure),
                                                             timeout=helpers_client.TIMEOUT),
                                    server_hostname="127.0.0.1")
        early.sendall(b"early\r\n")
        watcher = LineConn(plain).login("watcher")

        for source, target in ((key_b, key), (cert_b, cert)):
            shutil.copy(source, target.with_suffix(".new"))
            os.replace(target.with_suffix(".new"), target)
        os.kill(server.proc.pid, signal.SIGHUP)
        wait_for(lambda: "reload: new certificate for ssl:" in server.log.read_text(),
                 "the reload")
        assert "CN=b" in server.log.read_text()
        assert _presented(secure) == _der(cert_b)
        early.sendall(b"still on the old certificate\r\n")
        assert watcher.expect("<early>") == "<early> still on the old certificate"

        shutil.copy(key_a, key)  # a key that does not match the certificate
        os.kill(server.proc.pid, signal.SIGHUP)
        wait_for(lambda: "keeps its current certificate" in server.log.read_text(),
                 "the refused renewal")
        assert _presented(secure) == _der(cert_b)
        assert "Traceback" not in server.log.read_text()
        early.close()
        watcher.close()
    finally:
        server.stop()


def test_at_a_terminal_sighup_reloads_and_a_closed_terminal_stops(tmp_path):
    """`twistd -n chatd` at a terminal (as `make run` is): kill -HUP reloads
    the config, and closing the terminal (a hangup) still stops chatd, so no
    headless server is left holding the port."""
    port = free_port()
    config = tmp_path / "chatd.toml"
    config.write_text('[server]\nmotd = "before"\n')
    argv = [str(helpers_client.BIN / "twistd"), "-n", "--pidfile=", "chatd",
            "--config", str(config), "--data-dir", str(tmp_path / "data"),
            "--listen", f"tcp:{port}:interface=127.0.0.1"]
    pid, master = pty.fork()
    if pid == 0:  # the child: chatd with the pty as its controlling terminal
        try:
            os.chdir(tmp_path)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    output: list[bytes] = []
    stop = threading.Event()
    # Keep reading the terminal, or chatd blocks once its log fills the pty.
    reader = threading.Thread(target=_drain, args=(master, output, stop), daemon=True)
    reader.start()
    try:
        wait_for(lambda: helpers_client.Server.accepts(port), "chatd to listen")
        LineConn(port).login("early").close()  # serving: every service has started
        config.write_text('[server]\nmotd = "after"\n')
        os.kill(pid, signal.SIGHUP)
        wait_for(lambda: "reload: motd changed" in b"".join(output).decode(errors="replace"),
                 "the reload")
        carol = LineConn(port).login("carol")
        carol.expect("* after")
        stop.set()
        reader.join(helpers_client.TIMEOUT)  # a read under way would keep the pty open
        os.close(master)  # the terminal window closes
        master = None
        wait_for(lambda: os.waitpid(pid, os.WNOHANG)[0] == pid, "chatd to stop")
        pid = None
        assert not helpers_client.Server.accepts(port)
    finally:
        stop.set()
        reader.join(helpers_client.TIMEOUT)
        if master is not None:
            os.close(master)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def _drain(fd: int, into: list[bytes], stop: threading.Event) -> None:
    while not stop.is_set():
        if not select.select([fd], [], [], 0.05)[0]:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            return
        if not chunk:
            return
        into.append(chunk)
