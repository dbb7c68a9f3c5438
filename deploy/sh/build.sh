# constel build (POSIX sh): realises a derivation on this host (`build:
# target`). Answers `out=PATH` for each output; on failure exits with the
# build's own status and, after the output mark, Nix's last lines.
#   build.sh DRV
set -u
case $1 in /nix/store/*.drv) ;; *)
	echo "error=not a derivation: $1"
	exit 2
	;;
esac
err=$(mktemp) || exit 70
nix-store --realise "$1" --no-build-output >/dev/null 2>"$err"
rc=$?
if [ $rc -ne 0 ]; then
	echo "--- output ---"
	tail -n 20 "$err"
	rm -f "$err"
	exit $rc
fi
rm -f "$err"
nix-store --query --outputs "$1" | sed 's/^/out=/'
