#!/usr/bin/env python3
"""Writes the serve benchmark's report from the files run.sh leaves in WORK.

    python summarize.py --work bench/out/serve --rss-start-kb N --rss-end-kb N --md X.md --json X.json
"""
import argparse
import json
import os
import platform
import subprocess
from pathlib import Path


def ms(us):
    return round(us / 1000, 2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--rss-start-kb", type=int)
    ap.add_argument("--rss-mid-kb", type=int)
    ap.add_argument("--rss-end-kb", type=int)
    ap.add_argument("--md", required=True)
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    work = Path(a.work)

    lookups = []
    for p in work.glob("lookup-t*-c*.json"):
        d = json.loads(p.read_text())
        lat = d["latency_us"]
        lookups.append({
            "threads": d["threads"], "connections": d["connections"],
            "duration_s": round(d["duration_us"] / 1e6, 2), "requests": d["requests"],
            "req_per_s": round(d["requests"] / (d["duration_us"] / 1e6), 1),
            "latency_ms": {k: ms(lat[k]) for k in ("min", "mean", "p50", "p75", "p90", "p99", "p99.9", "max")},
            "errors": d["errors"], "non_2xx": d["non_2xx"], "server_cpu_cores": d["server_cpu_cores"],
        })
    lookups.sort(key=lambda r: -r["connections"])
    check = json.loads((work / "lookup-check.json").read_text())
    submit = json.loads((work / "submit.json").read_text())
    outbox_raw = (work / "outbox.json").read_text() if (work / "outbox.json").exists() else ""
    try:
        outbox = json.loads(outbox_raw)
    except ValueError:
        outbox = {"unparsable": outbox_raw[:200]}
    try:
        version = subprocess.run([str(work / "cordon.bin"), "--version"], capture_output=True,
                                 text=True).stdout.strip()
    except OSError:
        version = None

    result = {
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "cordon": version},
        "server_rss_mb": {"start": a.rss_start_kb and round(a.rss_start_kb / 1024),
                          "after_lookups": a.rss_mid_kb and round(a.rss_mid_kb / 1024),
                          "end": a.rss_end_kb and round(a.rss_end_kb / 1024)},
        "lookup_check": check, "lookups": lookups, "submissions": submit, "outbox_after": outbox,
    }
    Path(a.json).write_text(json.dumps(result, indent=2) + "\n")

    L = []
    L.append("# Cordon HTTP serve benchmark\n")
    L.append(f"One run on {os.cpu_count()} CPUs, loopback; the load generator and `cordon serve` share "
             "the same cores. {}. Server RSS {} MB after start-up, {} MB after the lookups, {} MB at the end.\n".format(
                 version, result["server_rss_mb"]["start"], result["server_rss_mb"]["after_lookups"],
                 result["server_rss_mb"]["end"]))
    L.append("## GET /m/lookup, 1,000,000-hash bank (wrk, closed loop)\n")
    L.append(f"Sanity check (first {check['queries']} queries, one by one): statuses {check['statuses']}, "
             f"{check['with_matches']} with matches.\n")
    L.append("| wrk threads | connections | seconds | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms "
             "| errors | non-2xx | server CPU (cores) |")
    L.append("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    for r in lookups:
        lat, e = r["latency_ms"], r["errors"]
        errs = sum(e.values())
        L.append(f"| {r['threads']} | {r['connections']} | {r['duration_s']} | {r['req_per_s']:,.0f} | "
                 f"{lat['p50']} | {lat['p90']} | {lat['p99']} | {lat['p99.9']} | {lat['max']} | "
                 f"{errs if errs else 0}{' ' + json.dumps(e) if errs else ''} | {r['non_2xx']} | "
                 f"{r['server_cpu_cores']} |")
    L.append("")
    o = submit["open_loop"]
    L.append(f"## POST /v1/submissions, ~1 MP JPEGs (open loop at {o['target_rate']:g}/s)\n")
    L.append(f"{submit['photos']} photos, {submit['photo_bytes_mean']:,} bytes on average; half of them "
             "(by name) are in bank BENCH, and rule `known` (BENCH, distance <= 31) decides `remove`, "
             "delivered to a local webhook receiver.\n")
    L.append("| measure | value |")
    L.append("| --- | --- |")
    L.append(f"| sent / target rate / achieved send rate | {o['sent']} / {o['target_rate']:g}/s / "
             f"{o['achieved_send_rate']}/s |")
    L.append(f"| answers | {o['statuses']} ({o['error_count']} errors) |")
    L.append(f"| with a `remove` decision / webhooks received | {o['with_remove_decision']} / "
             f"{o['webhooks_received']} |")
    for key, label in (("http_latency_ms", "HTTP response latency (ms)"),
                       ("upload_to_webhook_ms", "upload -> webhook latency (ms)"),
                       ("send_lag_ms", "send lag behind schedule (ms)")):
        s = o[key]
        if s.get("n"):
            L.append(f"| {label} | p50 {s['p50']}, p90 {s['p90']}, p99 {s['p99']}, max {s['max']} (n={s['n']}) |")
    L.append("")
    if submit["closed_loop"]:
        L.append("### Closed loop (maximum submission throughput)\n")
        L.append("| concurrent | seconds | completed | per second | p50 ms | p99 ms | errors |")
        L.append("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for c in submit["closed_loop"]:
            h = c["http_latency_ms"]
            L.append(f"| {c['concurrency']} | {c['duration_s']} | {c['completed']} | {c['throughput']} | "
                     f"{h.get('p50')} | {h.get('p99')} | {c['errors']} |")
        L.append("")
    w = submit["webhook_receiver"]
    L.append(f"Webhook receiver over the whole run: {w['deliveries']} deliveries, {w['distinct_content_ids']} "
             f"distinct submissions, {w['duplicates']} duplicates, {w['bad_signature']} bad signatures, "
             f"{w['unparsable']} unparsable. Outbox after the run: "
             f"{json.dumps(outbox)[:300]}.\n")
    L.append("Latencies from the client's clock; percentiles are nearest-rank (submissions) or wrk's "
             "HdrHistogram (lookups). wrk is closed loop: at saturation its latency is queueing "
             "(connections / throughput), not service time. See bench/serve/README.md.")
    Path(a.md).write_text("\n".join(L) + "\n")


if __name__ == "__main__":
    main()
