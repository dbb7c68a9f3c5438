#!/bin/sh
# Installs what constel's build, tests and demo need on Debian 12, if missing:
# the -dev libraries, Nix, sshd, qemu-user for aarch64 (registered in
# binfmt_misc) and an aarch64 busybox. Quiet and quick when all is there.
# The one list of the project's system packages: .ci/run and `make deps` use it.
set -eu
PACKAGES="build-essential pkg-config clang
	libssh-dev libgit2-dev libyaml-dev libjansson-dev libcmocka-dev
	nix-bin openssh-server openssh-client iproute2 util-linux procps
	qemu-user-static binfmt-support busybox-static:arm64
	python3 python3-yaml git file graphviz
	shellcheck dash zsh fish sudo"

missing=
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "constel needs these Debian packages:$missing" >&2
		echo "run 'make deps' as root (or apt-get install them)" >&2
		exit 1
	fi
	echo "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
	apt-get update -q
	apt-get install -y -q --no-install-recommends $missing
fi

# aarch64 systems are built and activated under qemu-user emulation
if [ "$(id -u)" = 0 ]; then
	mountpoint -q /proc/sys/fs/binfmt_misc 2>/dev/null ||
		mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
	[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] ||
		update-binfmts --enable qemu-aarch64 2>/dev/null || true
fi
