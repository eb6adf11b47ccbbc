#!/usr/bin/env python3
"""Soak load for `cordon serve`: a steady mix of lookups, submissions and bank changes, each
open loop at a fixed rate, for a fixed time; a webhook receiver; RSS samples. Standard
library only (asyncio: one event loop sends everything and receives the webhooks).

    python soak.py --url http://127.0.0.1:18090 --server-pid PID --data DATA \
        --submitter-key ck_... --curator-key ck_... --admin-key ck_... \
        --bank SOAK --bank-hashes bank-random.txt --photos PHOTO_DIR \
        --hook-port 18091 --secret soak-secret --seconds 600 --out summary.json

Kinds of requests (each one is timed and its answer checked; anything else is an error):
  lookup       GET /m/lookup?signal_type=pdq&signal=HEX, half near copies of a bank hash
               (0-24 bits flipped: must match the bank), half random hashes (must not)
  submission   POST /v1/submissions (media, content_id, account_id): 201; a banked photo
               must match its entry and get `remove` (never quarantined), any other photo
               must match nothing
  bank_change  POST /c/bank/B/signal, PUT /c/bank/B/content/ID (disable / re-enable),
               DELETE /c/bank/B/content/ID, in cycles of three kinds (see bank_cycle)
  bank_check   the lookup right after each change (the new hash must match at once, a
               disabled or deleted one must not), and GET of a disabled entry
  outbox       GET /v1/outbox every sample (admin key): the backlog of deliveries
Latency is from just before the request is written to the end of the answer's body; the
send lag (start - scheduled time) shows whether the client kept the schedule.
"""
import argparse
import asyncio
import hashlib
import hmac
import json
import math
import os
import random
import sys
import time
import urllib.parse
from pathlib import Path

clock = time.perf_counter
# sampled from /proc/PID/status: VmRSS = RssAnon (heap, stacks) + RssFile (mapped files:
# the binary's pages as code paths are first run, SQLite) + RssShmem (SQLite's WAL index)
STATUS_FIELDS = {"VmRSS": "rss_kb", "VmHWM": "hwm_kb", "RssAnon": "anon_kb", "RssFile": "file_kb",
                 "RssShmem": "shmem_kb", "Threads": "threads"}
MAX_ERRORS_KEPT = 20


