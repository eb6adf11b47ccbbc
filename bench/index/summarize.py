"""Summarize the match-index runs of bench/index/run.sh into a markdown report and JSON.

usage: summarize.py --work bench/out/index --sizes "1000000 10000000" --md OUT.md --json OUT.json

Per size and tool, every number is the median over that tool's repetitions. For a peer that ran
only the first K of the Q queries (big banks), the per-query time is measured on those K and
the whole-process time for all Q is extrapolated: whole - query phase + Q * (query phase / K).
"""
import argparse
import glob
import json
import os
import re
import statistics

TOOLS = {
    "cordon": "Cordon",
    "mih": "faiss IndexBinaryMultiHash(256,16,16) nflip=1",
    "flat": "faiss IndexBinaryFlat range_search",
}


def time_v(path):
    text = open(path).read()
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    status = int(re.search(r"Exit status: (\d+)", text).group(1))
    return rss, status


def last_json_line(path):
    for line in reversed(open(path).read().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    return None


def rep_metrics(base, tool, queries_all):
    wall = json.load(open(base + ".wall"))
    rss_kb, status = time_v(base + ".time")
    m = {"whole_s": wall["wall_s"], "queries": wall["queries"], "peak_rss_mb": rss_kb / 1024, "exit": status}
    if tool == "cordon":
        st = last_json_line(base + ".err")
        m.update(
            load_s=st["load_ms"] / 1e3,  # open the store, read every bank, build the index
            query_s=st["match_ms"] / 1e3,  # read + parse queries, match, write JSON lines
            index_bytes=st["index_bytes"],
            pdq_hashes=st["pdq_hashes"],
        )
        m["other_s"] = m["whole_s"] - m["load_s"] - m["query_s"]
        m["bytes_per_hash"] = st["index_bytes"] / st["pdq_hashes"]
    else:
        t = json.load(open(base + ".timings.json"))
        m.update(
            import_s=t["import"], npy_load_s=t["load"], build_s=t["build"], search_s=t["search"],
            output_s=t["output"],
        )
        m["load_s"] = t["load"] + t["build"]
        m["query_s"] = t["search"] + t["output"]
        m["other_s"] = m["whole_s"] - m["load_s"] - m["query_s"]  # interpreter, imports, exit
    m["ms_per_query"] = m["query_s"] / m["queries"] * 1e3
    m["whole_s_all_queries"] = m["whole_s"] - m["query_s"] + m["query_s"] / m["queries"] * queries_all
    m["extrapolated"] = m["queries"] < queries_all
    return m


def median_of(reps):
    out = {}
    for k in reps[0]:
        vals = [r[k] for r in reps]
        if all(isinstance(v, bool) for v in vals):
            out[k] = any(vals)
        elif all(isinstance(v, (int, float)) for v in vals):
            out[k] = statistics.median(vals)
        else:
            out[k] = vals[0]
    out["reps"] = len(reps)
    return out


def fmt(v, nd=2):
    if v is None:
        return "—"
    if isinstance(v, str):
        return v
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.{nd}f}"


def human(n):
    return f"{n / 1e6:g} M" if n >= 1e6 else f"{n / 1e3:g} k"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--sizes", required=True)
    ap.add_argument("--md", required=True)
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    meta = json.load(open(f"{a.work}/meta.json")) if os.path.exists(f"{a.work}/meta.json") else {}
    summary = {"meta": meta, "sizes": {}}

    for n in a.sizes.split():
        d = f"{a.work}/{n}"
        if not os.path.exists(f"{d}/runs/meta.json"):
            continue
        rmeta = json.load(open(f"{d}/runs/meta.json"))
        q_all = rmeta["queries"]
        size = {"bank": int(n), "run": rmeta, "tools": {}}
        if os.path.exists(f"{d}/hashes.json"):
            size["hashes"] = json.load(open(f"{d}/hashes.json"))
        if os.path.exists(f"{d}/cordon-data/import.json"):
            size["cordon_import"] = json.load(open(f"{d}/cordon-data/import.json"))
        cmp_ = json.load(open(f"{d}/runs/compare.json")) if os.path.exists(f"{d}/runs/compare.json") else {}
        size["compare"] = cmp_
        for tool in TOOLS:
            bases = sorted(p[: -len(".wall")] for p in glob.glob(f"{d}/runs/{tool}-*.wall"))
            if not bases:
                continue
            reps = [rep_metrics(b, tool, q_all) for b in bases]
            size["tools"][tool] = {"reps": reps, "median": median_of(reps)}
        c = size["tools"].get("cordon", {}).get("median")
        if c:
            for tool in ("mih", "flat"):
                p = size["tools"].get(tool, {}).get("median")
                if p:
                    size["tools"][tool]["speedup_of_cordon"] = {
                        "whole_process": p["whole_s_all_queries"] / c["whole_s"],
                        "per_query": p["ms_per_query"] / c["ms_per_query"],
                        "search_only_per_query": (p["search_s"] / p["queries"] * 1e3) / c["ms_per_query"],
                    }
        summary["sizes"][n] = size

    with open(a.json, "w") as f:
        json.dump(summary, f, indent=1)
    with open(a.md, "w") as f:
        f.write(render(summary))


