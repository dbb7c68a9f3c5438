# constel health (POSIX sh): an HTTP check of the host's health gate, made
# from the host itself, so no service port needs to be open to constel.
#   health.sh http PORT PATH   GET http://localhost:PORT/PATH with what the
#                              host has (curl, else wget: GNU's or busybox's)
# Answers `status=NNN` (000: no HTTP answer) and `tool=`, then after the
# output mark the start of the body. Exit 2: bad arguments; 69: neither tool.
set -u
if [ "${1:-}" != http ] || [ $# -ne 3 ]; then
	echo "error=usage: health.sh http PORT PATH"
	exit 2
fi
port=$2 path=$3
case $port in '' | *[!0-9]*)
	echo "error=bad port '$port'"
	exit 2
	;;
esac
case $path in /*) ;; *)
	echo "error=the path must start with /"
	exit 2
	;;
esac
url="http://localhost:$port$path"
body=$(mktemp) || exit 70
code=''
if command -v curl >/dev/null 2>&1; then
	tool=curl
	code=$(curl -s -m 5 -o "$body" -w '%{http_code}' "$url" 2>/dev/null)
elif command -v wget >/dev/null 2>&1; then
	tool=wget
	# both print the status line on stderr: GNU's with -S, busybox's on an error status
	code=$(wget -S -T 5 -O "$body" "$url" 2>&1 >/dev/null |
		sed -n 's/.*HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' | tail -n 1)
	[ -n "$code" ] || [ ! -s "$body" ] || code=200
else
	rm -f "$body"
	echo "error=the host has neither curl nor wget for the HTTP check"
	exit 69
fi
case $code in [0-9][0-9][0-9]) ;; *) code=000 ;; esac
echo "status=$code"
echo "tool=$tool"
echo "--- output ---"
head -c 512 "$body"
rm -f "$body"
true