def pct(sorted_values, p):
    """Nearest-rank percentile (p in 0..100) of a sorted list; None when empty."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def ms(v):
    return None if v is None else round(v * 1000, 2)


def flip_bits(h: int, n: int, rng: random.Random) -> int:
    for bit in rng.sample(range(256), n):
        h ^= 1 << bit
    return h


def hex256(h: int) -> str:
    return f"{h:064x}"


# --- bookkeeping -----------------------------------------------------------------------


async def read_headers(reader):
    """HTTP/1.1 header lines up to the blank line, as a dict of lower-case names."""
    headers = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            return headers
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()

class Kind:
    def __init__(self, name):
        self.name = name
        self.count = 0
        self.latencies = []   # seconds, every answered request
        self.lags = []        # seconds behind schedule (open-loop sends only)
        self.statuses = {}
        self.errors = 0
        self.timeline = []    # (t since start, latency) for per-minute percentiles


class Recorder:
    def __init__(self, t0_ref):
        self.kinds = {}
        self.error_samples = []
        self.error_total = 0
        self.t0_ref = t0_ref  # list with one element: the load's start (set later)

    def kind(self, name) -> Kind:
        if name not in self.kinds:
            self.kinds[name] = Kind(name)
        return self.kinds[name]

    def error(self, kind: str, message: str):
        self.kind(kind).errors += 1
        self.error_total += 1
        if len(self.error_samples) < MAX_ERRORS_KEPT:
            t = round(clock() - self.t0_ref[0], 2) if self.t0_ref[0] else None
            self.error_samples.append({"t": t, "kind": kind, "error": message[:400]})
            print(f"ERROR [{kind}] at t={t}s: {message[:400]}", file=sys.stderr)


# --- a small HTTP/1.1 client on asyncio streams ----------------------------------------

class HttpError(Exception):
    pass


class Client:
    """Keep-alive connections, opened as needed (open loop: never waits for a free one).
    The server closes a connection left idle for its header timeout (10 s by default):
    such a connection, seen closed when it is taken from the pool, is dropped and counted;
    a reused connection that fails before any answer (the server closed it just as the
    request went out) is retried once on a new connection and counted as a retry."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.idle = []
        self.opened = 0
        self.retries = 0
        self.closed_idle = 0

    async def _connect(self):
        self.opened += 1
        return await asyncio.open_connection(self.host, self.port)

    def _take_idle(self):
        while self.idle:
            reader, writer = self.idle.pop()
            if reader.at_eof() or writer.is_closing():
                self.closed_idle += 1
                writer.close()
                continue
            return reader, writer
        return None

    async def _exchange(self, conn, head: bytes, body: bytes):
        reader, writer = conn
        writer.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            writer.write(body)
        await writer.drain()
        line = await reader.readline()
        if not line:
            raise ConnectionResetError("connection closed before the answer")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise HttpError(f"bad status line {line[:80]!r}")
        status = int(parts[1])
        headers = await read_headers(reader)
        if "content-length" in headers:
            payload = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await reader.readline()
                    break
                chunks.append(await reader.readexactly(size))
                await reader.readline()
            payload = b"".join(chunks)
        elif status in (204, 304) or 100 <= status < 200:
            payload = b""
        else:
            payload = await reader.read()
            headers["connection"] = "close"
        return status, headers, payload

    async def request(self, method, path, key, body=b"", content_type=None, timeout=30.0):
        """(status, payload bytes, seconds); raises HttpError on transport errors and timeouts."""
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                f"Authorization: Bearer {key}"]
        if body or method in ("POST", "PUT"):
            head.append(f"Content-Length: {len(body)}")
        if content_type:
            head.append(f"Content-Type: {content_type}")
        head = ("\r\n".join(head) + "\r\n\r\n").encode()
        for attempt in (0, 1):
            conn = self._take_idle() if attempt == 0 else None
            reused = conn is not None
            start = clock()
            try:
                if conn is None:
                    conn = await asyncio.wait_for(self._connect(), timeout)
                status, headers, payload = await asyncio.wait_for(self._exchange(conn, head, body), timeout)
            except (ConnectionError, asyncio.IncompleteReadError) as e:
                if conn:
                    conn[1].close()
                if reused:
                    self.retries += 1
                    print(f"retry: {method} {path.split('?')[0]} on a new connection after "
                          f"{type(e).__name__}: {e}", file=sys.stderr)
                    continue
                raise HttpError(f"{type(e).__name__}: {e}") from None
            except asyncio.TimeoutError:
                if conn:
                    conn[1].close()
                raise HttpError(f"no answer within {timeout} s") from None
            elapsed = clock() - start
            if headers.get("connection", "").lower() == "close":
                conn[1].close()
            else:
                self.idle.append(conn)
            return status, payload, elapsed
        raise HttpError("unreachable")


# --- webhook receiver ------------------------------------------------------------------

class Hooks:
    def __init__(self, secret: bytes):
        self.secret = secret
        self.deliveries = 0
        self.by_key = {}          # Idempotency-Key -> times received
        self.decision_ids = {}    # decision id from the body -> times received
        self.bad_signature = 0
        self.unparsable = 0
        self.key_mismatch = 0     # header key not decision-<body id>-<webhook>
        self.events = []          # (t, decision id), for the latency of deliveries

    async def handle(self, reader, writer):
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                headers = await read_headers(reader)
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.record(headers, body)
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the sender closed the connection, or the soak is over
        finally:
            writer.close()

    def record(self, headers, body):
        self.deliveries += 1
        want = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, headers.get("x-cordon-signature", "")):
            self.bad_signature += 1
        key = headers.get("idempotency-key", "")
        self.by_key[key] = self.by_key.get(key, 0) + 1
        try:
            doc = json.loads(body)
            did = int(doc["decision"]["id"])
        except (ValueError, KeyError, TypeError):
            self.unparsable += 1
            return
        self.decision_ids[did] = self.decision_ids.get(did, 0) + 1
        if not key.startswith(f"decision-{did}"):
            self.key_mismatch += 1
        self.events.append((clock(), did))


# --- the load --------------------------------------------------------------------------

