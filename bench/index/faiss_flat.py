"""Brute-force peer: faiss IndexBinaryFlat.range_search, one thread.

usage: faiss_flat.py BANK.npy QUERIES.npy RADIUS [--ids FILE]
  stdout: one line per query, the sorted distances of its matches (d <= RADIUS), space
          separated, empty when none: the same format as /work/shared/peers/faiss_match.py
  --ids FILE: also one line per query with the bank row numbers (0-based) of those matches,
          in the same order (ties by row), to compare identities, not only distances
"""
import sys

import faiss
import numpy as np

args = sys.argv[1:]
ids_path = None
if "--ids" in args:
    at = args.index("--ids")
    ids_path = args[at + 1]
    del args[at : at + 2]
if len(args) != 3:
    sys.exit(__doc__)

faiss.omp_set_num_threads(1)
bank, qs, radius = np.load(args[0]), np.load(args[1]), int(args[2])
index = faiss.IndexBinaryFlat(bank.shape[1] * 8)
index.add(bank)
lims, D, I = index.range_search(qs, radius + 1)  # faiss keeps d < its radius, so d <= RADIUS

out = sys.stdout
ids_out = open(ids_path, "w") if ids_path else None
for i in range(len(qs)):
    lo, hi = lims[i], lims[i + 1]
    pairs = sorted(zip((int(d) for d in D[lo:hi].tolist()), I[lo:hi].tolist()))  # D may be float
    out.write(" ".join(str(d) for d, _ in pairs) + "\n")
    if ids_out:
        ids_out.write(" ".join(str(r) for _, r in pairs) + "\n")
if ids_out:
    ids_out.close()
