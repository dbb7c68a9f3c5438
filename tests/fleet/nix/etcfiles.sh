# Appended to build.sh for an etc derivation with files (nixos.nix's
# environment.etc; kept apart so that every other path stays the same):
# the names in etcNames, the text of each in etcFileI.
i=0
for f in $etcNames; do
	case $f in */*) mkdir -p "$out/etc/${f%/*}" ;; esac
	eval "printf '%s\\n' \"\$etcFile$i\"" >"$out/etc/$f"
	i=$((i + 1))
done