class Soak:
    def __init__(self, args):
        self.args = args
        u = urllib.parse.urlsplit(args.url)
        self.t0 = [None]
        self.rec = Recorder(self.t0)
        self.client = Client(u.hostname, u.port or 80)
        self.rng = random.Random(args.seed)
        self.run_id = f"{int(time.time())}-{os.getpid()}"
        self.bank_hashes = [int(t, 16) for t in Path(args.bank_hashes).read_text().split() if len(t) == 64]
        photos = [json.loads(l) for l in Path(args.photo_list).read_text().splitlines()]
        self.photos = [p for p in photos if not p.get("excluded")]
        self.photo_dir = Path(args.photos)
        self.order = list(range(len(self.photos)))
        self.rng.shuffle(self.order)
        self.hooks = Hooks(args.secret.encode())
        self.tasks = set()
        self.decision_ids = set()       # every decision id the submissions' answers gave
        self.decisions_by_action = {}
        self.submitted_at = {}          # decision id -> perf_counter when its upload was sent
        self.samples = []
        self.last_elapsed = 0.0         # latency of the answer call() returned last

    # -- checks shared by the kinds --

    def answered(self, kind, status, payload, elapsed, want_status, lag=None):
        """Counts an answer; returns the parsed JSON or None (and records an error)."""
        k = self.rec.kind(kind)
        k.count += 1
        k.latencies.append(elapsed)
        k.timeline.append((clock() - self.t0[0], elapsed))
        if lag is not None:
            k.lags.append(lag)
        k.statuses[str(status)] = k.statuses.get(str(status), 0) + 1
        if status != want_status:
            self.rec.error(kind, f"HTTP {status} (want {want_status}): {payload[:300].decode(errors='replace')}")
            return None
        try:
            return json.loads(payload)
        except ValueError:
            self.rec.error(kind, f"unparsable answer: {payload[:200]!r}")
            return None

    async def call(self, kind, method, path, key, body=b"", content_type=None, want=200, lag=None):
        try:
            status, payload, elapsed = await self.client.request(method, path, key, body, content_type)
        except HttpError as e:
            k = self.rec.kind(kind)
            k.count += 1
            k.statuses["transport"] = k.statuses.get("transport", 0) + 1
            self.rec.error(kind, f"{method} {path.split('?')[0]}: {e}")
            return None
        self.last_elapsed = elapsed  # read by the caller before it awaits anything else
        return self.answered(kind, status, payload, elapsed, want, lag)

    # -- lookups --

    async def lookup(self, i, scheduled):
        lag = clock() - scheduled
        hit = i % 2 == 0
        if hit:
            h = flip_bits(self.rng.choice(self.bank_hashes), self.rng.randint(0, 24), self.rng)
        else:
            h = self.rng.getrandbits(256)
        path = f"/m/lookup?signal_type=pdq&signal={hex256(h)}"
        doc = await self.call("lookup", "GET", path, self.args.submitter_key, lag=lag)
        if doc is None:
            return
        found = doc.get(self.args.bank) or []
        if hit and not found:
            self.rec.error("lookup", f"near copy of a bank hash not matched: {hex256(h)} -> {doc}")
        elif not hit and found:
            self.rec.error("lookup", f"random hash matched: {hex256(h)} -> {doc}")

    # -- submissions --

    def multipart(self, content_id, account_id, name, data):
        boundary = "soak" + hashlib.sha1(content_id.encode()).hexdigest()
        parts = []
        for field, value in (("content_id", content_id), ("account_id", account_id)):
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n{value}\r\n'.encode())
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="media"; filename="{name}"\r\n'
                     f"Content-Type: image/jpeg\r\n\r\n".encode())
        parts.append(data)
        parts.append(f"\r\n--{boundary}--\r\n".encode())
        return f"multipart/form-data; boundary={boundary}", b"".join(parts)

    async def submission(self, i, scheduled):
        lag = clock() - scheduled
        photo = self.photos[self.order[i % len(self.photos)]]
        data = (self.photo_dir / photo["name"]).read_bytes()
        content_id = f"soak-{self.run_id}-{i}"
        ctype, body = self.multipart(content_id, f"acct-{i % self.args.accounts}", photo["name"], data)
        doc = await self.call("submission", "POST", "/v1/submissions", self.args.submitter_key,
                              body, ctype, want=201, lag=lag)
        if doc is None:
            return
        sent = clock() - self.last_elapsed
        matches = doc.get("matches", [])
        actions = [d.get("action") for d in doc.get("decisions", [])]
        for d in doc.get("decisions", []):
            self.decision_ids.add(d["id"])
            self.submitted_at[d["id"]] = sent
            self.decisions_by_action[d["action"]] = self.decisions_by_action.get(d["action"], 0) + 1
        if any(m.get("quarantined") for m in matches):
            self.rec.error("submission", f"{photo['name']}: match quarantined by the flood guard: {matches}")
        elif photo["banked"]:
            if not any(m.get("bank") == self.args.bank for m in matches) or "remove" not in actions:
                self.rec.error("submission", f"{photo['name']} is banked but got matches={matches} actions={actions}")
        elif matches or actions:
            self.rec.error("submission", f"{photo['name']} is not banked but got matches={matches} actions={actions}")

    # -- bank changes --

    async def expect_lookup(self, h, content_id, present, what):
        doc = await self.call("bank_check", "GET", f"/m/lookup?signal_type=pdq&signal={hex256(h)}",
                              self.args.submitter_key)
        if doc is None:
            return False
        ids = [e.get("bank_content_id") for e in doc.get(self.args.bank) or []]
        if (content_id in ids) != present:
            self.rec.error("bank_check", f"after {what}: content {content_id} "
                           f"{'not ' if present else ''}matched by the next lookup: {doc}")
            return False
        return True

    async def bank_cycle(self, i, scheduled):
        """Three kinds, in turn:
        0: add a hash; it matches; delete it; it does not match.
        1: add; matches; disable for good (disable_until_ts 1); does not match; GET shows
           it disabled (it stays in the bank, disabled).
        2: add; matches; disable for an hour; does not match; enable; matches; delete; does not.
        """
        lag = clock() - scheduled
        bank, curator = self.args.bank, self.args.curator_key
        h = self.rng.getrandbits(256)
        doc = await self.call("bank_change", "POST", f"/c/bank/{bank}/signal", curator,
                              json.dumps({"pdq": hex256(h), "note": f"soak {i}"}).encode(),
                              "application/json", lag=lag)
        if doc is None:
            return
        cid = doc.get("id")
        if not isinstance(cid, int):
            self.rec.error("bank_change", f"no id in {doc}")
            return
        if not await self.expect_lookup(h, cid, True, "add"):
            return
        content = f"/c/bank/{bank}/content/{cid}"
        variant = i % 3

        async def put(ts):
            return await self.call("bank_change", "PUT", content, curator,
                                   json.dumps({"disable_until_ts": ts}).encode(), "application/json")

        if variant == 1:
            if await put(1) is None or not await self.expect_lookup(h, cid, False, "disable"):
                return
            got = await self.call("bank_check", "GET", content, curator)
            if got is not None and got.get("disable_until_ts") != 1:
                self.rec.error("bank_check", f"disabled content reads {got}")
            return
        if variant == 2:
            if await put(int(time.time()) + 3600) is None or not await self.expect_lookup(h, cid, False, "disable for an hour"):
                return
            if await put(0) is None or not await self.expect_lookup(h, cid, True, "enable"):
                return
        if await self.call("bank_change", "DELETE", content, curator) is None:
            return
        await self.expect_lookup(h, cid, False, "delete")

    # -- driving --

    def spawn(self, coro):
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def open_loop(self, rate, job, t0, duration):
        if rate <= 0:
            return
        n = int(rate * duration)
        for i in range(n):
            at = t0 + i / rate
            delay = at - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            self.spawn(job(i, at))

    def sample(self, t):
        pid = self.args.server_pid
        s = {"t": round(t, 1)}
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            for line in status.splitlines():
                k, _, v = line.partition(":")
                if k in STATUS_FIELDS:
                    s[STATUS_FIELDS[k]] = int(v.split()[0])
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            s["cpu_s"] = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
            s["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
        except OSError as e:
            s["dead"] = str(e)
        s["loadavg"] = Path("/proc/loadavg").read_text().split()[:3]
        s["data_mb"] = round(sum(f.stat().st_size for f in Path(self.args.data).iterdir() if f.is_file()) / 1e6, 1)
        s["decisions"] = len(self.decision_ids)
        s["deliveries"] = self.hooks.deliveries
        s["in_flight"] = len(self.tasks)
        s["client_connections"] = self.client.opened
        return s

    async def sampler(self, t0, end):
        n = 0
        while True:
            at = t0 + n * self.args.sample_seconds
            if at > end + 0.5:
                return
            delay = at - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            s = self.sample(at - t0)
            doc = await self.call("outbox", "GET", "/v1/outbox", self.args.admin_key)
            if doc is not None:
                s["outbox_pending"] = len(doc.get("pending", []))
                s["outbox_failed"] = len(doc.get("failed", []))
            self.samples.append(s)
            if "dead" in s:
                self.rec.error("server", f"server process gone: {s['dead']}")
                return
            rss = s.get("rss_kb", 0) / 1024
            print(f"t={s['t']:6.0f}s rss={rss:7.1f} MB anon={s.get('anon_kb', 0) / 1024:.1f} "
                  f"file={s.get('file_kb', 0) / 1024:.1f} threads={s.get('threads')} fds={s.get('fds')} "
                  f"decisions={s['decisions']} deliveries={s['deliveries']} outbox={s.get('outbox_pending')}"
                  f"/{s.get('outbox_failed')} in_flight={s['in_flight']} errors={self.rec.error_total} "
                  f"load={' '.join(s['loadavg'])}", file=sys.stderr)
            n += 1

    async def run(self):
        a = self.args
        server = await asyncio.start_server(self.hooks.handle, "127.0.0.1", a.hook_port)
        load_start = clock() + 0.5
        self.t0[0] = load_start
        end = load_start + a.seconds
        self.load_avg_start = Path("/proc/loadavg").read_text().split()[:3]
        print(f"soak: {a.seconds} s of {a.lookup_rate} lookups/s, {a.submit_rate} submissions/s, "
              f"{a.bank_rate} bank cycles/s; {len(self.photos)} photos, {len(self.bank_hashes)} bank hashes",
              file=sys.stderr)
        loops = [
            self.open_loop(a.lookup_rate, self.lookup, load_start, a.seconds),
            self.open_loop(a.submit_rate, self.submission, load_start, a.seconds),
            self.open_loop(a.bank_rate, self.bank_cycle, load_start, a.seconds),
        ]
        sampler = asyncio.ensure_future(self.sampler(load_start, end))
        await asyncio.gather(*loops)
        # the load is over: let the requests in flight finish
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=60)
        await sampler
        self.load_avg_end = Path("/proc/loadavg").read_text().split()[:3]
        self.end_sample = self.sample(clock() - load_start)
        # wait for every decision's delivery (and for the outbox to empty)
        drain_start = clock()
        while clock() - drain_start < a.drain_seconds:
            missing = self.decision_ids - set(self.hooks.decision_ids)
            if not missing:
                doc = await self.call("outbox", "GET", "/v1/outbox", a.admin_key)
                if doc is not None and not doc.get("pending") and not doc.get("failed"):
                    break
            await asyncio.sleep(0.5)
        self.drain_seconds = round(clock() - drain_start, 2)
        await asyncio.sleep(1.0)  # late duplicates would show up here
        self.outbox_end = await self.call("outbox", "GET", "/v1/outbox", a.admin_key)
        self.quarantine_end = await self.call("outbox", "GET", "/v1/quarantine", a.curator_key)
        server.close()
        self.load_seconds = round(end - load_start, 1)

    # -- the report --

    def summary(self):
        a = self.args
        kinds = {}
        for name in ("lookup", "submission", "bank_change", "bank_check", "outbox"):
            k = self.rec.kinds.get(name)
            if k is None:
                continue
            lat = sorted(k.latencies)
            lags = sorted(k.lags)
            per_minute = []
            for m in range(math.ceil(a.seconds / 60)):
                window = sorted(l for t, l in k.timeline if m * 60 <= t < (m + 1) * 60)
                if window:
                    per_minute.append({"minute": m + 1, "n": len(window), "p50_ms": ms(pct(window, 50)),
                                       "p99_ms": ms(pct(window, 99))})
            kinds[name] = {
                "count": k.count, "errors": k.errors, "statuses": k.statuses,
                "rate_per_s": round(k.count / a.seconds, 1),
                "p50_ms": ms(pct(lat, 50)), "p90_ms": ms(pct(lat, 90)), "p99_ms": ms(pct(lat, 99)),
                "p999_ms": ms(pct(lat, 99.9)), "max_ms": ms(lat[-1] if lat else None),
                "send_lag_p99_ms": ms(pct(lags, 99)), "send_lag_max_ms": ms(lags[-1] if lags else None),
                "per_minute": per_minute,
            }
        during = [s for s in self.samples if "rss_kb" in s]
        rss = rss_stats(self.samples, a.warmup_seconds)
        first_cpu = during[0].get("cpu_s") if during else None
        cpu = None
        if first_cpu is not None and "cpu_s" in self.end_sample and self.end_sample["t"] > during[0]["t"]:
            cpu = round((self.end_sample["cpu_s"] - first_cpu) / (self.end_sample["t"] - during[0]["t"]), 2)
        h = self.hooks
        received = set(h.decision_ids)
        deliveries = {
            "decisions": len(self.decision_ids),
            "decisions_by_action": self.decisions_by_action,
            "deliveries": h.deliveries,
            "distinct_decisions_delivered": len(received),
            "missing": len(self.decision_ids - received),
            "missing_sample": sorted(self.decision_ids - received)[:10],
            "unexpected": len(received - self.decision_ids),
            "duplicates_by_decision_id": sum(n - 1 for n in h.decision_ids.values() if n > 1),
            "duplicates_by_idempotency_key": sum(n - 1 for n in h.by_key.values() if n > 1),
            "bad_signature": h.bad_signature,
            "unparsable": h.unparsable,
            "idempotency_key_mismatch": h.key_mismatch,
            "drain_s": self.drain_seconds,
        }
        lat = sorted(t - self.submitted_at[d] for t, d in h.events if d in self.submitted_at)
        deliveries["upload_to_webhook_p50_ms"] = ms(pct(lat, 50))
        deliveries["upload_to_webhook_p99_ms"] = ms(pct(lat, 99))
        deliveries["upload_to_webhook_max_ms"] = ms(lat[-1] if lat else None)
        outbox_end = self.outbox_end or {}
        quarantined = (self.quarantine_end or {}).get("quarantined", [])
        return {
            "config": {
                "seconds": a.seconds, "lookup_rate": a.lookup_rate, "submit_rate": a.submit_rate,
                "bank_cycle_rate": a.bank_rate, "accounts": a.accounts, "photos": len(self.photos),
                "photos_banked": sum(1 for p in self.photos if p["banked"]),
                "bank_hashes": len(self.bank_hashes), "sample_seconds": a.sample_seconds,
                "rss_limit_pct": a.rss_limit_pct,
            },
            "load_average": {"start": self.load_avg_start, "end": self.load_avg_end},
            "cpus": os.cpu_count(),
            "kinds": kinds,
            "errors": self.rec.error_total,
            "error_samples": self.rec.error_samples,
            "rss": rss,
            "server_cpu_cores": cpu,
            "server_end": {k: self.end_sample.get(k) for k in ("threads", "fds", "data_mb")},
            "deliveries": deliveries,
            "outbox_end": {"pending": len(outbox_end.get("pending", [])), "failed": len(outbox_end.get("failed", [])),
                           "failed_sample": outbox_end.get("failed", [])[:3]},
            "quarantined_end": len(quarantined),
            "client": {"connections_opened": self.client.opened, "idle_connections_found_closed": self.client.closed_idle,
                       "retries_on_new_connection": self.client.retries},
            "samples": self.samples,
        }


