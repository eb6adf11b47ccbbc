#!/usr/bin/env python3
"""Derive the benchmark's image sets from the corpus of originals (Pillow only, seeded).

usage: make_inputs.py OUT        (expects OUT/corpus/ filled by make-corpus.sh)

Writes
  OUT/large/    the LARGE_COUNT biggest JPEG originals, centre-cropped to 4:3 (3:4 when
                portrait) and LANCZOS-resized to 4000x3000 (12 MP), JPEG q90 4:2:0;
  OUT/reposts/  REPOSTS_PER_SOURCE re-encodings of every original, as a platform would
                serve a re-post: LANCZOS to long side 640/1080/1600 (never upscaled), then
                JPEG q70-95 (4:2:0 / 4:4:4 / 4:2:2, some progressive, some optimized),
                PNG (RGB, some RGBA with real transparency, palette or grey),
                WebP (lossy q75-90, some lossless, some with alpha);
  OUT/manifest.tsv  one line per generated file: set, path, source, parameters.
Every random choice comes from a generator seeded by the source's file name, so the
output does not depend on the order or the number of worker processes.
"""
import os
import sys
import zlib
from concurrent.futures import ProcessPoolExecutor
from random import Random

from PIL import Image, ImageChops

SEED = 20260717
LONG_SIDES = (640, 1080, 1600)
LARGE_COUNT = 10
LARGE_SIZE = (4000, 3000)
IMAGE_EXT = (".jpg", ".jpeg", ".png", ".webp")
SUBSAMPLING = {"420": 2, "422": 1, "444": 0}


def rng_for(name):
    return Random(SEED ^ zlib.crc32(name.encode()))


def load_rgb(path):
    im = Image.open(path)
    im.load()
    return im.convert("RGB") if im.mode != "RGB" else im


def resize_long(im, long_side):
    w, h = im.size
    if max(w, h) <= long_side:
        return im.copy()
    if w >= h:
        size = (long_side, max(1, round(h * long_side / w)))
    else:
        size = (max(1, round(w * long_side / h)), long_side)
    return im.resize(size, Image.LANCZOS)


def with_alpha(im):
    """RGBA copy whose alpha fades from an opaque centre to ~38% at the borders (a
    sticker-like cut-out); the RGB under it is kept, as decoders that drop alpha see it."""
    w, h = im.size
    vert = Image.linear_gradient("L").resize((w, h))  # 0 at the top, 255 at the bottom
    horiz = Image.linear_gradient("L").transpose(Image.ROTATE_90).resize((w, h))
    # distance to the nearest border, 0..127, mapped to alpha 96..255
    dist_v = ImageChops.darker(vert, vert.transpose(Image.FLIP_TOP_BOTTOM))
    dist_h = ImageChops.darker(horiz, horiz.transpose(Image.FLIP_LEFT_RIGHT))
    alpha = ImageChops.darker(dist_v, dist_h).point(lambda v: min(255, 96 + 2 * v))
    rgba = im.convert("RGBA")
    rgba.putalpha(alpha)
    return rgba


def jpeg_variant(rng):
    q = rng.randint(70, 95)
    sub = rng.choices(["420", "444", "422"], weights=[6, 3, 1])[0]
    prog = rng.random() < 0.3
    opt = rng.random() < 0.5
    desc = f"q{q}-{sub}" + ("-prog" if prog else "") + ("-opt" if opt else "")
    kw = dict(quality=q, subsampling=SUBSAMPLING[sub], progressive=prog, optimize=opt)
    return "jpg", desc, kw, "RGB"


def png_variant(rng):
    mode = rng.choices(["RGB", "RGBA", "P", "L"], weights=[13, 3, 3, 1])[0]
    return "png", mode.lower(), dict(optimize=False, compress_level=6), mode


def webp_variant(rng):
    lossless = rng.random() < 0.15
    alpha = rng.random() < 0.15
    mode = "RGBA" if alpha else "RGB"
    if lossless:
        return "webp", "lossless" + ("-rgba" if alpha else ""), dict(lossless=True, quality=80, method=4), mode
    q = rng.randint(75, 90)
    return "webp", f"q{q}" + ("-rgba" if alpha else ""), dict(quality=q, method=4), mode


