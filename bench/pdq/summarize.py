#!/usr/bin/env python3
"""Summarize the PDQ side-by-side benchmark: speed per input set and hash compatibility.

usage: summarize.py --results DIR [--meta META.json] --md OUT.md --json OUT.json

DIR holds one JSON-lines file per (tool, set), named TOOL--SET.jsonl, each line
{"path","width","height","decode_ms","hash_ms","hash","quality"} (or {"path","error"}),
where the times are already the per-file median over the reps. Tools: `cordon`, `pypi`
(the reference for compatibility) and `crate`; sets: `web`, `large`, `originals`.

Speed is compared on the files every tool that ran on a set decoded successfully ("common
files"); files a tool could not decode are counted separately. Compatibility compares each
tool's hash with PyPI pdqhash's on every file both hashed, by Hamming distance, overall,
per set and per format, and again only on files whose reference quality is >= 50 (the
threshold below which PDQ hashes are discarded in practice).
"""
import argparse
import json
import math
import os
import statistics
from collections import defaultdict

TOOLS = {
    "cordon": "Cordon (`cordon bench pdq`)",
    "pypi": "PyPI pdqhash 0.2.8 + Pillow (HMA pipeline)",
    "crate": "crate pdqhash 0.1.1 + image 0.23",
}
TOOL_ORDER = ["cordon", "pypi", "crate"]
SETS = {
    "web": "web-size reposts (long side 640-1600, JPEG/PNG/WebP)",
    "originals": "corpus originals (0.7-24 MP, JPEG/PNG)",
    "large": "large (4000x3000 JPEG q90)",
}
SET_ORDER = ["web", "originals", "large"]
REFERENCE = "pypi"
FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WebP"}
BUCKETS = [(1, 2), (3, 4), (5, 8), (9, 16), (17, 31), (32, 256)]


def load(results_dir):
    data = defaultdict(dict)  # data[set][tool] = {path: record}
    for name in sorted(os.listdir(results_dir)):
        if not name.endswith(".jsonl") or "--" not in name:
            continue
        tool, set_name = name[: -len(".jsonl")].split("--", 1)
        recs = {}
        with open(os.path.join(results_dir, name)) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    r = json.loads(line)
                    r["path"] = os.path.normpath(r["path"])  # tools may print ./x or x
                    recs[r["path"]] = r
        data[set_name][tool] = recs
    return data


def ok(r):
    return r is not None and "error" not in r and "hash" in r


def fmt_format(path):
    return FORMATS.get(os.path.splitext(path)[1].lower(), "other")