def least_squares_slope(points):
    """Slope of y over x by least squares; 0 for fewer than two points."""
    if len(points) < 2:
        return 0.0
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0


def rss_stats(samples, warmup_seconds):
    """Memory after warm-up: start (first sample at or after the warm-up), end (last
    sample), growth, least-squares slope in MB per minute; and the same over the second
    half of that span, which tells a step early on (new threads, allocator arenas) from
    steady growth."""
    during = [s for s in samples if "rss_kb" in s]
    warm = [s for s in during if s["t"] >= warmup_seconds]
    rss = {"samples": len(during)}
    if not warm:
        return rss
    points = [(s["t"] / 60, s["rss_kb"] / 1024) for s in warm]
    ys = [y for _, y in points]
    start_mb, end_mb = ys[0], ys[-1]
    middle = (warm[0]["t"] + warm[-1]["t"]) / 2
    late = [(x, y) for (x, y), s in zip(points, warm) if s["t"] >= middle]
    rss.update({
        "first_mb": round(during[0]["rss_kb"] / 1024, 1),
        "warmup_s": warmup_seconds,
        "start_mb": round(start_mb, 1), "start_t": warm[0]["t"],
        "end_mb": round(end_mb, 1), "end_t": warm[-1]["t"],
        "min_mb": round(min(ys), 1), "max_mb": round(max(ys), 1),
        "growth_pct": round((end_mb - start_mb) / start_mb * 100, 2),
        "slope_mb_per_min": round(least_squares_slope(points), 3),
        "fit_samples": len(points),
        "second_half_from_t": late[0][0] * 60 if late else None,
        "second_half_growth_pct": round((late[-1][1] - late[0][1]) / late[0][1] * 100, 2) if late else None,
        "second_half_slope_mb_per_min": round(least_squares_slope(late), 3),
        "hwm_mb": round(warm[-1].get("hwm_kb", 0) / 1024, 1),
    })
    anon = [(s["t"] / 60, s["anon_kb"] / 1024) for s in warm if "anon_kb" in s]
    if anon:
        rss.update({
            "anon_start_mb": round(anon[0][1], 1), "anon_end_mb": round(anon[-1][1], 1),
            "anon_growth_pct": round((anon[-1][1] - anon[0][1]) / anon[0][1] * 100, 2),
            "anon_slope_mb_per_min": round(least_squares_slope(anon), 3),
            "file_start_mb": round(warm[0].get("file_kb", 0) / 1024, 1),
            "file_end_mb": round(warm[-1].get("file_kb", 0) / 1024, 1),
            "shmem_end_mb": round(warm[-1].get("shmem_kb", 0) / 1024, 1),
        })
    return rss


