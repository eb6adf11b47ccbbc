#!/usr/bin/env python3
"""Submission load: POST /v1/submissions with real JPEGs, open loop at a fixed rate, with a
local webhook receiver timing upload -> webhook; then (optionally) closed-loop runs to find
the decode-limited maximum throughput. Standard library only.

    python submit_load.py --url http://127.0.0.1:18080 --key ck_... --photos DIR \
        --hook-port 18081 --secret bench-secret --rate 50 --duration 30 \
        --closed "2 4" --closed-duration 10 --out submit.json

Timing: one clock (time.perf_counter) in one process for sender and receiver.
  * scheduled: t0 + i / rate (the open-loop send time; sends never wait for answers)
  * start:     just before the request is written (lag = start - scheduled)
  * answered:  response fully read         -> http latency = answered - start
  * hooked:    the webhook's body received -> upload-to-webhook = hooked - start
"""
import argparse
import hashlib
import hmac
import http.client
import json
import os
import statistics
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

clock = time.perf_counter


def pct(values, p):
    """Nearest-rank percentile (p in 0..100) of a list; None when empty."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def summary_ms(values):
    if not values:
        return {"n": 0}
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "min": round(min(ms), 2),
        "p50": round(statistics.median(ms), 2),
        "p90": round(pct(ms, 90), 2),
        "p99": round(pct(ms, 99), 2),
        "max": round(max(ms), 2),
        "mean": round(statistics.fmean(ms), 2),
    }


# --- webhook receiver -------------------------------------------------------------------

class Hooks:
    def __init__(self, secret: bytes):
        self.secret = secret
        self.lock = threading.Lock()
        self.first = {}  # content_id -> perf_counter of first delivery
        self.deliveries = 0
        self.duplicates = 0
        self.bad_signature = 0
        self.unparsable = 0
        self.idempotency_keys = set()


def make_handler(hooks: Hooks):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            at = clock()
            want = "sha256=" + hmac.new(hooks.secret, body, hashlib.sha256).hexdigest()
            good = hmac.compare_digest(want, self.headers.get("x-cordon-signature", ""))
            try:
                content_id = json.loads(body)["submission"]["content_id"]
            except (ValueError, KeyError, TypeError):
                content_id = None
            with hooks.lock:
                hooks.deliveries += 1
                if not good:
                    hooks.bad_signature += 1
                if content_id is None:
                    hooks.unparsable += 1
                elif content_id in hooks.first:
                    hooks.duplicates += 1
                else:
                    hooks.first[content_id] = at
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    return Handler


# --- sender -----------------------------------------------------------------------------

class Sender:
    def __init__(self, url: str, key: str, photos):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port or 80
        self.key = key
        self.photos = photos
        self.local = threading.local()

    def conn(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            c = http.client.HTTPConnection(self.host, self.port, timeout=60)
            self.local.conn = c
        return c

    def body(self, content_id: str, account_id: str, photo):
        boundary = "cordonbench" + hashlib.sha1(content_id.encode()).hexdigest()
        name, data = photo
        parts = []
        for field, value in (("content_id", content_id), ("account_id", account_id)):
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n{value}\r\n'.encode()
            )
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="media"; filename="{name}"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n".encode()
        )
        parts.append(data)
        parts.append(f"\r\n--{boundary}--\r\n".encode())
        return boundary, b"".join(parts)

    def submit(self, content_id: str, account_id: str, photo):
        """Returns dict(start, answered, status, decisions, error)."""
        boundary, body = self.body(content_id, account_id, photo)
        headers = {
            "Authorization": f"Bearer {self.key}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(body)),
        }
        for attempt in (0, 1):
            c = self.conn()
            start = clock()
            try:
                c.request("POST", "/v1/submissions", body=body, headers=headers)
                r = c.getresponse()
                payload = r.read()
                answered = clock()
            except (OSError, http.client.HTTPException) as e:
                c.close()
                self.local.conn = None
                if attempt == 0 and isinstance(e, (http.client.RemoteDisconnected, BrokenPipeError,
                                                   ConnectionResetError)):
                    continue  # a kept-alive connection closed under us: one fresh try
                return {"start": start, "answered": clock(), "status": None, "decisions": [],
                        "error": repr(e)}
            out = {"start": start, "answered": answered, "status": r.status, "decisions": [], "error": None}
            try:
                doc = json.loads(payload)
                out["decisions"] = [d.get("action") for d in doc.get("decisions", [])]
                out["matches"] = len(doc.get("matches", []))
            except ValueError:
                out["error"] = "unparsable answer: " + payload[:200].decode(errors="replace")
            if r.status != 201:
                out["error"] = f"HTTP {r.status}: " + payload[:300].decode(errors="replace")
            return out


def open_loop(sender, hooks, rate, duration, run_id, wait):
    n = int(rate * duration)
    results = [None] * n
    scheduled = [0.0] * n
    ids = [f"bench-{run_id}-open-{i}" for i in range(n)]
    pool = ThreadPoolExecutor(max_workers=64)

    def job(i):
        r = sender.submit(ids[i], f"acct-{i % 97}", sender.photos[i % len(sender.photos)])
        results[i] = r

    t0 = clock() + 0.2
    for i in range(n):
        scheduled[i] = t0 + i / rate
        delay = scheduled[i] - clock()
        if delay > 0:
            time.sleep(delay)
        pool.submit(job, i)
    pool.shutdown(wait=True)
    t_end = max(r["answered"] for r in results)
    # wait for every webhook a decision promises
    expected = [i for i, r in enumerate(results) if r["status"] == 201 and "remove" in r["decisions"]]
    deadline = clock() + wait
    while clock() < deadline:
        with hooks.lock:
            missing = [i for i in expected if ids[i] not in hooks.first]
        if not missing:
            break
        time.sleep(0.05)
    with hooks.lock:
        first = dict(hooks.first)
    starts = [r["start"] for r in results]
    hook_lat = [first[ids[i]] - results[i]["start"] for i in expected if ids[i] in first]
    statuses = {}
    for r in results:
        statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
    errors = [r["error"] for r in results if r["error"]]
    return {
        "target_rate": rate,
        "duration_s": duration,
        "sent": n,
        "achieved_send_rate": round((n - 1) / (max(starts) - min(starts)), 2) if n > 1 else None,
        "completed_rate": round(n / (t_end - t0), 2),
        "statuses": statuses,
        "errors": errors[:10],
        "error_count": len(errors),
        "with_remove_decision": len(expected),
        "with_any_match": sum(1 for r in results if r.get("matches")),
        "webhooks_received": sum(1 for i in expected if ids[i] in first),
        "webhooks_missing": [ids[i] for i in expected if ids[i] not in first][:20],
        "send_lag_ms": summary_ms([r["start"] - s for r, s in zip(results, scheduled)]),
        "http_latency_ms": summary_ms([r["answered"] - r["start"] for r in results if r["status"] == 201]),
        "upload_to_webhook_ms": summary_ms(hook_lat),
    }


def closed_loop(sender, concurrency, duration, run_id):
    stop_at = clock() + duration
    lock = threading.Lock()
    done, lat, errors, counter = [], [], [], [0]

    def worker(w):
        while clock() < stop_at:
            with lock:
                i = counter[0]
                counter[0] += 1
            r = sender.submit(f"bench-{run_id}-closed{concurrency}-{i}", f"acct-{i % 97}",
                              sender.photos[i % len(sender.photos)])
            with lock:
                if r["status"] == 201:
                    done.append(r["answered"])
                    lat.append(r["answered"] - r["start"])
                else:
                    errors.append(r["error"])

    t0 = clock()
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = clock() - t0
    return {
        "concurrency": concurrency,
        "duration_s": round(elapsed, 2),
        "completed": len(done),
        "throughput": round(len(done) / elapsed, 2),
        "errors": len(errors),
        "error_samples": errors[:5],
        "http_latency_ms": summary_ms(lat),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--photos", required=True)
    ap.add_argument("--hook-port", type=int, required=True)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--rate", type=float, default=50)
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--wait", type=float, default=15, help="seconds to wait for late webhooks")
    ap.add_argument("--closed", default="2 4", help="closed-loop concurrencies ('' for none)")
    ap.add_argument("--closed-duration", type=float, default=10)
    ap.add_argument("--admin-key", help="with it, wait for /v1/outbox to empty before stopping the receiver")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    photos = [(p.name, p.read_bytes()) for p in sorted(Path(args.photos).glob("*.jpg"))]
    if not photos:
        sys.exit(f"no photos in {args.photos}")
    hooks = Hooks(args.secret.encode())
    server = ThreadingHTTPServer(("127.0.0.1", args.hook_port), make_handler(hooks))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()

    run_id = f"{int(time.time())}-{os.getpid()}"
    sender = Sender(args.url, args.key, photos)
    # warm-up: a few uploads, not counted (connections, page cache, the server's first decode)
    for i in range(4):
        sender.submit(f"bench-{run_id}-warm-{i}", "acct-warm", photos[i % len(photos)])
    time.sleep(0.5)

    print(f"open loop: {args.rate}/s for {args.duration} s", file=sys.stderr)
    result = {
        "photos": len(photos),
        "photo_bytes_mean": round(statistics.fmean(len(d) for _, d in photos)),
        "open_loop": open_loop(sender, hooks, args.rate, args.duration, run_id, args.wait),
        "closed_loop": [],
    }
    for c in [int(x) for x in args.closed.split()]:
        print(f"closed loop: {c} concurrent for {args.closed_duration} s", file=sys.stderr)
        result["closed_loop"].append(closed_loop(sender, c, args.closed_duration, run_id))
    # webhooks of the closed-loop runs (only counted for duplicates/signatures): let the
    # outbox drain before the receiver goes away, or they would be left failed
    deadline = clock() + 20
    time.sleep(1.0)
    while args.admin_key and clock() < deadline:
        try:
            c = http.client.HTTPConnection(sender.host, sender.port, timeout=10)
            c.request("GET", "/v1/outbox", headers={"Authorization": f"Bearer {args.admin_key}"})
            doc = json.loads(c.getresponse().read())
            c.close()
        except (OSError, ValueError, http.client.HTTPException):
            break
        if not doc.get("pending"):
            break
        time.sleep(0.2)
    with hooks.lock:
        result["webhook_receiver"] = {
            "deliveries": hooks.deliveries,
            "distinct_content_ids": len(hooks.first),
            "duplicates": hooks.duplicates,
            "bad_signature": hooks.bad_signature,
            "unparsable": hooks.unparsable,
        }
    server.shutdown()
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["open_loop"], indent=2), file=sys.stderr)


if __name__ == "__main__":
    main()
