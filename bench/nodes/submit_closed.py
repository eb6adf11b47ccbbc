#!/usr/bin/env python3
"""Closed-loop submissions through one or more nodes, to find what the store lets through
(standard library only).

    submit_closed.py --nodes URL[,URL...] --key KEY --concurrency 12 --seconds 10 --out FILE

Each of `--concurrency` threads (spread over the nodes round-robin, one kept-alive
connection each) sends `POST /v1/submissions` as soon as its previous answer arrived, for
`--seconds`. The upload is a 160x100 PNG made here (a gradient with noise, so that it has
a PDQ hash of good quality), tiny on purpose: decoding and hashing it cost next to nothing,
so the rate shows the cost of recording a submission (one store transaction per upload),
not of decoding photos. Every upload has a new `content_id`, so none is an idempotent
replay; `account_id` is one of 97.
"""
import argparse
import http.client
import json
import random
import statistics
import struct
import threading
import time
import uuid
import zlib
from urllib.parse import urlsplit


def png(width=160, height=100, seed=7):
    rng = random.Random(seed)
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter: none
        for x in range(width):
            v = (x * 255 // width + y * 128 // height + rng.randrange(40)) % 256
            rows += bytes((v, (v * 3 + y) % 256, (255 - v + x) % 256))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(rows), 6)) + chunk(b"IEND", b""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", required=True, type=lambda s: s.split(","))
    ap.add_argument("--key", required=True)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    media = png()
    statuses, latencies, errors, lock = {}, [], [], threading.Lock()
    run_id = uuid.uuid4().hex[:8]

    def sender(i):
        u = urlsplit(a.nodes[i % len(a.nodes)])
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        end = time.perf_counter() + a.seconds
        n = 0
        while time.perf_counter() < end:
            boundary = uuid.uuid4().hex
            fields = {"content_id": f"nodes-{run_id}-{i}-{n}", "account_id": f"acct-{(i * 31 + n) % 97}"}
            body = b"".join(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                for k, v in fields.items())
            body += (f'--{boundary}\r\nContent-Disposition: form-data; name="media"; filename="u.png"\r\n'
                     f"Content-Type: image/png\r\n\r\n").encode() + media + f"\r\n--{boundary}--\r\n".encode()
            n += 1
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/v1/submissions", body=body, headers={
                    "Authorization": f"Bearer {a.key}", "Content-Type": f"multipart/form-data; boundary={boundary}"})
                resp = conn.getresponse()
                answer = resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
                status, answer = "connection error", str(e).encode()
            t1 = time.perf_counter()
            with lock:
                statuses[str(status)] = statuses.get(str(status), 0) + 1
                latencies.append((t1 - t0) * 1000)
                if status != 201 and len(errors) < 3:
                    errors.append(f"{status} {answer[:200].decode(errors='replace')}")

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(a.concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    latencies.sort()
    q = lambda p: latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] if latencies else None
    doc = {"nodes": len(a.nodes), "concurrency": a.concurrency, "seconds": round(elapsed, 2),
           "completed": len(latencies), "per_s": round(statuses.get("201", 0) / elapsed, 1),
           "statuses": statuses, "latency_ms": {"p50": q(50), "p99": q(99), "max": q(100),
                                                "mean": statistics.fmean(latencies) if latencies else None},
           "media_bytes": len(media), "errors": errors}
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=1)
    print(f"== submissions, {a.concurrency} senders over {len(a.nodes)} node(s): {doc['per_s']}/s, "
          f"p50 {doc['latency_ms']['p50']:.1f} ms, statuses {statuses}", flush=True)


if __name__ == "__main__":
    main()
