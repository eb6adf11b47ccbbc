#!/usr/bin/env python3
"""Time for a new hash to be live on every node (standard library only).

    ttl.py --nodes URL,URL,URL --key ADMIN_KEY --bank BENCH --cordon BIN --store URL \
           --reps 50 --cli-reps 50 --out ttl.json

For each repetition a new random PDQ hash (256 random bits) is added to the bank, either
through node 1 (`POST /c/bank/BANK/signal {"pdq": HEX}`, kept-alive http.client connection)
or by the CLI (`cordon --store URL bank import BANK FILE` with that one hash). One thread per
node polls `GET /m/lookup?signal_type=pdq&signal=HEX` on its own kept-alive connection,
sleeping --poll-ms between polls, from before the change is made until the answer holds an
entry of BANK at distance 0. Each poller has answered "no match" at least once before the
change is made. Recorded per repetition and node: when the first matching answer was read,
relative to the moment the POST's answer was read (API) or the CLI process was reaped
(CLI); the time to live is the latest node's. All times come from one clock
(time.perf_counter) in this process.
"""
import argparse
import http.client
import json
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit


def connect(url):
    u = urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=10)


class Poller(threading.Thread):
    """Polls one node for HEX until it matches, the deadline passes or `stop` is set."""

    def __init__(self, node, url, key, bank, hexhash, poll_s, deadline_s, conns):
        super().__init__(daemon=True)
        self.node, self.url, self.key, self.bank, self.hex = node, url, key, bank, hexhash
        self.poll_s, self.deadline_s, self.conns = poll_s, deadline_s, conns
        self.ready = threading.Event()   # answered "no match" once
        self.stop = threading.Event()
        self.seen = None                 # perf_counter when the first matching answer was read
        self.polls = 0
        self.errors = []
        self.matched_before = False

    def get(self):
        path = f"/m/lookup?signal_type=pdq&signal={self.hex}&bypass_coinflip=true"
        for attempt in range(2):
            conn = self.conns[self.node]
            try:
                conn.request("GET", path, headers={"Authorization": f"Bearer {self.key}"})
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}: {body[:200]!r}")
                return json.loads(body)
            except (OSError, http.client.HTTPException) as e:
                # the server closed an idle keep-alive connection: reconnect once
                conn.close()
                self.conns[self.node] = connect(self.url)
                if attempt == 1:
                    raise RuntimeError(f"{type(e).__name__}: {e}")

    def matches(self, answer):
        return any(entry.get("distance") == "0" for entry in answer.get(self.bank, []))

    def run(self):
        end = time.perf_counter() + self.deadline_s
        while not self.stop.is_set() and time.perf_counter() < end:
            try:
                answer = self.get()
            except Exception as e:  # noqa: BLE001 - recorded and reported
                self.errors.append(str(e))
                time.sleep(0.01)
                continue
            now = time.perf_counter()
            self.polls += 1
            if self.matches(answer):
                if not self.ready.is_set():
                    self.matched_before = True   # the random hash was there already
                self.seen = now
                self.ready.set()
                return
            self.ready.set()
            if self.poll_s:
                time.sleep(self.poll_s)
        self.ready.set()


def one(args, conns, admin_conn, mode, rep):
    hexhash = secrets.token_hex(32)
    pollers = [Poller(i, url, args.key, args.bank, hexhash, args.poll_ms / 1000, args.timeout, conns)
               for i, url in enumerate(args.nodes)]
    for p in pollers:
        p.start()
    for p in pollers:
        p.ready.wait(5)
    row = {"rep": rep, "mode": mode, "hash": hexhash}
    if mode == "api":
        body = json.dumps({"pdq": hexhash, "note": f"ttl-{rep}"})
        t_send = time.perf_counter()
        for attempt in range(2):
            try:
                admin_conn[0].request("POST", f"/c/bank/{args.bank}/signal", body=body, headers={
                    "Authorization": f"Bearer {args.key}", "Content-Type": "application/json"})
                resp = admin_conn[0].getresponse()
                answer = resp.read()
                break
            except (OSError, http.client.HTTPException):
                admin_conn[0].close()
                admin_conn[0] = connect(args.nodes[0])
                t_send = time.perf_counter()
                if attempt == 1:
                    raise
        t_done = time.perf_counter()
        row["status"] = resp.status
        row["request_ms"] = (t_done - t_send) * 1000
        if resp.status != 200:
            row["error"] = answer[:300].decode(errors="replace")
    else:
        path = os.path.join(args.workdir, "one-hash.tx")
        with open(path, "w") as f:
            f.write(f"pdq {hexhash}\n")
        t_send = time.perf_counter()
        proc = subprocess.run([args.cordon, "--data", os.path.join(args.workdir, "cli-data"),
                               "--store", args.store, "bank", "import", args.bank, path],
                              capture_output=True, text=True)
        t_done = time.perf_counter()
        row["status"] = proc.returncode
        row["request_ms"] = (t_done - t_send) * 1000
        if proc.returncode != 0:
            row["error"] = (proc.stderr or proc.stdout)[-300:]
    for p in pollers:
        p.join(args.timeout + 1)
    for p in pollers:
        p.stop.set()
    row["nodes"] = [{
        "seen_ms": None if p.seen is None else (p.seen - t_done) * 1000,   # after the answer / exit
        "seen_from_send_ms": None if p.seen is None else (p.seen - t_send) * 1000,
        "polls": p.polls, "errors": p.errors[:3], "error_count": len(p.errors),
        "matched_before": p.matched_before,
    } for p in pollers]
    seen = [n["seen_ms"] for n in row["nodes"]]
    row["live_everywhere_ms"] = None if None in seen else max(seen)
    row["live_everywhere_from_send_ms"] = (None if None in seen
                                           else max(n["seen_from_send_ms"] for n in row["nodes"]))
    return row