def verdict(s):
    """The reasons the run failed (empty when it passed)."""
    problems = []
    if s["errors"]:
        problems.append(f"{s['errors']} errors")
    r = s["rss"]
    if "growth_pct" not in r:
        problems.append("no RSS samples after warm-up")
    elif r["growth_pct"] > s["config"]["rss_limit_pct"]:
        problems.append(f"RSS grew {r['growth_pct']} % after warm-up (limit {s['config']['rss_limit_pct']} %)")
    d = s["deliveries"]
    for key in ("missing", "unexpected", "duplicates_by_decision_id", "duplicates_by_idempotency_key",
                "bad_signature", "unparsable", "idempotency_key_mismatch"):
        if d[key]:
            problems.append(f"webhooks: {key} = {d[key]}")
    if s["outbox_end"]["pending"] or s["outbox_end"]["failed"]:
        problems.append(f"outbox not empty at the end: {s['outbox_end']}")
    if s["quarantined_end"]:
        problems.append(f"{s['quarantined_end']} bank entries quarantined by the flood guard")
    return problems


def table(s):
    def f(v):
        return "-" if v is None else (f"{v:,.1f}" if isinstance(v, float) else f"{v:,}")
    lines = ["| kind | requests | per s | errors | p50 ms | p99 ms | max ms | send lag p99 ms |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, k in s["kinds"].items():
        lines.append(f"| {name} | {f(k['count'])} | {f(k['rate_per_s'])} | {k['errors']} | {f(k['p50_ms'])} | "
                     f"{f(k['p99_ms'])} | {f(k['max_ms'])} | {f(k['send_lag_p99_ms'])} |")
    r, d = s["rss"], s["deliveries"]
    lines += [
        "",
        f"- Server RSS: {r.get('first_mb')} MB at 0 s; {r.get('start_mb')} MB at {r.get('start_t')} s (after warm-up), "
        f"{r.get('end_mb')} MB at {r.get('end_t')} s: {r.get('growth_pct')} %, slope {r.get('slope_mb_per_min')} MB/min "
        f"(least squares over {r.get('fit_samples')} samples); from {r.get('second_half_from_t')} s on: "
        f"{r.get('second_half_growth_pct')} %, {r.get('second_half_slope_mb_per_min')} MB/min; "
        f"range {r.get('min_mb')}-{r.get('max_mb')} MB, peak (VmHWM) {r.get('hwm_mb')} MB."
        + (f" Of it, anonymous memory (RssAnon) {r['anon_start_mb']} -> {r['anon_end_mb']} MB "
           f"({r['anon_growth_pct']} %, {r['anon_slope_mb_per_min']} MB/min), mapped files (RssFile) "
           f"{r['file_start_mb']} -> {r['file_end_mb']} MB, shared (RssShmem) {r['shmem_end_mb']} MB at the end."
           if "anon_start_mb" in r else ""),
        f"- Server CPU: {s['server_cpu_cores']} cores on average; {s['server_end']['threads']} threads, "
        f"{s['server_end']['fds']} fds, data folder {s['server_end']['data_mb']} MB at the end.",
        f"- Webhooks: {f(d['decisions'])} decisions {d['decisions_by_action']}, {f(d['deliveries'])} deliveries, "
        f"{d['missing']} missing, {d['duplicates_by_decision_id']} duplicates (by decision id; "
        f"{d['duplicates_by_idempotency_key']} by Idempotency-Key), {d['bad_signature']} bad signatures; "
        f"upload -> webhook p50 {d['upload_to_webhook_p50_ms']} ms, p99 {d['upload_to_webhook_p99_ms']} ms.",
        f"- Client: {s['client']['connections_opened']} connections opened, "
        f"{s['client']['idle_connections_found_closed']} idle ones found closed by the server, "
        f"{s['client']['retries_on_new_connection']} requests retried on a new connection.",
        f"- Load average (1/5/15 min) at start {' '.join(s['load_average']['start'])}, "
        f"at end {' '.join(s['load_average']['end'])} ({s['cpus']} CPUs).",
    ]
    if s.get("build"):
        b = s["build"]
        lines.append(f"- Binary: commit {b['commit']} with {b['changed_files_in_tree']} changed files in the tree, "
                     f"built {b['binary_built']} (sha256 {b['binary_sha256']}...).")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--report", metavar="SUMMARY_JSON",
                    help="only print the table of an earlier run's summary again (with --warmup-seconds: "
                         "its memory figures recomputed from the samples), and exit as that run would")
    ap.add_argument("--url")
    ap.add_argument("--server-pid", type=int)
    ap.add_argument("--data", help="the server's data folder (its size is sampled)")
    ap.add_argument("--submitter-key")
    ap.add_argument("--curator-key")
    ap.add_argument("--admin-key")
    ap.add_argument("--bank", default="SOAK")
    ap.add_argument("--bank-hashes", help="the bank's imported hashes (tx file)")
    ap.add_argument("--photos", help="the photos' folder")
    ap.add_argument("--photo-list", help="JSON lines: name, banked, excluded")
    ap.add_argument("--hook-port", type=int)
    ap.add_argument("--secret")
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--lookup-rate", type=float, default=300)
    ap.add_argument("--submit-rate", type=float, default=20)
    ap.add_argument("--bank-rate", type=float, default=2, help="bank-change cycles per second")
    ap.add_argument("--accounts", type=int, default=500)
    ap.add_argument("--sample-seconds", type=float, default=10)
    ap.add_argument("--warmup-seconds", type=float, help="default: 60, or a fifth of a shorter run")
    ap.add_argument("--rss-limit-pct", type=float, default=10)
    ap.add_argument("--drain-seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--build-info", help="JSON file describing the binary, copied into the summary")
    ap.add_argument("--out", help="JSON summary")
    ap.add_argument("--md", help="the table, as Markdown")
    args = ap.parse_args()
    if args.report:
        s = json.loads(Path(args.report).read_text())
        warmup = args.warmup_seconds if args.warmup_seconds is not None else s["rss"].get("warmup_s", 60)
        s["rss"] = rss_stats(s["samples"], warmup)
        s["problems"] = verdict(s)
        s["passed"] = not s["problems"]
        print(table(s))
        if s["problems"]:
            print("\nFAILED: " + "; ".join(s["problems"]), file=sys.stderr)
        sys.exit(1 if s["problems"] else 0)
    missing = [n for n in ("url", "server_pid", "data", "submitter_key", "curator_key", "admin_key", "bank_hashes",
                           "photos", "photo_list", "hook_port", "secret", "out") if getattr(args, n) is None]
    if missing:
        ap.error("required: " + ", ".join("--" + n.replace("_", "-") for n in missing))
    if args.warmup_seconds is None:
        args.warmup_seconds = min(60.0, args.seconds / 5)

    soak = Soak(args)
    asyncio.run(soak.run())
    s = soak.summary()
    if args.build_info:
        s["build"] = json.loads(Path(args.build_info).read_text())
    problems = verdict(s)
    s["passed"] = not problems
    s["problems"] = problems
    Path(args.out).write_text(json.dumps(s, indent=2) + "\n")
    text = table(s)
    if args.md:
        Path(args.md).write_text(text + "\n")
    print(text)
    if problems:
        print("\nFAILED: " + "; ".join(problems), file=sys.stderr)
        for e in s["error_samples"][:10]:
            print(f"  t={e['t']}s [{e['kind']}] {e['error']}", file=sys.stderr)
        sys.exit(1)
    print("\npassed", file=sys.stderr)


if __name__ == "__main__":
    main()