def equal_cell(size, tool):
    cmp_ = size.get("compare", {})
    if tool == "cordon":
        c = cmp_.get("cordon", {})
        ok = c.get("distances_verified_against_bank") and c.get("order_and_hashes_ok") and not c.get("over_radius")
        return "reference" + ("" if ok else " (self-check FAILED)")
    p = cmp_.get("peers", {}).get(tool)
    if not p or "equal" not in p:
        return "—"
    if p["equal"]:
        extra = " (ids too)" if p.get("ids_equal") else ""
        return f"**yes**{extra}, {p['compared_queries']:,} q"
    return f"**NO**: {p['differing_queries']} of {p['compared_queries']:,} q differ"


def render(s):
    m = s["meta"]
    out = ["# Match-index benchmark: Cordon vs faiss (one thread each)", ""]
    out.append(
        f"Run {m.get('started', '?')} on {m.get('cpu', '?')} ({m.get('cores', '?')} cores, "
        f"{m.get('mem_gb', '?')} GB), every process pinned to core {m.get('pinned_core', '?')}; "
        f"faiss-cpu {m.get('faiss', '?')}, numpy {m.get('numpy', '?')}, Python {m.get('python', '?')}; "
        f"Cordon binary sha256 {m.get('cordon_sha256', '?')[:12]} (built {m.get('cordon_mtime', '?')})."
    )
    out.append("")
    out.append(
        "Banks from `make_hashes.py` (half uniform, half clustered), queries half near-duplicates "
        "(nominally 0-40 bits from a bank hash; see \"Result sets\" for the real distances) and half random. "
        "Whole process = wall time of the process from exec to exit, including reading the bank and "
        "building the index. Medians over the reps."
    )
    out.append("")
    out.append("| bank | tool | queries run | reps | load + build s | query phase s | ms / query | whole process s | "
               "whole process s, all queries | peak RSS MB | index bytes / hash | peak RSS / hash B | results equal to Cordon | "
               "Cordon faster, whole process | Cordon faster, per query |")
    out.append("|" + "---|" * 15)
    notes = []
    for n, size in s["sizes"].items():
        q_all = size["run"]["queries"]
        for tool in TOOLS:
            t = size["tools"].get(tool)
            if not t:
                continue
            md = t["median"]
            sp = t.get("speedup_of_cordon")
            whole_all = fmt(md["whole_s_all_queries"]) + (" (est.)" if md["extrapolated"] else "")
            if md["extrapolated"]:
                notes.append(f"{human(int(n))} {tool}: ran the first {int(md['queries']):,} of {q_all:,} queries; "
                             f"the all-queries whole-process time is extrapolated from its per-query time.")
            if md.get("exit"):
                notes.append(f"{human(int(n))} {tool}: a run exited with status {md['exit']}!")
            out.append(
                "| " + " | ".join([
                    human(int(n)), TOOLS[tool], f"{int(md['queries']):,}", str(md["reps"]),
                    fmt(md["load_s"]), fmt(md["query_s"]), fmt(md["ms_per_query"], 3), fmt(md["whole_s"]),
                    whole_all, fmt(md["peak_rss_mb"]),
                    fmt(md.get("bytes_per_hash"), 1) if tool == "cordon" else "—",
                    fmt(md["peak_rss_mb"] * 2**20 / int(n), 0),
                    equal_cell(size, tool),
                    f"**{sp['whole_process']:.1f}x**" if sp else "—",
                    f"**{sp['per_query']:.1f}x**" if sp else "—",
                ]) + " |"
            )
    out.append("")
    targets = []
    for n, size in s["sizes"].items():
        sp = size["tools"].get("mih", {}).get("speedup_of_cordon")
        if sp:
            w, q = sp["whole_process"], sp["per_query"]
            verdict = "met" if min(w, q) >= 10 else "NOT met"
            aim = "met" if min(w, q) >= 50 else "not met"
            targets.append(f"{human(int(n))}: {w:.1f}x whole process, {q:.1f}x per query: {verdict} (aim 50x: {aim})")
    if targets:
        out.append("**Target, Cordon >= 10x faster than faiss MIH**: " + "; ".join(targets) + ".")
        out.append("")
    out += [f"* {x}" for x in notes]
    out += [
        "* load + build: Cordon's `load_ms` (open the SQLite store, read every bank row, build the index); faiss: "
        "`np.load` of bank and queries + `index.add` (MIH builds its 16 hash tables there).",
        "* query phase: Cordon's `match_ms` (read and parse the query file, match, write one JSON line per query); "
        "faiss: `range_search` + writing the distance lines. ms / query = query phase / queries run.",
        "* results equal: per query, the multiset of match distances equals Cordon's; \"ids too\": the flat peer's "
        "(bank row, distance) pairs equal Cordon's (content_id - 1), after every Cordon distance was checked "
        "against the bank.",
        "",
    ]

    out += ["## Breakdown (medians, seconds)", "",
            "| bank | tool | start-up, imports, exit | read bank (+ queries) | build index | search | output | whole |",
            "|---|---|---|---|---|---|---|---|"]
    for n, size in s["sizes"].items():
        for tool in TOOLS:
            t = size["tools"].get(tool)
            if not t:
                continue
            md = t["median"]
            if tool == "cordon":
                row = [fmt(md["other_s"]), "load_ms: " + fmt(md["load_s"]), "(in load_ms)",
                       "match_ms: " + fmt(md["query_s"]), "(in match_ms)", fmt(md["whole_s"])]
            else:
                row = [fmt(md["other_s"]) + f" (imports {fmt(md['import_s'])})", fmt(md["npy_load_s"]),
                       fmt(md["build_s"]), fmt(md["search_s"]) + f" ({fmt(md['search_s'] / md['queries'] * 1e3, 3)} ms/q)",
                       fmt(md["output_s"]), fmt(md["whole_s"])]
            out.append(f"| {human(int(n))} | {tool} | " + " | ".join(row) + " |")
    out.append("")
    out.append("Cordon per query vs faiss *search only* per query (excluding faiss' output writing, which Cordon's "
               "match_ms includes): " + "; ".join(
                   f"{human(int(n))} {tool} {t['speedup_of_cordon']['search_only_per_query']:.1f}x"
                   for n, size in s["sizes"].items() for tool, t in size["tools"].items() if "speedup_of_cordon" in t) + ".")
    out.append("")

    out += ["## Result sets", ""]
    for n, size in s["sizes"].items():
        cmp_ = size.get("compare", {})
        c = cmp_.get("cordon", {})
        out.append(
            f"* **{human(int(n))}**: Cordon reported {c.get('matches', 0):,} matches on {c.get('lines', 0):,} queries "
            f"({c.get('queries_with_match', 0):,} with at least one match, at most {c.get('max_matches_per_query', 0)} "
            f"for one query); output in input order with the right hashes: {c.get('order_and_hashes_ok')}; every "
            f"distance recomputed from the bank row (content_id - 1): {c.get('distances_verified_against_bank')} "
            f"({c.get('distances_wrong')} wrong); none over the radius: {c.get('over_radius') == 0}; "
            f"reps byte-identical: {c.get('reps_identical')}. Duplicate rows in the bank: "
            f"{cmp_.get('bank_duplicate_rows')}. Distance of each matching query's nearest match: at most "
            f"{c.get('nearest_match_distance_max')}; counts for 0, 1, 2, ... bits: "
            f"{', '.join(map(str, c.get('nearest_match_distance_hist', [])))}. "
            f"Load average before the runs: {', '.join(f'{x:.2f}' for x in size['run'].get('loadavg_before', []))}."
        )
        for tool, p in cmp_.get("peers", {}).items():
            if tool == "mih_vs_flat":
                out.append(f"  * faiss MIH vs faiss flat: {p['compared_queries']:,} queries, "
                           f"{p['differing_queries']} differ.")
                continue
            line = (f"  * {tool}: {p['queries']:,} queries, {p['matches']:,} matches (Cordon on the same queries: "
                    f"{p.get('cordon_matches_on_these', 0):,}); queries whose distance multiset differs: "
                    f"{p.get('differing_queries')}")
            if "ids_equal" in p:
                line += f"; queries whose (row, distance) set differs: {p['ids_differing_queries']}"
            out.append(line + f"; reps byte-identical: {p.get('reps_identical')}.")
            for ex in p.get("examples", [])[:5]:
                out.append(f"    * query {ex['query_index']} `{ex['query']}`: Cordon {ex['cordon']}, {tool} {ex[tool]}")
    out.append("")

    out += ["## Setup (not part of the timings)", "",
            "| bank | make_hashes.py s | Cordon import s | import peak RSS MB | Cordon data folder bytes / hash |",
            "|---|---|---|---|---|"]
    for n, size in s["sizes"].items():
        h, imp = size.get("hashes", {}), size.get("cordon_import", {})
        out.append(f"| {human(int(n))} | {fmt(h.get('make_s'))} | {fmt(imp.get('import_s'))} | "
                   f"{fmt((imp.get('peak_rss_kb') or 0) / 1024)} | "
                   f"{fmt(imp['data_bytes'] / int(n), 1) if imp.get('data_bytes') else '—'} |")
    out.append("")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
