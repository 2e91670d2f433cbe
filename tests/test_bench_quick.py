"""The benchmark's quick mode, against chatd only (line protocol, IRC and
WebSocket) and a two-node chatd cluster through Redis: nothing is lost.

This runs bench/bench.py as `make bench` would, in its few-second mode, with
the C counting helper when a compiler is there and the Python counter
otherwise.  It asserts what must hold on any machine (every expected line
arrived, none was lost or duplicated, every phase finished); it makes no
timing assertion.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_quick_bench_loses_nothing(tmp_path):
    """Fan-out (line protocol, IRC and web front ends), paced latency and
    logins against a real chatd lose no line."""
    out = tmp_path / "bench.json"
    counter = "c" if shutil.which("cc") else "python"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench.py"), "--quick",
         "--scenarios", "fanout,ircfanout,wsfanout,latency,logins", "--counter", counter,
         "--json", str(out)],
        check=False, capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(out.read_text())["results"]
    fanout = results["fanout"]["chatd"][0]
    assert fanout["ok"], fanout
    assert fanout["counter"] == counter
    # 20 clients, 4 senders x 200: the 16 listeners get 800 lines each and
    # each sender the 600 of the other three.
    assert fanout["expected"] == 16 * 800 + 4 * 600
    assert fanout["delivered"] == fanout["expected"]
    assert fanout["lost"] == 0 and fanout["extra"] == 0
    # the same crowd over chatd's --irc listener: nicks, JOIN #bench, PRIVMSG
    irc = results["ircfanout"]["chatd"][0]
    assert irc["ok"], irc
    assert irc["expected"] == fanout["expected"]
    assert irc["delivered"] == irc["expected"]
    assert irc["lost"] == 0 and irc["extra"] == 0 and irc["closed"] == 0
    # the same crowd as pages on chatd's --web listener: /ws, login, say
    ws = results["wsfanout"]["chatd"][0]
    assert ws["ok"], ws
    # pages also get their own lines back (docs/web.md): 4 senders x 200 more
    assert ws["expected"] == fanout["expected"] + 4 * 200
    assert ws["delivered"] == ws["expected"]
    assert ws["lost"] == 0 and ws["extra"] == 0 and ws["closed"] == 0
    latency = results["latency"]["chatd"][0]
    assert latency["ok"], latency
    assert latency["lost"] == 0 and latency["extra"] == 0
    assert latency["latencies"] == latency["expected"] > 0
    logins = results["logins"]["chatd"][0]
    assert logins["ok"], logins
    assert logins["logins"] == 50


def test_python_counter_matches(tmp_path):
    """The Python fallback of the counting loop counts the same lines."""
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench.py"), "--quick",
         "--scenarios", "fanout", "--counter", "python", "--json", str(out)],
        check=False, capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fanout = json.loads(out.read_text())["results"]["fanout"]["chatd"][0]
    assert fanout["counter"] == "python"
    assert fanout["delivered"] == fanout["expected"] == 16 * 800 + 4 * 600
    assert fanout["lost"] == 0


def test_quick_cluster_loses_nothing(tmp_path):
    """The cluster scenario (two chatd nodes through a real redis-server,
    clients and senders split over them) delivers every line once, as one
    chatd alone does: nothing is lost or doubled by crossing Redis."""
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench.py"), "--quick",
         "--scenarios", "cluster", "--json", str(out)],
        check=False, capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = json.loads(out.read_text())["results"]["cluster"]
    for label in ("2 nodes", "1 node"):
        run = runs[label][0]
        assert run["ok"], run
        assert run["expected"] == 16 * 800 + 4 * 600
        assert run["delivered"] == run["expected"]
        assert run["lost"] == 0 and run["extra"] == 0 and run["closed"] == 0
    assert set(runs["2 nodes"][0]["cpu_of"]) == {"node a", "node b", "redis-server"}
