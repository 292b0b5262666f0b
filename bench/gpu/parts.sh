#!/usr/bin/env bash
# parts.sh OUT PATH... : packs PATHs (files or folders, relative to the current folder) into one xz-compressed tar,
# split into folders OUT/1, OUT/2, ... of at most PART_MB (default 60) megabytes each, for machines that take only
# small copies. Each folder holds its piece and a place.sh: copy the folders over one at a time and run
# `bash N/place.sh` after each copy. The run that completes the set checks the sha256 of the whole and unpacks it
# under $PLACE_ROOT (default /tmp/realign-root), each PATH at its relative location; the pieces wait in
# $PLACE_PARTS (default /tmp/realign-parts) until then.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: parts.sh OUT PATH..." >&2; exit 2; }
out=$1; shift
mb=${PART_MB:-60}
rm -rf "$out"
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -cf - "$@" | xz -T0 -6 > "$work/all.tar.xz"
sum=$(sha256sum "$work/all.tar.xz" | cut -d' ' -f1)
tag=${sum:0:12}  # pieces of an older bundle left in $PLACE_PARTS do not mix with these
split -b "$((mb * 1000000))" -d -a 3 "$work/all.tar.xz" "$work/piece-$tag-"
rm "$work/all.tar.xz"
pieces=("$work"/piece-"$tag"-*)
count=${#pieces[@]}
i=0
for p in "${pieces[@]}"; do
  i=$((i + 1))
  mkdir -p "$out/$i"
  mv "$p" "$out/$i/"
  cat > "$out/$i/place.sh" <<EOF
#!/usr/bin/env bash
# piece $i of $count made by realign's bench/gpu/parts.sh; the last one to arrive unpacks them all
set -euo pipefail
parts=\${PLACE_PARTS:-/tmp/realign-parts}
root=\${PLACE_ROOT:-/tmp/realign-root}
mkdir -p "\$parts" "\$root"
cp "\$(dirname "\$0")"/piece-$tag-* "\$parts/"
have=\$(find "\$parts" -maxdepth 1 -name 'piece-$tag-*' | wc -l)
if [ "\$have" -lt $count ]; then echo "have \$have of $count pieces in \$parts"; exit 0; fi
cat "\$parts"/piece-$tag-* > "\$parts/all.tar.xz"
echo "$sum  \$parts/all.tar.xz" | sha256sum -c --quiet
xz -dc "\$parts/all.tar.xz" | tar -xf - -C "\$root"
rm -f "\$parts/all.tar.xz" "\$parts"/piece-$tag-*
echo "unpacked $count piece(s) into \$root"
EOF
done
du -sh "$out"/* | sed 's/^/  /'
echo "$count part folder(s) in $out; copy each and run its place.sh"
