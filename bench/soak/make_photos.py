#!/usr/bin/env python3
"""Makes the soak's photos: many ~1 MP JPEGs (q85) cut from real photos, pairwise far
apart in PDQ (in every rotation and mirror image), so that submissions spread their
matches over many bank entries and the flood guard sees no flood.

    python make_photos.py --cordon CORDON --out OUT_DIR --count 800 SRC_DIR [SRC_DIR ...]

Each candidate is a random crop (12-45 % of the source's area, aspect 3:4 to 16:9) of a
source image, scaled to about 1,000,000 pixels. Candidates are hashed with
`cordon hash --dihedral`; one is kept when its PDQ quality is at least 50 and each of its
eight dihedral hashes is more than --min-distance bits (default 64; the match threshold is
31) from every photo kept before it. Kept photos are OUT_DIR/sNNNN.jpg; OUT_DIR/photos.jsonl
lists them with their hash. Deterministic for a given seed and sources. Needs Pillow.
"""
import argparse
import json
import math
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

TARGET_PIXELS = 1_000_000
MIN_QUALITY = 50


def crops(src: Path, n: int, rng: random.Random):
    """n random ~1 MP crops of one source image, as PIL images."""
    with Image.open(src) as im:
        im = im.convert("RGB")
        w, h = im.size
        for _ in range(n):
            area = rng.uniform(0.12, 0.45) * w * h
            aspect = math.exp(rng.uniform(math.log(0.75), math.log(16 / 9)))
            cw = min(w, round(math.sqrt(area * aspect)))
            ch = min(h, round(area / cw))
            x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
            scale = math.sqrt(TARGET_PIXELS / (cw * ch))
            size = (max(1, round(cw * scale)), max(1, round(ch * scale)))
            yield im.crop((x, y, x + cw, y + ch)).resize(size, Image.BILINEAR, reducing_gap=2.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cordon", required=True, help="the cordon binary (for hashing)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, default=800)
    ap.add_argument("--min-distance", type=int, default=64)
    ap.add_argument("--seed", type=int, default=9)
    ap.add_argument("sources", nargs="+")
    args = ap.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sources = sorted(
        p for d in args.sources for p in Path(d).iterdir()
        if p.is_file() and p.suffix.lower() in (".jpg", ".jpeg", ".png")
    )
    if not sources:
        sys.exit("no source images")
    rng = random.Random(args.seed)
    per_source = math.ceil(args.count * 2.5 / len(sources))

    kept = []           # (name, hash hex, quality)
    kept_ints = []      # their PDQ hashes as ints
    rejected = {"low_quality": 0, "too_close": 0}
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        for s, src in enumerate(sources):
            if len(kept) >= args.count:
                break
            batch = []
            for j, image in enumerate(crops(src, per_source, rng)):
                path = Path(tmp) / f"c{s:03d}-{j:03d}.jpg"
                image.save(path, quality=85)
                batch.append(path)
            hashed = subprocess.run(
                [args.cordon, "hash", "--dihedral", *map(str, batch)],
                check=True, capture_output=True, text=True,
            ).stdout
            rows = {r["path"]: r for r in map(json.loads, hashed.splitlines())}
            for path in batch:
                row = rows[str(path)]
                if row["quality"] < MIN_QUALITY:
                    rejected["low_quality"] += 1
                    continue
                variants = [int(v, 16) for v in row["dihedral"].values()]
                if any((v ^ k).bit_count() <= args.min_distance for k in kept_ints for v in variants):
                    rejected["too_close"] += 1
                    continue
                name = f"s{len(kept):04d}.jpg"
                path.rename(out / name)
                kept.append({"name": name, "hash": row["hash"], "quality": row["quality"],
                             "source": src.name})
                kept_ints.append(int(row["hash"], 16))
                if len(kept) >= args.count:
                    break
            print(f"{src.name}: {len(kept)} photos kept so far", file=sys.stderr)
    (out / "photos.jsonl").write_text("".join(json.dumps(k) + "\n" for k in kept))
    print(f"{len(kept)} photos in {out} (rejected: {rejected})", file=sys.stderr)
    if len(kept) < args.count:
        sys.exit(f"only {len(kept)} of {args.count} photos: add sources or lower --min-distance")


if __name__ == "__main__":
    main()