def pct(values, p):
    v = sorted(values)
    if not v:
        return None
    k = (len(v) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"n": len(values), "min": min(values), "median": statistics.median(values),
            "p90": pct(values, 90), "max": max(values)}


def summary(rows, n_nodes):
    ok = [r for r in rows if r["status"] in (0, 200)]
    return {
        "reps": len(rows),
        "failed_requests": len(rows) - len(ok),
        "never_live_everywhere": sum(r["live_everywhere_ms"] is None for r in ok),
        "live_everywhere_ms": stats([r["live_everywhere_ms"] for r in ok]),
        "live_everywhere_from_send_ms": stats([r["live_everywhere_from_send_ms"] for r in ok]),
        "request_ms": stats([r["request_ms"] for r in ok]),
        "per_node_seen_ms": [stats([r["nodes"][i]["seen_ms"] for r in ok]) for i in range(n_nodes)],
        "poller_errors": sum(n["error_count"] for r in rows for n in r["nodes"]),
        "matched_before_change": sum(n["matched_before"] for r in rows for n in r["nodes"]),
    }


def concurrent_adds(args):
    """Every node at once: one thread per node adds `concurrent_reps` new hashes through that
    node. Answers: the statuses per node and the first few error bodies."""
    statuses, errors, lock = {}, [], threading.Lock()

    def post_all(i, url):
        conn = connect(url)
        for rep in range(args.concurrent_reps):
            body = json.dumps({"pdq": secrets.token_hex(32), "note": f"concurrent-{i}-{rep}"})
            try:
                conn.request("POST", f"/c/bank/{args.bank}/signal", body=body, headers={
                    "Authorization": f"Bearer {args.key}", "Content-Type": "application/json"})
                resp = conn.getresponse()
                answer = resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                conn = connect(url)
                status, answer = "connection error", str(e).encode()
            with lock:
                key = f"node{i + 1}: {status}"
                statuses[key] = statuses.get(key, 0) + 1
                if status != 200 and len(errors) < 5:
                    errors.append(f"node{i + 1}: {status} {answer[:200].decode(errors='replace')}")

    t0 = time.perf_counter()
    threads = [threading.Thread(target=post_all, args=(i, u)) for i, u in enumerate(args.nodes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = sum(v for k, v in statuses.items() if k.endswith(": 200"))
    total = sum(statuses.values())
    return {"per_node": args.concurrent_reps, "total": total, "ok": ok, "failed": total - ok,
            "seconds": round(time.perf_counter() - t0, 2), "statuses": statuses, "errors": errors}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", required=True, type=lambda s: s.split(","))
    ap.add_argument("--key", required=True)
    ap.add_argument("--bank", default="BENCH")
    ap.add_argument("--cordon", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--cli-reps", type=int, default=50)
    ap.add_argument("--concurrent-reps", type=int, default=50,
                    help="hashes added through every node at once, after the timed runs")
    ap.add_argument("--poll-ms", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for every node")
    ap.add_argument("--pause-ms", type=float, default=100.0, help="idle time between repetitions")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    conns = [connect(u) for u in args.nodes]
    admin_conn = [connect(args.nodes[0])]
    rows = []
    for mode, reps in (("api", args.reps), ("cli", args.cli_reps)):
        for rep in range(reps):
            row = one(args, conns, admin_conn, mode, rep)
            rows.append(row)
            if row.get("error") or row["live_everywhere_ms"] is None:
                print(f"ttl {mode} #{rep}: {json.dumps(row)[:600]}", file=sys.stderr)
            time.sleep(args.pause_ms / 1000)
    doc = {
        "nodes": args.nodes, "poll_ms": args.poll_ms, "timeout_s": args.timeout,
        "api": summary([r for r in rows if r["mode"] == "api"], len(args.nodes)),
        "cli": summary([r for r in rows if r["mode"] == "cli"], len(args.nodes)),
        "concurrent": concurrent_adds(args) if args.concurrent_reps else None,
        "rows": rows,
    }
    c = doc["concurrent"]
    if c:
        print(f"concurrent adds, one thread per node: {c['ok']} of {c['total']} answered 200; "
              f"{c['statuses']}; {c['errors'][:1]}", file=sys.stderr)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
    for mode in ("api", "cli"):
        s = doc[mode]
        if s["live_everywhere_ms"]:
            m = s["live_everywhere_ms"]
            print(f"ttl {mode}: {s['reps']} reps, live on every node after the "
                  f"{'answer' if mode == 'api' else 'CLI exit'}: median {m['median']:.1f} ms, "
                  f"p90 {m['p90']:.1f} ms, max {m['max']:.1f} ms; never: {s['never_live_everywhere']}, "
                  f"failed: {s['failed_requests']}", file=sys.stderr)


if __name__ == "__main__":
    main()
