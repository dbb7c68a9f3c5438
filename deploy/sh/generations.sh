# constel generations (POSIX sh): the system profile's generations, one
# `gen=N path=PATH` line each.
set -u
profile=${CONSTEL_PROFILE:-/nix/var/nix/profiles/system}
for l in "$profile"-*-link; do
	[ -e "$l" ] || continue
	g=${l##*/system-}
	g=${g%-link}
	case $g in '' | *[!0-9]*) continue ;; esac
	echo "gen=$g path=$(readlink -f "$l")"
done