def hamming(a, b):
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def pct(values, p):
    """Nearest-rank percentile of a non-empty list."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def ms(v):
    if v is None:
        return "–"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:.0f}"


def ratio(a, b):
    return None if not a or not b else a / b


def xf(v):
    return "–" if v is None else f"{v:.2f}×"


def speed_stats(recs, paths):
    dec = [recs[p]["decode_ms"] for p in paths]
    hsh = [recs[p]["hash_ms"] for p in paths]
    tot = [d + h for d, h in zip(dec, hsh)]
    mp = [recs[p]["width"] * recs[p]["height"] / 1e6 for p in paths]
    n = len(paths)
    med_tot = statistics.median(tot) if n else None
    return {
        "files": n,
        "median_megapixels": statistics.median(mp) if n else None,
        "median_decode_ms": statistics.median(dec) if n else None,
        "median_hash_ms": statistics.median(hsh) if n else None,
        "median_total_ms": med_tot,
        "mean_total_ms": statistics.fmean(tot) if n else None,
        "sum_total_ms": sum(tot),
        "images_per_s_from_median": 1000.0 / med_tot if med_tot else None,
        "images_per_s_from_total": 1000.0 * n / sum(tot) if n and sum(tot) else None,
    }


def compat_stats(ref, other, paths):
    """Hash agreement of `other` with the reference on `paths` (present in ref)."""
    out = {"files": 0, "failed": 0, "identical": 0, "distances": [], "size_mismatch": 0,
           "quality_equal": 0}
    for p in paths:
        r = ref[p]
        o = other.get(p)
        out["files"] += 1
        if not ok(o):
            out["failed"] += 1
            continue
        d = hamming(r["hash"], o["hash"])
        if d == 0:
            out["identical"] += 1
        else:
            out["distances"].append(d)
        if (o.get("width"), o.get("height")) != (r["width"], r["height"]):
            out["size_mismatch"] += 1
        if o.get("quality") == r["quality"]:
            out["quality_equal"] += 1
    ds = out["distances"]
    out["differing"] = len(ds)
    out["identical_share"] = out["identical"] / out["files"] if out["files"] else None
    out["distance_median"] = statistics.median(ds) if ds else None
    out["distance_p90"] = pct(ds, 90) if ds else None
    out["distance_max"] = max(ds) if ds else None
    out["distance_histogram"] = {f"{lo}-{hi}" if hi < 256 else f">={lo}": sum(lo <= d <= hi for d in ds)
                                 for lo, hi in BUCKETS}
    return out


def summarize(data):
    summary = {"sets": {}, "compatibility": {}}
    for set_name in SET_ORDER + sorted(set(data) - set(SET_ORDER)):
        if set_name not in data:
            continue
        by_tool = data[set_name]
        tools = [t for t in TOOL_ORDER if t in by_tool] + sorted(set(by_tool) - set(TOOL_ORDER))
        all_paths = sorted(set().union(*(by_tool[t].keys() for t in tools)))
        common = [p for p in all_paths if all(ok(by_tool[t].get(p)) for t in tools)]
        s = {"files": len(all_paths), "common_files": len(common), "tools": {}, "failed": {},
             "cordon_speedup": {}, "by_format": {}}
        for t in tools:
            s["tools"][t] = speed_stats(by_tool[t], common)
            s["failed"][t] = sum(not ok(by_tool[t].get(p)) for p in all_paths)
        for fmt in sorted({fmt_format(p) for p in common}):
            fp = [p for p in common if fmt_format(p) == fmt]
            s["by_format"][fmt] = {t: speed_stats(by_tool[t], fp) for t in tools}
        # the same for Cordon and the reference alone, on every file both decoded (the
        # crate cannot decode some WebP files, which the table above therefore leaves out)
        if "cordon" in tools and REFERENCE in tools and len(tools) > 2:
            pair = [p for p in all_paths if ok(by_tool["cordon"].get(p)) and ok(by_tool[REFERENCE].get(p))]
            s["by_format_cordon_vs_reference"] = {}
            for fmt in sorted({fmt_format(p) for p in pair}):
                fp = [p for p in pair if fmt_format(p) == fmt]
                s["by_format_cordon_vs_reference"][fmt] = {t: speed_stats(by_tool[t], fp) for t in ("cordon", REFERENCE)}
        if "cordon" in tools:
            c = s["tools"]["cordon"]
            for t in tools:
                if t == "cordon":
                    continue
                p = s["tools"][t]
                s["cordon_speedup"][t] = {
                    "end_to_end_median": ratio(p["median_total_ms"], c["median_total_ms"]),
                    "end_to_end_throughput": ratio(c["images_per_s_from_total"], p["images_per_s_from_total"]),
                    "hash_median": ratio(p["median_hash_ms"], c["median_hash_ms"]),
                    "decode_median": ratio(p["median_decode_ms"], c["median_decode_ms"]),
                }
        summary["sets"][set_name] = s

    # compatibility against the reference, on every file the reference hashed
    for tool in [t for t in TOOL_ORDER if t != REFERENCE]:
        scopes = defaultdict(list)  # scope -> [(ref_records, other_records, path)]
        present = False
        for set_name, by_tool in data.items():
            if REFERENCE not in by_tool or tool not in by_tool:
                continue
            present = True
            ref = by_tool[REFERENCE]
            for p, r in ref.items():
                if not ok(r):
                    continue
                for scope in ("all", f"set:{set_name}", f"format:{fmt_format(p)}"):
                    scopes[scope].append((ref, by_tool[tool], p))
        if not present:
            continue
        res = {}
        for scope, items in scopes.items():
            for label, keep in (("all_quality", lambda r: True), ("quality>=50", lambda r: r["quality"] >= 50)):
                sel = [(ref, oth, p) for ref, oth, p in items if keep(ref[p])]
                merged_ref = {p: ref[p] for ref, _, p in sel}
                merged_oth = {p: oth[p] for _, oth, p in sel if p in oth}
                res.setdefault(scope, {})[label] = compat_stats(merged_ref, merged_oth, [p for _, _, p in sel])
        summary["compatibility"][tool] = res
    return summary


def scope_order(scopes):
    key = {"all": 0}
    for i, s in enumerate(SET_ORDER):
        key[f"set:{s}"] = 1 + i
    for i, f in enumerate(["JPEG", "PNG", "WebP"]):
        key[f"format:{f}"] = 10 + i
    return sorted(scopes, key=lambda s: (key.get(s, 99), s))


def scope_label(scope):
    if scope == "all":
        return "all files"
    kind, name = scope.split(":", 1)
    return f"{name} set" if kind == "set" else name


def render_md(summary, meta):
    L = []
    L.append("# PDQ: Cordon vs its peers, one core")
    L.append("")
    if meta:
        L.append(f"Run {meta.get('date', '?')} on {meta.get('cpu', '?')}; every tool pinned with "
                 f"`taskset -c {meta.get('core', 0)}`, one process per tool and set, repetitions per file: "
                 + ", ".join(f"{k} {v}" for k, v in meta.get("reps", {}).items())
                 + " (per-file median of the reps, then the median over files).")
        if meta.get("versions"):
            L.append("Versions: " + "; ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".")
        if meta.get("notes"):
            for n in meta["notes"]:
                L.append(f"Note: {n}")
        L.append("")
    L.append("Tools: " + "; ".join(f"**{t}** = {d}" for t, d in TOOLS.items()) + ".")
    L.append("")

    L.append("## Speed (single core, ms per image)")
    L.append("")
    L.append("Decode = file bytes to RGB pixels as each tool does it; hash = PDQ (luma, blur, DCT, "
             "threshold, quality) on those pixels; total = decode + hash per file. Medians over the "
             "files every tool decoded (\"common\"); img/s = 1000 / median total, and files / summed "
             "total.")
    L.append("")
    L.append("| set | tool | common files (failed) | median MP | decode | hash | total | img/s (median) | img/s (sum) |")
    L.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for set_name, s in summary["sets"].items():
        for t, st in s["tools"].items():
            L.append(f"| {set_name} | {t} | {st['files']} ({s['failed'][t]}) | "
                     f"{st['median_megapixels']:.2f} | {ms(st['median_decode_ms'])} | {ms(st['median_hash_ms'])} | "
                     f"{ms(st['median_total_ms'])} | {st['images_per_s_from_median']:.1f} | "
                     f"{st['images_per_s_from_total']:.1f} |" if st["files"] else
                     f"| {set_name} | {t} | 0 ({s['failed'][t]}) | – | – | – | – | – | – |")
    L.append("")
    if any(s["cordon_speedup"] for s in summary["sets"].values()):
        L.append("### Cordon speed-up (peer time / Cordon time; > 1 = Cordon faster)")
        L.append("")
        L.append("| set | vs | end to end (median) | end to end (sum) | hash step (median) | decode step (median) |")
        L.append("| --- | --- | ---: | ---: | ---: | ---: |")
        for set_name, s in summary["sets"].items():
            for t, r in s["cordon_speedup"].items():
                L.append(f"| {set_name} | {t} | {xf(r['end_to_end_median'])} | {xf(r['end_to_end_throughput'])} | "
                         f"{xf(r['hash_median'])} | {xf(r['decode_median'])} |")
        L.append("")
    else:
        L.append("_Cordon was not run: no speed-up ratios._")
        L.append("")
    web = summary["sets"].get("web")
    tables = [("by_format", "Web set by format, common files (median ms decode / hash)")]
    tables.append(("by_format_cordon_vs_reference",
                   f"Web set by format, every file both cordon and {REFERENCE} decoded (median ms decode / hash)"))
    for key, title in tables:
        if not web or not web.get(key):
            continue
        L.append(f"### {title}")
        L.append("")
        tools = list(next(iter(web[key].values())))
        L.append("| format | files | " + " | ".join(tools) + " |")
        L.append("| --- | ---: |" + " ---: |" * len(tools))
        for fmt, per_tool in web[key].items():
            n = next(iter(per_tool.values()))["files"]
            cells = [f"{ms(per_tool[t]['median_decode_ms'])} / {ms(per_tool[t]['median_hash_ms'])}" for t in tools]
            L.append(f"| {fmt} | {n} | " + " | ".join(cells) + " |")
        L.append("")

    L.append("## Compatibility with PyPI pdqhash (the hashes HMA / python-threatexchange produce)")
    L.append("")
    L.append("Bit-identical = same 256-bit hash as PyPI pdqhash on the same file. Distances are "
             "Hamming distances of the differing hashes (the match threshold is 31). \"q>=50\" keeps "
             "files whose reference quality is >= 50 (lower-quality hashes are discarded in practice). "
             "Failed = the tool could not decode a file PyPI hashed.")
    L.append("")
    for tool, res in summary["compatibility"].items():
        L.append(f"### {tool} vs pypi")
        L.append("")
        L.append("| scope | files | failed | bit-identical | differing: median / p90 / max bits | "
                 "q>=50 files | q>=50 bit-identical | q>=50 max bits | same quality |")
        L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for scope in scope_order(res):
            a, q = res[scope]["all_quality"], res[scope]["quality>=50"]
            def share(c):
                return "–" if not c["files"] else f"{c['identical']} ({100 * c['identical_share']:.1f}%)"
            diff = ("–" if not a["differing"] else
                    f"{a['differing']}: {a['distance_median']:g} / {a['distance_p90']} / {a['distance_max']}")
            hashed = a["files"] - a["failed"]
            same_q = ("n/a (other metric)" if tool == "crate" else
                      f"{a['quality_equal']}/{hashed}" if hashed else "–")
            L.append(f"| {scope_label(scope)} | {a['files']} | {a['failed']} | {share(a)} | {diff} | "
                     f"{q['files']} | {share(q)} | {q['distance_max'] if q['distance_max'] is not None else 0} | {same_q} |")
        L.append("")
        L.append("Hamming distances of the differing hashes (number of files):")
        L.append("")
        buckets = list(res["all"]["all_quality"]["distance_histogram"])
        L.append("| files | " + " | ".join(f"{b} bits" for b in buckets) + " |")
        L.append("| --- |" + " ---: |" * len(buckets))
        for label in ("all_quality", "quality>=50"):
            h = res["all"][label]["distance_histogram"]
            L.append(f"| {'all' if label == 'all_quality' else 'q>=50'} | " + " | ".join(str(h[b]) for b in buckets) + " |")
        L.append("")
    if not summary["compatibility"]:
        L.append("_No tool to compare with PyPI pdqhash._")
        L.append("")
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", required=True)
    ap.add_argument("--meta")
    ap.add_argument("--md", required=True)
    ap.add_argument("--json", required=True)
    args = ap.parse_args()
    data = load(args.results)
    if not data:
        raise SystemExit(f"no TOOL--SET.jsonl files in {args.results}")
    meta = {}
    if args.meta and os.path.exists(args.meta):
        with open(args.meta) as f:
            meta = json.load(f)
    summary = summarize(data)
    summary["meta"] = meta
    for comp in summary["compatibility"].values():  # keep the JSON small: no raw distance lists
        for scope in comp.values():
            for c in scope.values():
                c.pop("distances", None)
    with open(args.json, "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
    md = render_md(summary, meta)
    with open(args.md, "w") as f:
        f.write(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
