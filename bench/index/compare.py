"""Compare the result sets of one bank size's runs (bench/out/index/N/runs/).

usage: compare.py --dir bench/out/index/N --radius 31 --queries 20000 --out compare.json

* Cordon (rep 1): one JSON line per query, in input order (checked against queries.txt).
  Every reported match is checked against the bank: content_id k is the k-th imported line
  (bank row k-1) when the import gave ids in file order; if that holds for all matches, the
  reported distances are the true Hamming distances and identities can be compared too.
* Each peer (rep 1): one line per query of sorted distances (faiss_match.py format; a peer
  may have run only the first K queries). Per query, the multiset of distances must equal
  Cordon's. The flat peer also writes bank rows (--ids): with the id mapping verified,
  the set of (row, distance) must equal Cordon's too.
* Every later rep of a tool must print byte-identical output to its rep 1.
"""
import argparse
import glob
import hashlib
import json
import os
import sys

import numpy as np

EXAMPLES = 10


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def reps_identical(runs, tool):
    files = sorted(glob.glob(f"{runs}/{tool}-*.out"))
    if not files:
        return None, 0
    digests = {sha(f) for f in files}
    return len(digests) == 1, len(files)


def dist(text):
    """A distance as the peer printed it: "7", or "7.0" (an exact integer in any case)."""
    v = float(text)
    if v != int(v):
        raise ValueError(f"non-integer Hamming distance {text!r}")
    return int(v)


def read_peer(path):
    rows = []
    with open(path) as f:
        for line in f:
            rows.append(sorted(dist(x) for x in line.split()))
    return rows


def popcount_rows(a, b):
    return np.unpackbits(np.bitwise_xor(a, b), axis=1).sum(axis=1, dtype=np.int64)


