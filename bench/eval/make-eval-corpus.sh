#!/usr/bin/env bash
# Builds the held-out REPORT corpus for `cordon eval`: the pictures of Debian's desktop-base,
# gnome-backgrounds, mate-backgrounds and plasma-workspace-wallpapers packages (JPEG, PNG
# and WebP over 20 KB; GNOME ships WebP only), one file per picture, leaving out any file
# byte-identical (sha256) to one of the tuning corpus (shared/corpus/make-corpus.sh).
#
#   bench/eval/make-eval-corpus.sh OUT_DIR [TUNING_DIR]     (apt-get and dpkg; no root)
#
# TUNING_DIR defaults to bench/out/eval/tuning. The packages are kept in OUT_DIR/.debs
# (`cordon eval` skips hidden folders), so a second run downloads nothing.
set -euo pipefail
out=${1:?usage: make-eval-corpus.sh OUT_DIR [TUNING_DIR]}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tuning=${2:-$here/../out/eval/tuning}
mkdir -p "$out/.debs"
out=$(cd "$out" && pwd)
# Made absolute before the cd below, so that a relative TUNING_DIR still names it.
[[ -d $tuning ]] && tuning=$(cd "$tuning" && pwd)
cd "$out/.debs"
ls ./*.deb >/dev/null 2>&1 || apt-get download desktop-base gnome-backgrounds mate-backgrounds \
    plasma-workspace-wallpapers
rm -rf x
for d in ./*.deb; do dpkg -x "$d" x; done

# The tuning corpus's files, by content.
declare -A taken=()
if [[ -d $tuning ]]; then
    while read -r sum _; do taken[$sum]=1; done < <(
        find "$tuning" -mindepth 1 -name '.*' -prune -o -type f -print0 | xargs -0 -r sha256sum)
else
    echo "warning: no tuning corpus at $tuning; nothing is left out as identical to it" >&2
fi

# One file per picture: the largest of the sizes a package ships of one picture (a KDE
# wallpaper's contents/images*/ folders, NAME_WxH beside NAME, grub-4x3 beside grub-16x9);
# screenshots and previews, downscaled copies of the others, are left out.
pictures() {
    find x -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' -o -iname '*.webp' \) \
        -size +20k ! -iname 'screenshot.*' ! -iname '*preview*' -printf '%s\t%p\n' |
        awk -F'\t' '{
            key = $2
            if (match(key, /\/contents\/images/)) {
                key = substr(key, 1, RSTART)
            } else {
                sub(/\.[^.\/]*$/, "", key)
                sub(/[-_][0-9]+x[0-9]+$/, "", key)
            }
            if (!(key in best) || $1 > bytes[key]) { best[key] = $2; bytes[key] = $1 }
        }
        END { for (key in best) print best[key] }' |
        sort
}

declare -A seen=()
copied=0
identical=0
while read -r f; do
    sum=$(sha256sum "$f" | cut -d' ' -f1)
    if [[ -n ${taken[$sum]:-} ]]; then
        identical=$((identical + 1))
        continue
    fi
    [[ -n ${seen[$sum]:-} ]] && continue
    seen[$sum]=1
    name=$(echo "${f#x/usr/share/}" | tr '/ ' '__')
    cp "$f" "$out/$name"
    copied=$((copied + 1))
done < <(pictures)
echo "$copied images in $out ($identical left out as identical to the tuning corpus)"
