#!/usr/bin/env bash
# Builds two corpora of photographs for `cordon eval` from Debian's gcompris-qt-data, whose
# activities ship real photos (CC BY-SA / public domain, see the package's copyright file):
#
#   TUNING_DIR  `categorization` and `erase`: 172 photos of tools, fish, windmills, solar
#               panels, monuments, household objects (most 320x240, as thumbnails are) and
#               animals (1920x1080). What recall on photos is tuned on.
#   REPORT_DIR  `explore_monuments`, `explore_world_animals`, `explore_farm_animals` and
#               `explore_world_music`: 82 photos of buildings, animals, musicians and crowds
#               (about 1024x768). Held out like the report and photos corpora.
#
#   bench/eval/make-gcompris-corpus.sh TUNING_DIR REPORT_DIR   (needs apt-get, dpkg, python3)
#
# The activities keep their pictures as WebP files inside Qt resource bundles (.rcc), stored
# uncompressed, so each one is cut out at its RIFF header. The .deb is kept in
# TUNING_DIR/.debs (`cordon eval` skips hidden folders), so a second run downloads nothing.
set -euo pipefail
tuning=${1:?usage: make-gcompris-corpus.sh TUNING_DIR REPORT_DIR}
report=${2:?usage: make-gcompris-corpus.sh TUNING_DIR REPORT_DIR}
python=${PYTHON:-python3}
mkdir -p "$tuning/.debs" "$report"
tuning=$(cd "$tuning" && pwd)
report=$(cd "$report" && pwd)
cd "$tuning/.debs"
# Pinned: which photos are in which set (and `in_both` below) is by their order in the
# bundles of this version.
deb=gcompris-qt-data_3.1-2_all.deb
[[ -f $deb ]] || apt-get download gcompris-qt-data=3.1-2
[[ -d x ]] || dpkg -x "$deb" x

"$python" - "$tuning/.debs/x/usr/share/gcompris-qt/rcc" "$tuning" "$report" <<'EOF'
import struct, sys
from pathlib import Path

rcc, tuning, report = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
sets = {
    tuning: ["categorization", "erase"],
    report: ["explore_monuments", "explore_world_animals", "explore_farm_animals",
             "explore_world_music"],
}
# The same photos as explore_monuments 039, 011 and 046 (PDQ distance 10-14): kept out of
# the tuning set so that nothing tuned on is reported on.
in_both = {("categorization", 118), ("categorization", 120), ("categorization", 122)}

def webp_files(bundle):
    """Every RIFF/WEBP file stored whole in a Qt resource bundle, in order."""
    data, at = bundle.read_bytes(), 0
    while (at := data.find(b"RIFF", at)) >= 0:
        size = struct.unpack_from("<I", data, at + 4)[0]
        end = at + 8 + size
        if data[at + 8:at + 12] == b"WEBP" and end <= len(data):
            yield data[at:end]
            at = end
        else:
            at += 4

for out, activities in sets.items():
    count = 0
    for activity in activities:
        for number, picture in enumerate(webp_files(rcc / f"{activity}.rcc")):
            if (activity, number) in in_both:
                continue
            (out / f"gcompris_{activity}_{number:03d}.webp").write_bytes(picture)
            count += 1
    print(f"{count} photos in {out}")
EOF
