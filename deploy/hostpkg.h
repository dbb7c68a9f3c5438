/*
 * deploy/hostpkg.h: constel's host commands that need root as one fixed
 * file tree in the Nix store, `constel-host-VERSION`:
 *
 *   bin/constel-host     the dispatcher (deploy/sh/dispatch.sh)
 *   start.sh watchdog.sh wait.sh record.sh reboot.sh
 *
 * It is added to this machine's store content-addressed (`nix-store
 * --add-fixed --recursive sha256`), so its path names exactly these bytes,
 * and copied to every host whose commands become root (`become:`); those
 * commands are then `BECOME /nix/store/...-constel-host-VERSION/bin/
 * constel-host NAME ARG...`, one fixed command a sudoers rule can allow
 * alone (hostpkg_sudoers), instead of a shell with the script in its
 * arguments. docs/become.md.
 */
#ifndef CONSTEL_HOSTPKG_H
#define CONSTEL_HOSTPKG_H

/* The package's store path (made once per process; borrowed), or NULL with the error set. */
const char *hostpkg_path(void);

/* The sudoers line that lets `user` run the package's dispatcher as root (caller frees). */
char *hostpkg_sudoers(const char *user);

#endif
