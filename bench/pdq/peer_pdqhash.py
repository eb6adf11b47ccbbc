#!/usr/bin/env python3
"""Benchmark peer: PyPI `pdqhash` (the C++ PDQ core via Cython) fed by Pillow, as HMA does.

usage: peer_pdqhash.py [--reps N] FILES...

Per file, REPS times (one thread):
  decode = Image.open + convert("RGB") (skipped when the mode is already RGB or L, in which
           case the pixels are loaded explicitly) + np.asarray; a grey (L) image is stacked
           to 3 channels, as python-threatexchange does before calling pdqhash;
  hash   = pdqhash.compute(array).
Timed with time.perf_counter; the median of the reps is printed, one JSON line per file:
  {"path","width","height","decode_ms","hash_ms","hash","quality"}
`hash` is 64 lowercase hex chars: pdqhash returns 256 bits with element 0 = the most
significant bit, packed here MSB first. A file that fails prints {"path","error"}; the exit
code is then 1.
"""
import argparse
import json
import statistics
import sys
import time

import numpy as np
import pdqhash
from PIL import Image


def decode(path):
    im = Image.open(path)
    if im.mode not in ("RGB", "L"):
        im = im.convert("RGB")
    else:
        im.load()  # force the full decode inside the timed region
    arr = np.asarray(im)
    if arr.ndim == 2:
        arr = np.stack([arr, arr, arr], axis=-1)
    return arr


def hash_hex(bits):
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()


def run_one(path, reps):
    decode_times, hash_times = [], []
    arr = bits = quality = None
    for _ in range(reps):
        t0 = time.perf_counter()
        arr = decode(path)
        t1 = time.perf_counter()
        bits, quality = pdqhash.compute(arr)
        t2 = time.perf_counter()
        decode_times.append((t1 - t0) * 1000.0)
        hash_times.append((t2 - t1) * 1000.0)
    return {
        "path": path,
        "width": int(arr.shape[1]),
        "height": int(arr.shape[0]),
        "decode_ms": round(statistics.median(decode_times), 4),
        "hash_ms": round(statistics.median(hash_times), 4),
        "hash": hash_hex(bits),
        "quality": int(quality),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    if args.reps < 1:
        ap.error("--reps must be >= 1")
    failed = 0
    for path in args.files:
        try:
            rec = run_one(path, args.reps)
        except Exception as e:  # report and go on: one bad file must not stop a benchmark
            failed += 1
            rec = {"path": path, "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(rec), flush=True)
    if failed:
        print(f"peer_pdqhash.py: {failed} of {len(args.files)} files failed", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
