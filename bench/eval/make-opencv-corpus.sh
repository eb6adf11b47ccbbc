#!/usr/bin/env bash
# Builds the OPENCV corpus for `cordon eval`: the photographs among the sample images
# OpenCV ships with its examples (Debian's opencv-doc, samples/data): aerial views, plants,
# fruit, animals, buildings, streets, people, a circuit board, a car, and photos of text
# and objects, some of them blurred by motion or focus. Held out like the photos corpus:
# nothing was tuned on it.
#
#   bench/eval/make-opencv-corpus.sh OUT_DIR      (needs apt-get and dpkg; no root)
#
# Which files are photographs was decided by looking at them, before any evaluation: left
# out are renders, drawings, logos, maps, synthetic test patterns, text rendered by a
# program, a painting (starry_night) and the 28 views of one calibration chessboard
# (left01-14, right01-14: one object 28 times). Several photographs are one scene twice
# (a stereo pair, two frames of a film, two viewpoints, an image and a copy of it with a
# local edit, a box and the scene it sits in); `cordon eval` drops near-duplicates itself
# and names each drop, so they are copied as shipped.
#
# The .deb (about 96 MB) is kept in OUT_DIR/.debs (`cordon eval` skips hidden folders), so
# a second run downloads nothing.
set -euo pipefail
out=${1:?usage: make-opencv-corpus.sh OUT_DIR}
mkdir -p "$out/.debs"
out=$(cd "$out" && pwd)
cd "$out/.debs"
# Pinned: the list below is of this version's files.
deb=opencv-doc_4.6.0+dfsg-12_all.deb
[[ -f $deb ]] || apt-get download opencv-doc=4.6.0+dfsg-12
[[ -d x ]] || dpkg -x "$deb" x

photos=(
    aero1.jpg aero3.jpg aloeL.jpg aloeR.jpg apple.jpg baboon.jpg basketball1.png
    basketball2.png board.jpg box.png box_in_scene.png building.jpg butterfly.jpg
    chicky_512.png ela_modified.jpg ela_original.jpg fruits.jpg graf1.png graf3.png
    home.jpg leuvenA.jpg leuvenB.jpg licenseplate_motion.jpg messi5.jpg orange.jpg
    rubberwhale1.png rubberwhale2.png smarties.png squirrel_cls.jpg stuff.jpg sudoku.png
    text_defocus.jpg text_motion.jpg
)
data=x/usr/share/doc/opencv-doc/examples/data
for photo in "${photos[@]}"; do
    cp "$data/$photo" "$out/"
done
echo "${#photos[@]} photos in $out"
