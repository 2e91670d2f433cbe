"""chatd against ngircd, side by side: fan-out (line, IRC, WebSocket), latency, logins, memory;
and a cluster of chatd nodes through Redis against one node alone.

Run as `make bench` (BENCH_ARGS="--help" for the options) or directly with
the project's venv: `.venv/bin/python bench/bench.py`.  Each run starts a
fresh server on a loopback port, logs clients in, measures, and stops it.
The results that matter are the chatd/ngircd ratios from one run on one
machine; absolute numbers depend on the machine.  docs/performance.md says
what each number means.

Exit status: 0 when every phase finished and no line was lost, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time

from loadgen import (
    Crowd,
    Dialect,
    PhaseFailed,
    build_counter,
    count_python,
    drain,
    login,
    plan,
    raise_fd_limit,
    run_counter,
)
from servers import Chatd, Cluster, Ngircd, Running, Server, ngircd_path, redis_path
from wsload import count_ws, ws_login


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--servers", default="chatd,ngircd",
                   help="which servers to start and measure, comma-separated")
    p.add_argument("--target", action="append", default=[],
                   metavar="KIND:HOST:PORT[:PID]",
                   help="measure an already running server instead (KIND is "
                        "chatd or irc; PID enables memory and CPU figures)")
    p.add_argument("--chatd-path", metavar="DIR",
                   help="run the chatd package found in DIR (a copy of the tree"
                        " with a change to try) instead of the installed one")
    p.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help="which measurements to make, comma-separated (ircfanout:"
                        " the fan-out through chatd's IRC front end; wsfanout:"
                        " through its web front end's WebSocket, chatd only;"
                        " cluster, clusterlatency: --nodes chatd nodes through"
                        " a redis-server against one chatd alone)")
    p.add_argument("--nodes", type=int, default=2,
                   help="cluster: chatd nodes sharing one redis-server")
    p.add_argument("--clients", type=int, default=200, help="fan-out clients")
    p.add_argument("--senders", type=int, default=20, help="fan-out senders")
    p.add_argument("--messages", type=int, default=2000,
                   help="messages each sender pipelines")
    p.add_argument("--size", type=int, default=64, help="bytes of text a message")
    p.add_argument("--pairs", type=int, default=5,
                   help="fan-out runs per server, alternating servers")
    p.add_argument("--rate", type=float, default=1000,
                   help="latency: messages per second into the room")
    p.add_argument("--latency-seconds", type=float, default=5)
    p.add_argument("--latency-clients", type=int, default=200)
    p.add_argument("--latency-runs", type=int, default=3,
                   help="latency runs per server, alternating servers")
    p.add_argument("--logins", type=int, default=1000, help="clients to log in")
    p.add_argument("--login-inflight", type=int, default=10,
                   help="logins under way at once (ngircd listens with a"
                        " backlog of 10: more makes it drop SYNs)")
    p.add_argument("--idle", type=int, default=10000,
                   help="idle logged-in clients for the memory figure")
    p.add_argument("--idle-irc-join", action="store_true",
                   help="idle IRC clients also join the channel (ngircd then"
                        " slows to ~10 joins/s past 6,000 members)")
    p.add_argument("--counter", choices=["auto", "c", "python"], default="auto",
                   help="the send-and-count loop: C helper or Python")
    p.add_argument("--phase-timeout", type=float, default=120,
                   help="seconds before a phase is reported as failed")
    p.add_argument("--quick", action="store_true",
                   help="a few seconds: 20 clients, 4 senders x 200, 50 logins,"
                        " 200 idle, chatd only unless --servers says otherwise")
    p.add_argument("--json", metavar="FILE", help="also write the results here")
    args = p.parse_args(argv)
    if args.quick:
        given = {a.split("=")[0]
                 for a in (argv if argv is not None else sys.argv[1:])}
        quick = {"clients": 20, "senders": 4, "messages": 200, "pairs": 1,
                 "latency_runs": 1, "rate": 200, "latency_seconds": 1,
                 "latency_clients": 20, "logins": 50, "login_inflight": 10,
                 "idle": 200, "phase_timeout": 15, "servers": "chatd"}
        for key, value in quick.items():
            if "--" + key.replace("_", "-") not in given:
                setattr(args, key, value)
    return args


# -- one measurement each ------------------------------------------------


class Bench:
    def __init__(self, args):
        self.args = args
        self.counter_bin = None
        if args.counter != "python":
            try:
                self.counter_bin = build_counter()
            except RuntimeError as e:
                if args.counter == "c":
                    raise
                print(f"note: {e}; using the Python counter", file=sys.stderr)
            if self.counter_bin is None and args.counter == "c":
                raise SystemExit("no C compiler for --counter c")

    def count(self, spec, dialect, messages, rate):
        timeout = self.args.phase_timeout
        if self.counter_bin is not None:
            return run_counter(self.counter_bin, spec, dialect, messages,
                               self.args.size, rate, timeout)
        return count_python(spec, dialect, messages, self.args.size, rate, timeout)

    def send_and_count(self, server: Server, clients: int, messages: int,
                       rate: float, irc: bool = False) -> dict:
        """Log clients in, then send and count; irc: over the server's IRC port."""
        a = self.args
        port, dialect = server.port, server.dialect
        if irc:
            if server.irc_port is None:
                raise PhaseFailed(f"{server.label} has no IRC listener")
            port, dialect = server.irc_port, Dialect("irc")
        crowd = login(server.host, port, dialect, clients,
                      inflight=a.login_inflight, timeout=a.phase_timeout)
        try:
            drain(crowd, timeout=a.phase_timeout)
            spec = plan(crowd, a.senders, messages)
            cpu0 = server.cpu_seconds() if server.pid else None
            result = self.count(spec, dialect, messages, rate)
            if cpu0 is not None:
                result["server_cpu"] = server.cpu_seconds() - cpu0
        finally:
            crowd.close()
        return self.rates(result)

    @staticmethod
    def rates(result: dict) -> dict:
        """Fail a run that timed out; add the per-second figures."""
        if result["timed_out"]:
            raise PhaseFailed(
                f"{result['delivered']} of {result['expected']} lines arrived"
                f" before the deadline ({result['lost']} missing,"
                f" {result['closed']} connections closed)")
        if result["window"] > 0:
            result["per_second"] = result["delivered"] / result["window"]
            result["loadgen_cpu"] = result["cpu"] / result["window"]
            if "server_cpu" in result:
                result["server_cpu_share"] = result["server_cpu"] / result["window"]
        return result

    def fanout(self, server: Server) -> dict:
        return self.send_and_count(server, self.args.clients, self.args.messages, 0)

    def ircfanout(self, server: Server) -> dict:
        """fanout with every client speaking IRC (chatd: its --irc listener)."""
        return self.send_and_count(server, self.args.clients, self.args.messages, 0,
                                   irc=True)

    def wsfanout(self, server: Server) -> dict:
        """fanout with every client a WebSocket page (chatd: its --web listener)."""
        a = self.args
        if server.web_port is None:
            raise PhaseFailed(f"{server.label} has no web listener")
        crowd = ws_login(server.host, server.web_port, a.clients,
                         inflight=a.login_inflight, timeout=a.phase_timeout)
        try:
            drain(crowd, timeout=a.phase_timeout)
            # A page gets its own lines back (docs/web.md): senders hear all.
            spec = [(c, exp + (a.messages if sender else 0), sender)
                    for c, exp, sender in plan(crowd, a.senders, a.messages)]
            cpu0 = server.cpu_seconds()
            result = count_ws(spec, a.messages, a.size, a.phase_timeout)
            result["server_cpu"] = server.cpu_seconds() - cpu0
        finally:
            crowd.close()
        return self.rates(result)

    def latency(self, server: Server) -> dict:
        a = self.args
        senders = min(a.senders, a.latency_clients)
        messages = max(1, int(a.rate * a.latency_seconds / senders))
        return self.send_and_count(server, a.latency_clients, messages, a.rate)

    def spread_login(self, server: Server, clients: int) -> Crowd:
        """clients logged in, split evenly over the server's entries (a
        cluster's nodes), in order: the first node's, then the next's."""
        a = self.args
        entries = server.entries()
        crowd = Crowd()
        for i, entry in enumerate(entries):
            first = clients * i // len(entries)
            login(entry.host, entry.port, entry.dialect,
                  clients * (i + 1) // len(entries) - first, first=first,
                  inflight=a.login_inflight, timeout=a.phase_timeout, crowd=crowd)
        return crowd

    def spread_count(self, server: Server, clients: int, messages: int, rate: float,
                     spec_of) -> dict:
        """Log clients in over the server's nodes, send and count with the
        spec that spec_of(crowd) makes; the CPU of every process in the window."""
        a = self.args
        crowd = self.spread_login(server, clients)
        try:
            drain(crowd, timeout=a.phase_timeout)
            processes = server.processes()
            cpu0 = {name: proc.cpu_seconds() for name, proc in processes.items()}
            result = self.count(spec_of(crowd), Dialect("chatd"), messages, rate)
            result["cpu_of"] = {name: proc.cpu_seconds() - cpu0[name]
                                for name, proc in processes.items()}
            result["server_cpu"] = sum(result["cpu_of"].values())
        finally:
            crowd.close()
        result = self.rates(result)
        if result["window"] > 0:
            result["cpu_share_of"] = {name: cpu / result["window"]
                                      for name, cpu in result["cpu_of"].items()}
        if result["delivered"]:
            result["cpu_us_per_delivery"] = result["server_cpu"] / result["delivered"] * 1e6
        return result

    def cluster(self, server: Server) -> dict:
        """fanout with the clients (and the senders) split evenly over the nodes."""
        a = self.args
        return self.spread_count(server, a.clients, a.messages, 0,
                                 lambda crowd: plan(crowd, a.senders, a.messages))

    def clusterlatency(self, server: Server) -> dict:
        """latency, every sender on the first node and only the last node's
        clients (half the crowd) timed: on a cluster, what crossed Redis.
        One chatd alone gets the same crowd and times the same half."""
        a = self.args
        clients = a.latency_clients
        senders = min(a.senders, clients // 2)
        messages = max(1, int(a.rate * a.latency_seconds / senders))
        total = senders * messages

        def spec(crowd: Crowd) -> list:
            return [(c, total - (messages if i < senders else 0), i < senders,
                     i >= clients // 2)
                    for i, c in enumerate(crowd.clients)]

        return self.spread_count(server, clients, messages, a.rate, spec)

    def logins(self, server: Server) -> dict:
        a = self.args
        crowd = login(server.host, server.port, server.dialect, a.logins,
                      inflight=a.login_inflight, timeout=a.phase_timeout)
        crowd.close()
        return {"logins": a.logins, "seconds": crowd.login_seconds,
                "per_second": a.logins / crowd.login_seconds, "lost": 0}

    def memory(self, server: Server) -> dict:
        a = self.args
        if not server.pid:
            raise PhaseFailed("memory needs the server's pid (--target ...:PID)")
        raise_fd_limit(a.idle + 1000)
        before = server.rss_kib()
        dialect = server.dialect
        dialect.join = a.idle_irc_join
        crowd = login(server.host, server.port, dialect, a.idle,
                      inflight=a.login_inflight, timeout=a.phase_timeout)
        try:
            drain(crowd, quiet=1.0, timeout=a.phase_timeout)
            after = server.rss_kib()
            if not server.alive():
                raise PhaseFailed(f"{server.label} died")
        finally:
            crowd.close()
        return {"clients": a.idle, "rss_before_kib": before, "rss_after_kib": after,
                "per_second": None, "login_seconds": crowd.login_seconds,
                "kib_per_client": (after - before) / a.idle, "lost": 0}


def run_one(bench: Bench, make_server, scenario: str) -> dict:
    server = make_server()
    started = time.monotonic()
    try:
        server.start()
        result = getattr(bench, scenario)(server)
        if not server.alive():
            raise PhaseFailed(f"{server.label} exited:\n{server.log_tail()}")
        result["ok"] = True
    except PhaseFailed as e:
        result = {"ok": False, "error": str(e), "lost": 0}
    finally:
        # a second Ctrl-C must not leave the server running
        with contextlib.suppress(KeyboardInterrupt):
            server.stop()
    result["server"] = server.label
    result["elapsed"] = time.monotonic() - started
    return result


SCENARIOS = ("fanout", "ircfanout", "wsfanout", "latency", "logins", "memory",
             "cluster", "clusterlatency")
# --pairs runs; the ratio is the median of pairs'
PAIRED = ("fanout", "ircfanout", "wsfanout", "cluster")
# chatd nodes through Redis against one chatd alone, whatever --servers says
CLUSTERED = ("cluster", "clusterlatency")


# -- the table -----------------------------------------------------------


def fmt(value, unit="") -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if abs(value) >= 100:
        return f"{value:,.0f}{unit}"
    return f"{value:.3g}{unit}"


def summarize(results: dict, labels: list[str]) -> list[list[str]]:
    """Rows of (measure, per server..., ratio, target) from the raw results."""
    rows = []

    def ok(rs):
        return [r for r in rs if r.get("ok")]

    def med(label, scenario, key):
        """The median of key over label's good runs; key may be (dict, name)."""
        keys = key if isinstance(key, tuple) else (key,)
        vals = []
        for r in ok(results.get(scenario, {}).get(label, [])):
            for k in keys:
                r = r.get(k) if isinstance(r, dict) else None
            if r is not None:
                vals.append(r)
        return statistics.median(vals) if vals else None

    def row(name, scenario, key, unit, better, target):
        vals = [med(lbl, scenario, key) for lbl in labels]
        ratio = None
        if len(labels) == 2 and None not in vals and vals[1]:
            ratio = vals[0] / vals[1]
        if scenario in PAIRED and len(labels) == 2:
            pairs = list(zip(results.get(scenario, {}).get(labels[0], []),
                             results.get(scenario, {}).get(labels[1], []), strict=False))
            ratios = [a["per_second"] / b["per_second"] for a, b in pairs
                      if a.get("ok") and b.get("ok") and key == "per_second"]
            if ratios:
                ratio = statistics.median(ratios)
        verdict = ""
        if ratio is not None and target is not None:
            held = ratio >= target if better == "higher" else ratio <= target
            verdict = ("held" if held else "MISSED") + (
                f" (>= {target:g}x)" if better == "higher" else f" (<= {target:g}x)")
        rows.append([name] + [fmt(v, unit) for v in vals]
                    + [fmt(ratio, "x") if ratio is not None else "-", verdict])

    for scenario, title in (("fanout", "fan-out"), ("ircfanout", "IRC fan-out"),
                            ("wsfanout", "WebSocket fan-out")):
        if scenario in results:
            row(f"{title} deliveries/s (median)", scenario, "per_second", "", "higher", 5)
            row("  load generator CPU (of 1 core)", scenario, "loadgen_cpu", "", "", None)
            row("  server CPU (of 1 core)", scenario, "server_cpu_share", "", "", None)
            row("  timed window (s)", scenario, "window", "", "", None)
    if "latency" in results:
        row("latency p50 (ms)", "latency", "p50_ms", "", "lower", None)
        row("latency p99 (ms)", "latency", "p99_ms", "", "lower", 1)
        row("  load generator CPU (of 1 core)", "latency", "loadgen_cpu", "", "", None)
    def processes(scenario):
        return sorted({name for rs in results.get(scenario, {}).values()
                       for r in ok(rs) for name in r.get("cpu_share_of", {})})

    if "cluster" in results:
        row("cluster fan-out deliveries/s (median)", "cluster", "per_second", "",
            "higher", 0.9)
        row("  load generator CPU (of 1 core)", "cluster", "loadgen_cpu", "", "", None)
        row("  server CPU, all processes (of 1 core)", "cluster", "server_cpu_share",
            "", "", None)
        for name in processes("cluster"):
            row(f"    {name}", "cluster", ("cpu_share_of", name), "", "", None)
        row("  server CPU per delivery (us)", "cluster", "cpu_us_per_delivery", "", "",
            None)
        row("  timed window (s)", "cluster", "window", "", "", None)
    if "clusterlatency" in results:
        row("cross-node latency p50 (ms)", "clusterlatency", "p50_ms", "", "lower", None)
        row("cross-node latency p99 (ms)", "clusterlatency", "p99_ms", "", "lower", 2)
        row("  load generator CPU (of 1 core)", "clusterlatency", "loadgen_cpu", "", "",
            None)
        for name in processes("clusterlatency"):
            row(f"    {name} CPU", "clusterlatency", ("cpu_share_of", name), "", "", None)
    if "logins" in results:
        row("logins/s", "logins", "per_second", "", "higher", 1)
    if "memory" in results:
        row("memory per idle client (KiB)", "memory", "kib_per_client", "", "lower", 1)
    lost = []
    for lbl in labels:
        n = sum(r.get("lost", 0) + r.get("extra", 0)
                for sc in results.values() for r in sc.get(lbl, []))
        lost.append(str(n))
    rows.append(["lost lines (all runs)"] + lost + ["", "must be 0"])
    failed = []
    for lbl in labels:
        n = sum(1 for sc in results.values() for r in sc.get(lbl, [])
                if not r.get("ok"))
        failed.append(str(n))
    rows.append(["failed phases"] + failed + ["", "must be 0"])
    return rows


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    for r in [header] + rows:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                        for i, (cell, w) in enumerate(zip(r, widths, strict=True))).rstrip())


