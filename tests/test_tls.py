"""TLS end to end: `twistd -n chatd` with plain and TLS listeners together,
certificates made at test time with openssl (as docs/client.md shows), and
chatd-client with --tls --cafile.
"""

from __future__ import annotations

import shutil

import pytest

from chatd.client.session import Exit
from tests.helpers_client import (
    ClientProc,
    LineConn,
    Server,
    free_port,
    make_cert,
    run_client,
)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="needs openssl (tests/ensure-tools.sh openssl)")


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """One chatd listening on plain TCP, TLS with a good certificate, and TLS
    with a certificate for another host name; ports and CA files by name."""
    d = tmp_path_factory.mktemp("tls")
    key, cert = make_cert(d, "good", "DNS:localhost,IP:127.0.0.1")
    other_key, other_cert = make_cert(d, "other", "DNS:other.example")
    ports = {"plain": free_port(), "tls": free_port(), "wrong-name": free_port()}
    server = Server(d, [
        f"tcp:{ports['plain']}:interface=127.0.0.1",
        f"ssl:{ports['tls']}:privateKey={key}:certKey={cert}:interface=127.0.0.1",
        (f"ssl:{ports['wrong-name']}:privateKey={other_key}:certKey={other_cert}"
         ":interface=127.0.0.1"),
    ]).start(ports["plain"])
    yield {"port": ports, "ca": {"good": str(cert), "other": str(other_cert)}}
    server.stop()


def test_tls_client_chats_with_a_plain_tcp_user(tls):
    """Over TLS with --cafile the client logs in and chats with someone on TCP."""
    plain = LineConn(tls["port"]["plain"]).login("tina")
    proc = ClientProc(["--tls", "--cafile", tls["ca"]["good"], "--user", "sec",
                       "127.0.0.1", str(tls["port"]["tls"])])
    plain.expect("* sec joined")
    plain.send("hello over tcp")
    proc.expect("<tina> hello over tcp")
    proc.send("hello over tls")
    assert plain.expect("<sec>") == "<sec> hello over tls"
    proc.end_input()
    code, stderr = proc.wait()
    assert code == Exit.OK, stderr
    plain.expect("* sec left")


def test_tls_by_host_name(tls):
    """The certificate's DNS name works as well as its IP address."""
    result = run_client(["--tls", "--cafile", tls["ca"]["good"], "--user", "named",
                         "localhost", str(tls["port"]["tls"])], b"hi\n")
    assert result.returncode == Exit.OK, result.stderr
    assert b"* logged in as named" in result.stdout


@pytest.mark.parametrize("port, ca, why", [
    ("tls", "other", "certificate verify failed"),
    ("tls", None, "certificate verify failed"),
    ("wrong-name", "other", "is not valid for 127.0.0.1"),
    ("plain", "good", "no TLS on that port"),
])
def test_tls_refuses_a_certificate_that_does_not_match(tls, port, ca, why):
    """Untrusted, for another host, or no TLS at all: status 4, nothing sent."""
    args = ["--tls", "--user", "victim", "127.0.0.1", str(tls["port"][port])]
    if ca:
        args[1:1] = ["--cafile", tls["ca"][ca]]
    watcher = LineConn(tls["port"]["plain"]).login(f"w{port}{ca}")
    result = run_client(args, b"my secret line\n")
    assert result.returncode == Exit.TLS
    err = result.stderr.decode()
    assert err.startswith("chatd-client: TLS: ") and why in err and err.count("\n") == 1
    assert result.stdout == b""
    watcher.send("/who")
    assert "victim" not in watcher.expect("* online")