def bank_duplicates(bank):
    """Rows whose 32 bytes also occur elsewhere in the bank (counted once per extra copy)."""
    words = np.ascontiguousarray(bank).view(np.uint64).reshape(len(bank), -1)
    key = np.zeros(len(bank), dtype=np.uint64)
    for j in range(words.shape[1]):  # a cheap 64-bit mix, then exact check of collisions
        key = (key * np.uint64(0x9E3779B97F4A7C15)) ^ words[:, j]
    order = np.argsort(key, kind="stable")
    same = np.nonzero(key[order][1:] == key[order][:-1])[0]
    dup = 0
    for s in same:
        if np.array_equal(bank[order[s]], bank[order[s + 1]]):
            dup += 1
    return dup


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--radius", type=int, required=True)
    ap.add_argument("--queries", type=int, required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    runs = f"{a.dir}/runs"
    bank = np.load(f"{a.dir}/bank.npy")
    qs = np.load(f"{a.dir}/queries.npy")
    qtext = [l.strip() for l in open(f"{a.dir}/queries.txt") if l.strip()]
    report = {"bank": len(bank), "queries": len(qtext), "radius": a.radius}

    cordon = None
    if os.path.exists(f"{runs}/cordon-1.out"):
        cordon, rows, ids, errors, order_ok, odd = [], [], [], 0, True, 0
        with open(f"{runs}/cordon-1.out") as f:
            for i, line in enumerate(f):
                j = json.loads(line)
                if i >= len(qtext) or j.get("hash") != qtext[i]:
                    order_ok = False
                if "error" in j:
                    errors += 1
                ms = j.get("matches", [])
                for m in ms:
                    if (m.get("signal_type"), m.get("transform"), m.get("bank")) != ("pdq", "original", "INDEX_BENCH"):
                        odd += 1
                    rows.append((i, m["content_id"], m["distance"]))
                cordon.append(sorted(m["distance"] for m in ms))
                ids.append(sorted((m["content_id"] - 1, m["distance"]) for m in ms))
        r = np.array(rows, dtype=np.int64).reshape(-1, 3)
        in_range = bool(len(r) == 0 or (r[:, 1].min() >= 1 and r[:, 1].max() <= len(bank)))
        verified, wrong = None, None
        if in_range and len(r):
            true = np.empty(len(r), dtype=np.int64)
            for s in range(0, len(r), 1 << 20):
                blk = r[s : s + (1 << 20)]
                true[s : s + len(blk)] = popcount_rows(qs[blk[:, 0]], bank[blk[:, 1] - 1])
            wrong = int((true != r[:, 2]).sum())
            verified = wrong == 0
        counts = np.array([len(c) for c in cordon])
        nearest = np.array([c[0] for c in cordon if c], dtype=np.int64)
        ident, nreps = reps_identical(runs, "cordon")
        report["cordon"] = {
            "lines": len(cordon),
            "order_and_hashes_ok": order_ok and len(cordon) == len(qtext),
            "errors": errors,
            "unexpected_bank_signal_or_transform": odd,
            "matches": int(counts.sum()),
            "queries_with_match": int((counts > 0).sum()),
            "max_matches_per_query": int(counts.max()) if len(counts) else 0,
            # how far the near-duplicate queries really are from the bank (random ones never match)
            "nearest_match_distance_max": int(nearest.max()) if len(nearest) else None,
            "nearest_match_distance_hist": np.bincount(nearest).tolist() if len(nearest) else [],
            "over_radius": int((r[:, 2] > a.radius).sum()),
            "content_ids_in_bank_range": in_range,
            "distances_verified_against_bank": verified,
            "distances_wrong": wrong,
            "reps": nreps,
            "reps_identical": ident,
        }
    report["bank_duplicate_rows"] = bank_duplicates(bank)

    peers = {}
    for tool in ("mih", "flat"):
        path = f"{runs}/{tool}-1.out"
        if not os.path.exists(path):
            continue
        res = read_peer(path)
        ident, nreps = reps_identical(runs, tool)
        p = {"queries": len(res), "matches": sum(len(x) for x in res), "reps": nreps, "reps_identical": ident}
        if cordon is not None:
            k = min(len(res), len(cordon))
            diff = [i for i in range(k) if res[i] != cordon[i]]
            p["compared_queries"] = k
            p["cordon_matches_on_these"] = sum(len(cordon[i]) for i in range(k))
            p["differing_queries"] = len(diff)
            p["equal"] = len(diff) == 0 and k == len(res)
            p["examples"] = [{"query_index": i, "query": qtext[i], "cordon": cordon[i], tool: res[i]}
                             for i in diff[:EXAMPLES]]
            if tool == "flat" and os.path.exists(f"{runs}/flat-1.ids") and report["cordon"]["distances_verified_against_bank"]:
                # rebuild (row, distance) pairs from the ids file and the distance lines
                fid = []
                with open(f"{runs}/flat-1.ids") as f_ids, open(path) as f_d:
                    for line_ids, line_d in zip(f_ids, f_d):
                        fid.append(sorted(zip(map(int, line_ids.split()), map(dist, line_d.split()))))
                idiff = [i for i in range(k) if fid[i] != ids[i]]
                p["ids_differing_queries"] = len(idiff)
                p["ids_equal"] = len(idiff) == 0
                p["ids_examples"] = [{"query_index": i, "query": qtext[i], "cordon_rows": ids[i], "flat_rows": fid[i]}
                                     for i in idiff[:EXAMPLES]]
        peers[tool] = p
    if "mih" in peers and "flat" in peers:
        mih, flat = read_peer(f"{runs}/mih-1.out"), read_peer(f"{runs}/flat-1.out")
        k = min(len(mih), len(flat))
        diff = [i for i in range(k) if mih[i] != flat[i]]
        peers["mih_vs_flat"] = {"compared_queries": k, "differing_queries": len(diff), "equal": not diff,
                                "examples": [{"query_index": i, "mih": mih[i], "flat": flat[i]} for i in diff[:EXAMPLES]]}
    report["peers"] = peers
    with open(a.out, "w") as f:
        json.dump(report, f, indent=1)

    c = report.get("cordon", {})
    print(f"  cordon: {c.get('matches')} matches on {c.get('lines')} queries, order ok {c.get('order_and_hashes_ok')}, "
          f"distances verified {c.get('distances_verified_against_bank')}, reps identical {c.get('reps_identical')}",
          file=sys.stderr)
    for tool, p in peers.items():
        print(f"  {tool}: " + ", ".join(f"{k}={v}" for k, v in p.items() if "examples" not in k), file=sys.stderr)


if __name__ == "__main__":
    main()
