# constel reboot (POSIX sh): reboots this host a moment after answering.
# Answers `boot_id=` (the boot it leaves), then the host goes down:
# `systemctl reboot`, else `reboot`, in a session of its own a second
# later, so the answer reaches constel first. Exit 70: no boot id to tell
# the next boot by (nothing is done).
set -u
id=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null) || id=''
if [ -z "$id" ]; then
	echo "error=cannot read /proc/sys/kernel/random/boot_id"
	exit 70
fi
echo "boot_id=$id"
setsid sh -c 'sleep 1; systemctl reboot 2>/dev/null || reboot' </dev/null >/dev/null 2>&1 &
true
