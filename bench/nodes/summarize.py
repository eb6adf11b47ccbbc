#!/usr/bin/env python3
"""Tables (markdown) and one JSON document from the raw outputs of bench/nodes/run.sh."""
import argparse
import glob
import json
import os
import re


def load(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def merged_percentiles(docs):
    """Percentiles (ms) of the union of several wrk latency histograms."""
    hist = {}
    for d in docs:
        for value, count in d.get("histogram_us", []):
            hist[value] = hist.get(value, 0) + count
    total = sum(hist.values())
    if not total:
        return None
    out, seen, values = {}, 0, sorted(hist)
    targets = [("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9)]
    ti = 0
    for v in values:
        seen += hist[v]
        while ti < len(targets) and seen >= total * targets[ti][1] / 100:
            out[targets[ti][0]] = v / 1000
            ti += 1
    out["max"] = values[-1] / 1000
    out["mean"] = sum(v * c for v, c in hist.items()) / total / 1000
    return out


def lookup_run(work, name):
    files = sorted((p for p in glob.glob(f"{work}/{name}.wrk*.json") if re.search(r"\.wrk\d+\.json$", p)),
                   key=lambda p: int(re.search(r"\.wrk(\d+)\.json$", p).group(1)))
    if not files:
        return None
    docs = [load(f) for f in files]
    non2xx = 0
    for f in files:
        m = re.search(r"Non-2xx or 3xx responses: (\d+)", open(f[:-5] + ".txt").read())
        non2xx += int(m.group(1)) if m else 0
    before, after = load(f"{work}/{name}.before.json"), load(f"{work}/{name}.after.json")
    wall = after["time"] - before["time"]
    cores = lambda a, b: round((a - b) / wall, 2)
    per_node = []
    for k, d in enumerate(docs):
        nb, na = before["nodes"][k], after["nodes"][k]
        per_node.append({
            "pid": na["pid"], "connections": None,
            "req_s": round(d["requests"] / d["duration_us"] * 1e6),
            "p50_ms": d["latency_us"]["p50"] / 1000, "p99_ms": d["latency_us"]["p99"] / 1000,
            "cpu_cores": cores(na["cpu_s"], nb["cpu_s"]), "rss_kb_after": na["rss_kb"],
        })
        m = re.search(r"(\d+) threads and (\d+) connections", open(files[k][:-5] + ".txt").read())
        if m:
            per_node[-1]["connections"] = int(m.group(2))
    wrk_cpu_s = 0.0
    for f in files:
        c = load(f[:-5] + ".cpu.json")
        if c:
            wrk_cpu_s += c["user_s"] + c["sys_s"]
    stalls = load(f"{work}/{name}.stalls.json", [])
    for p, st in zip(per_node, stalls):
        p["longest_no_cpu_s"] = st["longest_no_cpu_s"]
        p["no_cpu_stretches_over_500ms"] = st["stretches_over_500ms"]
    errors = {}
    for d in docs:
        for key, v in d["errors"].items():
            errors[key] = errors.get(key, 0) + v
    run = {
        "nodes": len(docs),
        "connections": sum(n["connections"] or 0 for n in per_node),
        "duration_s": round(max(d["duration_us"] for d in docs) / 1e6, 2),
        "requests": sum(d["requests"] for d in docs),
        "req_s": round(sum(d["requests"] / d["duration_us"] * 1e6 for d in docs)),
        "latency_ms": merged_percentiles(docs),
        "errors": errors, "non_2xx": non2xx,
        "cpu_cores": {
            "nodes": round(sum(n["cpu_cores"] for n in per_node), 2),
            "postgres": cores(after["postgres"]["cpu_s"], before["postgres"]["cpu_s"]) if "postgres" in after else None,
            "machine": cores(after["machine"]["busy_s"], before["machine"]["busy_s"]),
            "wrk": round(wrk_cpu_s / wall, 2),
        },
        "loadavg_before": before["loadavg"], "loadavg_after": after["loadavg"],
        "per_node": per_node,
    }
    c = run["cpu_cores"]
    c["other"] = round(c["machine"] - c["nodes"] - (c["postgres"] or 0) - c["wrk"], 2)
    return run


def f1(x, unit=""):
    return "-" if x is None else f"{x:,.1f}{unit}"


def f2(x, unit=""):
    return "-" if x is None else f"{x:,.2f}{unit}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--node-counts", default="1 2 3")
    ap.add_argument("--md", required=True)
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    w = a.work
    meta = load(f"{w}/meta.json", {})
    doc = {
        "meta": meta,
        "postgres_settings": load(f"{w}/pg-settings.json"),
        "postgres_size": load(f"{w}/pg-size.json"),
        "import": load(f"{w}/import.json"),
        "starts": [s for s in (load(p) for p in sorted(glob.glob(f"{w}/*.start.json"))) if s],
        "lookups": {},
        "ttl": None,
        "index_status": [],
        "fsync": None,
    }
    try:
        text = open(f"{w}/pg_test_fsync.txt").read()
        one = text.split("using one 8kB write", 1)[1].split("Compare", 1)[0]
        two = text.split("using two 8kB writes", 1)[1].split("Compare", 1)[0]
        grab = lambda block: {m.group(1): float(m.group(2)) for m in
                              re.finditer(r"^\s+(\w+)\s+([\d.]+) ops/sec", block, re.M)}
        doc["fsync"] = {"one_8kB_write_ops_s": grab(one), "two_8kB_writes_ops_s": grab(two)}
    except (OSError, IndexError):
        pass
    base = lookup_run(w, "lookup-sqlite")
    if base:
        doc["lookups"]["sqlite-1"] = base
    for n in a.node_counts.split():
        r = lookup_run(w, f"lookup-n{n}")
        if r:
            doc["lookups"][f"postgres-{n}"] = r
    ttl = load(f"{w}/ttl.json")
    if ttl:
        doc["ttl"] = {k: ttl.get(k) for k in ("nodes", "poll_ms", "timeout_s", "api", "cli", "concurrent")}
        tb, ta = load(f"{w}/ttl.before.json"), load(f"{w}/ttl.after.json")
        if tb and ta:
            doc["ttl"]["loadavg_before"], doc["ttl"]["loadavg_after"] = tb["loadavg"], ta["loadavg"]
            doc["ttl"]["rss_kb_after"] = [n["rss_kb"] for n in ta["nodes"]]
    doc["submissions"] = []
    for path in sorted(glob.glob(f"{w}/submit-n*-c*.json")):
        if not re.search(r"submit-n\d+-c\d+\.json$", path):
            continue
        r = load(path)
        before, after = load(path[:-5] + ".before.json"), load(path[:-5] + ".after.json")
        if before and after:
            wall = after["time"] - before["time"]
            r["cpu_cores"] = {
                "nodes": round(sum(y["cpu_s"] - x["cpu_s"] for x, y in zip(before["nodes"], after["nodes"])) / wall, 2),
                "postgres": round((after["postgres"]["cpu_s"] - before["postgres"]["cpu_s"]) / wall, 2),
                "machine": round((after["machine"]["busy_s"] - before["machine"]["busy_s"]) / wall, 2),
            }
            r["loadavg_before"], r["loadavg_after"] = before["loadavg"], after["loadavg"]
        waits = {}
        try:
            for line in open(path[:-5] + ".waits.txt"):
                if "|" in line:
                    what, count = line.strip().rsplit("|", 1)
                    waits[what] = waits.get(what, 0) + int(count)
        except (OSError, ValueError):
            pass
        r["postgres_active_backends_by_wait"] = waits
        doc["submissions"].append(r)
    try:
        doc["index_status"] = [json.loads(l) for l in open(f"{w}/index-status.jsonl") if l.strip()]
    except (OSError, ValueError):
        pass
    with open(a.json, "w") as f:
        json.dump(doc, f, indent=1)

    md = []
    md.append(f"Commit {meta.get('commit')}{' (with uncommitted changes)' if meta.get('dirty') else ''}, "
              f"{meta.get('started')}; {meta.get('nproc')} cores ({meta.get('cpu')}), {meta.get('mem_gb')} GB; "
              f"load average (1/5/15 min) at start {' '.join(f'{x:.2f}' for x in meta.get('loadavg_start', []))}, "
              f"at end {' '.join(f'{x:.2f}' for x in meta.get('loadavg_end', []))}. "
              f"{meta.get('postgres')}, settings {json.dumps(doc['postgres_settings'])}.")
    if doc["import"]:
        size = doc["postgres_size"] or {}
        md.append("")
        try:
            imported = f"{json.loads(doc['import']['result'])['imported']:,}"
        except (ValueError, KeyError, TypeError):
            imported = "?"
        md.append(f"Bank import ({imported} hashes, `cordon bank import` into PostgreSQL, one transaction; "
                  f"done once, cached): {doc['import']['import_s']} s. Database now "
                  f"{(size.get('database_bytes') or 0) / 2**20:,.0f} MB, {size.get('signal', '?'):,} signals, "
                  f"{size.get('change_log', '?'):,} change-feed rows.")
    if doc["fsync"]:
        f = doc["fsync"]
        md.append("")
        md.append(f"Disk flush (`pg_test_fsync -s 2` in bench/out/nodes): fdatasync of one 8 kB write "
                  f"{f['one_8kB_write_ops_s'].get('fdatasync', 0):,.0f} ops/s, of two "
                  f"{f['two_8kB_writes_ops_s'].get('fdatasync', 0):,.0f} ops/s.")
    md.append("")
    md.append("### Lookups: `GET /m/lookup`, wrk, one wrk (1 thread) per node, run together")
    md.append("")
    md.append("| store, nodes | connections | req/s (sum) | p50 | p90 | p99 | p99.9 | errors / non-2xx "
              "| CPU cores: nodes / postgres / wrk / other processes (of 2) | longest no-CPU stretch of a node "
              "| load avg before -> after |")
    md.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | --- |")
    for key, r in doc["lookups"].items():
        lat = r["latency_ms"] or {}
        store, n = key.split("-")
        md.append(f"| {'SQLite' if store == 'sqlite' else 'PostgreSQL'}, {n} | {r['connections']} | {r['req_s']:,} "
                  f"| {f2(lat.get('p50'), ' ms')} | {f2(lat.get('p90'), ' ms')} | {f2(lat.get('p99'), ' ms')} "
                  f"| {f2(lat.get('p99.9'), ' ms')} | {sum(r['errors'].values())} / {r['non_2xx']} "
                  f"| {r['cpu_cores']['nodes']} / {'-' if r['cpu_cores']['postgres'] is None else r['cpu_cores']['postgres']} "
                  f"/ {r['cpu_cores']['wrk']} / {r['cpu_cores']['other']} "
                  f"| {max((p.get('longest_no_cpu_s') or 0) for p in r['per_node']):.1f} s "
                  f"| {r['loadavg_before'][0]:.2f} -> {r['loadavg_after'][0]:.2f} |")
    md.append("")
    md.append("Per node: " + "; ".join(
        f"{key}: " + ", ".join(f"{p['req_s']:,} req/s ({p['connections']} conn., p99 {p['p99_ms']:.2f} ms, "
                               f"{p['cpu_cores']} cores, longest without CPU {p.get('longest_no_cpu_s', '-')} s)"
                               for p in r["per_node"])
        for key, r in doc["lookups"].items()) + ".")
    md.append("")
    md.append("### Nodes: start (load every hash from the store, build the index) and memory")
    md.append("")
    md.append("| node | store | hashes loaded | exec -> first 200 on /status | RSS after start | RSS after the lookup runs |")
    md.append("| --- | --- | ---: | ---: | ---: | ---: |")
    last_rss = {}
    for r in doc["lookups"].values():
        for p in r["per_node"]:
            last_rss[p["pid"]] = p["rss_kb_after"]
    for s in doc["starts"]:
        md.append(f"| {s['name']} | {'SQLite' if s['name'].startswith('sqlite') else 'PostgreSQL'} "
                  f"| {s['hashes_loaded']:,} | {s['start_s']:.2f} s | {s['rss_kb_after_start'] / 1024:,.0f} MB "
                  f"| {f1(last_rss.get(s['pid']) and last_rss[s['pid']] / 1024, ' MB')} |")
    if doc["ttl"]:
        t = doc["ttl"]
        md.append("")
        md.append(f"### A new hash live on every node ({len(t['nodes'])} nodes, PostgreSQL; each node polled "
                  f"every ~{t['poll_ms']} ms + round trip; load avg {t.get('loadavg_before', [0])[0]:.2f} -> "
                  f"{t.get('loadavg_after', [0])[0]:.2f})")
        md.append("")
        md.append("| added through | reps | live on every node, from the answer / CLI exit: median | p90 | max "
                  "| from the request sent: median | max | the request itself (median) | never live / failed |")
        md.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        for mode, label in (("api", "`POST /c/bank/BENCH/signal` on node 1"), ("cli", "`cordon bank import` (1 hash)")):
            s = t[mode]
            le, ls, rq = s["live_everywhere_ms"] or {}, s["live_everywhere_from_send_ms"] or {}, s["request_ms"] or {}
            md.append(f"| {label} | {s['reps']} | {f1(le.get('median'), ' ms')} | {f1(le.get('p90'), ' ms')} "
                      f"| {f1(le.get('max'), ' ms')} | {f1(ls.get('median'), ' ms')} | {f1(ls.get('max'), ' ms')} "
                      f"| {f1(rq.get('median'), ' ms')} | {s['never_live_everywhere']} / {s['failed_requests']} |")
        md.append("")
        md.append("Per node, median / max ms from the answer (API) or exit (CLI) to the first matching answer: " + "; ".join(
            f"{mode}: " + ", ".join(f"node{i + 1} {f1(x and x['median'])} / {f1(x and x['max'])}"
                                    for i, x in enumerate(t[mode]["per_node_seen_ms"]))
            for mode in ("api", "cli")) + ". Negative: the node matched before the answer was read (or the CLI reaped).")
    c = doc["ttl"] and doc["ttl"].get("concurrent")
    if c:
        md.append("")
        md.append(f"Concurrent adds (one thread per node, {c['per_node']} `POST /c/bank/BENCH/signal` each, all at "
                  f"once): {c['ok']} of {c['total']} answered 200 in {c['seconds']} s; statuses {json.dumps(c['statuses'])}"
                  + (f"; first error: `{c['errors'][0]}`" if c["errors"] else "") + ".")
    if doc["submissions"]:
        md.append("")
        md.append("### Submissions, closed loop, a 160x100 PNG, no policy: one store transaction per upload")
        md.append("")
        md.append("| nodes | senders | submissions/s | p50 | p99 | statuses | CPU cores: nodes / postgres / machine "
                  "| PostgreSQL's active backends, summed over the 250 ms samples, by what they waited on | load avg before -> after |")
        md.append("| ---: | ---: | ---: | ---: | ---: | --- | --- | --- | --- |")
        for r in sorted(doc["submissions"], key=lambda r: (r["nodes"], r["concurrency"])):
            c = r.get("cpu_cores", {})
            waits = ", ".join(f"{k} {v}" for k, v in sorted(r["postgres_active_backends_by_wait"].items(),
                                                              key=lambda kv: -kv[1]))
            md.append(f"| {r['nodes']} | {r['concurrency']} | {r['per_s']:,} | {f1(r['latency_ms']['p50'], ' ms')} "
                      f"| {f1(r['latency_ms']['p99'], ' ms')} | {json.dumps(r['statuses'])} "
                      f"| {c.get('nodes')} / {c.get('postgres')} / {c.get('machine')} | {waits or '-'} "
                      f"| {r.get('loadavg_before', [0])[0]:.2f} -> {r.get('loadavg_after', [0])[0]:.2f} |")
    if doc["index_status"]:
        sizes = [s.get("pdq", {}).get("size") for s in doc["index_status"]]
        md.append("")
        md.append(f"Index sizes at the end, node by node: {', '.join(f'{x:,}' for x in sizes)}"
                  f"{' (equal)' if len(set(sizes)) == 1 else ' (DIFFERENT)'}.")
    with open(a.md, "w") as f:
        f.write("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
