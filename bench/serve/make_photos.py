#!/usr/bin/env python3
"""Makes ~1 MP JPEGs (q85) for the submission benchmark from real photos.

    python make_photos.py OUT_DIR SRC_DIR [SRC_DIR ...]

Every source image (jpg/png) is scaled so that width * height is about 1,000,000 pixels,
keeping its aspect ratio, converted to RGB and saved as OUT_DIR/pNN.jpg at quality 85.
Needs Pillow.
"""
import math
import sys
from pathlib import Path

from PIL import Image

TARGET_PIXELS = 1_000_000


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    sources = sorted(
        p for d in sys.argv[2:] for p in Path(d).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")
    )
    if not sources:
        sys.exit("no source images")
    for i, src in enumerate(sources):
        with Image.open(src) as im:
            im = im.convert("RGB")
            scale = math.sqrt(TARGET_PIXELS / (im.width * im.height))
            size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
            im = im.resize(size, Image.LANCZOS)
            im.save(out / f"p{i:02d}.jpg", quality=85)
    print(f"{len(sources)} photos in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