def main(argv=None) -> int:
    args = parse_args(argv)
    raise_fd_limit(max(args.idle, args.logins, args.clients) + 1000)
    bench = Bench(args)
    makers = {}
    if args.target:
        for t in args.target:
            kind, host, port, *pid = t.split(":")
            if kind not in ("chatd", "irc"):
                raise SystemExit(f"--target: unknown kind {kind!r}")
            srv = Running(kind, host, int(port), int(pid[0]) if pid else None)
            makers[srv.label] = lambda srv=srv: srv
    else:
        for name in args.servers.split(","):
            if name == "chatd":
                Chatd.source = args.chatd_path
                makers["chatd"] = Chatd
            elif name == "ngircd":
                if ngircd_path() is None:
                    raise SystemExit("ngircd is not installed (bench/ensure-ngircd.sh)")
                makers["ngircd"] = Ngircd
            else:
                raise SystemExit(f"--servers: unknown server {name!r}")
    scenarios = [s for s in args.scenarios.split(",") if s]
    for scenario in scenarios:
        if scenario not in SCENARIOS:
            raise SystemExit(f"--scenarios: unknown scenario {scenario!r}"
                             f" (known: {', '.join(SCENARIOS)})")
    clustered = {}
    if set(scenarios) & set(CLUSTERED):
        if args.target:
            raise SystemExit("--target: the cluster scenarios start their own servers")
        if redis_path() is None:
            raise SystemExit("redis-server is not installed"
                             " (tests/ensure-tools.sh redis-server:redis-server)")
        Chatd.source = args.chatd_path
        clustered = {f"{args.nodes} nodes": lambda: Cluster(args.nodes), "1 node": Chatd}
    counter = "C helper" if bench.counter_bin else "Python"
    print(f"# {', '.join(makers)}: {args.clients} clients, {args.senders} senders"
          f" x {args.messages} messages of {args.size} bytes, {args.pairs}"
          f" alternating run(s); latency at {args.rate:g}/s into"
          f" {args.latency_clients}; {args.logins} logins; {args.idle} idle;"
          f" counter: {counter}", flush=True)

    results: dict[str, dict[str, list[dict]]] = {}
    for scenario in scenarios:
        these = clustered if scenario in CLUSTERED else makers
        labels = list(these)
        runs = {"latency": args.latency_runs, "clusterlatency": args.latency_runs,
                **dict.fromkeys(PAIRED, args.pairs)}.get(scenario, 1)
        per = results.setdefault(scenario, {lbl: [] for lbl in labels})
        for i in range(runs):
            order = labels if i % 2 == 0 else labels[::-1]
            for lbl in order:
                if scenario == "wsfanout" and these[lbl] is not Chatd:
                    continue  # only chatd has a web front end to measure
                r = run_one(bench, these[lbl], scenario)
                per[lbl].append(r)
                print(f"# {scenario} {lbl} run {i + 1}: " + describe(r), flush=True)

    for these in (makers, clustered):
        part = {sc: rs for sc, rs in results.items() if set(rs) == set(these)}
        if not these or not part:
            continue
        labels = list(these)
        print()
        header = ["measure"] + labels + (
            [f"{labels[0]}/{labels[1]}", "target"] if len(labels) == 2 else ["", ""])
        print_table(header, summarize(part, labels))
    print("\n(absolute numbers depend on the machine; compare the ratios)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=1)
    bad = any(not r.get("ok") or r.get("lost") or r.get("extra")
              for sc in results.values() for rs in sc.values() for r in rs)
    return 1 if bad else 0


def describe(r: dict) -> str:
    if not r.get("ok"):
        return "FAILED: " + r.get("error", "?")
    parts = []
    if "kib_per_client" in r:
        parts.append(f"{r['kib_per_client']:.1f} KiB/client "
                     f"({r['rss_before_kib']} -> {r['rss_after_kib']} KiB,"
                     f" logged in in {r['login_seconds']:.1f} s)")
    elif "logins" in r:
        parts.append(f"{r['per_second']:,.0f} logins/s ({r['seconds']:.2f} s)")
    else:
        parts.append(f"{r['delivered']:,} lines in {r['window']:.3f} s ="
                     f" {r.get('per_second', 0):,.0f}/s, lost {r['lost']}")
        if r.get("latencies"):
            parts.append(f"p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms"
                         f" max {r['max_ms']:.1f} ms")
        parts.append(f"loadgen CPU {r.get('loadgen_cpu', 0):.0%}")
        if "cpu_share_of" in r and len(r["cpu_share_of"]) > 1:
            parts.append("CPU " + ", ".join(f"{name} {share:.0%}"
                                            for name, share in r["cpu_share_of"].items()))
        elif "server_cpu_share" in r:
            parts.append(f"server CPU {r['server_cpu_share']:.0%}")
    return ", ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