def convert_mode(im, mode):
    if mode == "RGB":
        return im
    if mode == "RGBA":
        return with_alpha(im)
    if mode == "P":
        return im.quantize(colors=256)
    if mode == "L":
        return im.convert("L")
    raise ValueError(mode)


def make_reposts(job):
    idx, src, out_dir = job
    name = os.path.basename(src)
    rng = rng_for(name)
    im = load_rgb(src)
    resized = {}
    plan = []
    for long_side in LONG_SIDES:  # 2 JPEGs per size: JPEG is most of what platforms serve
        plan += [(long_side, jpeg_variant(rng)), (long_side, jpeg_variant(rng))]
    plan += [(rng.choice(LONG_SIDES), png_variant(rng)) for _ in range(2)]
    plan += [(rng.choice(LONG_SIDES), webp_variant(rng)) for _ in range(2)]
    rows = []
    for k, (long_side, (ext, desc, kw, mode)) in enumerate(plan):
        if long_side not in resized:
            resized[long_side] = resize_long(im, long_side)
        img = convert_mode(resized[long_side], mode)
        fname = f"r{idx:02d}-{k:02d}-{long_side}-{desc}.{ext}"
        path = os.path.join(out_dir, fname)
        img.save(path, format={"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}[ext], **kw)
        params = " ".join(f"{a}={b}" for a, b in sorted(kw.items()))
        rows.append(f"reposts\t{path}\t{name}\t{img.size[0]}x{img.size[1]} {img.mode} {params}")
    return rows


def make_large(job):
    idx, src, out_dir = job
    im = load_rgb(src)
    w, h = im.size
    target = LARGE_SIZE if w >= h else LARGE_SIZE[::-1]
    ar = target[0] / target[1]
    if w / h > ar:  # too wide: crop width
        cw, ch = round(h * ar), h
    else:
        cw, ch = w, round(w / ar)
    left, top = (w - cw) // 2, (h - ch) // 2
    big = im.crop((left, top, left + cw, top + ch)).resize(target, Image.LANCZOS)
    stem = os.path.splitext(os.path.basename(src))[0][:40]
    path = os.path.join(out_dir, f"L{idx:02d}-{stem}.jpg")
    big.save(path, format="JPEG", quality=90, subsampling=2)
    return [f"large\t{path}\t{os.path.basename(src)}\t{target[0]}x{target[1]} RGB quality=90 subsampling=2"]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_inputs.py OUT")
    out = os.path.abspath(sys.argv[1])
    corpus = os.path.join(out, "corpus")
    sources = sorted(
        os.path.join(corpus, f)
        for f in os.listdir(corpus)
        if f.lower().endswith(IMAGE_EXT) and os.path.isfile(os.path.join(corpus, f))
    )
    if not sources:
        sys.exit(f"no images in {corpus}")
    large_dir, repost_dir = os.path.join(out, "large"), os.path.join(out, "reposts")
    os.makedirs(large_dir, exist_ok=True)
    os.makedirs(repost_dir, exist_ok=True)

    # the biggest JPEG originals (by pixel count, ties by name) become the 12 MP set
    def pixels(p):
        with Image.open(p) as im:
            return im.size[0] * im.size[1]

    jpegs = [p for p in sources if p.lower().endswith((".jpg", ".jpeg"))]
    biggest = sorted(jpegs, key=lambda p: (-pixels(p), p))[:LARGE_COUNT]
    jobs_large = [(i, p, large_dir) for i, p in enumerate(sorted(biggest))]
    jobs_reposts = [(i, p, repost_dir) for i, p in enumerate(sources)]

    workers = max(1, min(2, os.cpu_count() or 1))
    rows = []
    with ProcessPoolExecutor(max_workers=workers) as ex:
        for r in ex.map(make_large, jobs_large):
            rows += r
        for r in ex.map(make_reposts, jobs_reposts):
            rows += r
    with open(os.path.join(out, "manifest.tsv"), "w") as f:
        f.write("set\tpath\tsource\tparams\n")
        for row in rows:
            f.write(row + "\n")
    n_large = sum(r.startswith("large") for r in rows)
    print(f"{n_large} large + {len(rows) - n_large} reposts from {len(sources)} originals in {out}")


if __name__ == "__main__":
    main()
