/*
 * deploy/gcroots.h: the systems constel deployed stay alive on this
 * machine: each is a Nix GC root (indirect, `nix-store --add-root`) under
 * STATE/gcroots/HOST/ (STATE: common/util.h state_dir()), the newest
 * GCROOTS_KEEP per host, so a garbage collection here does not make a
 * rollback rebuild what a host ran.
 */
#ifndef CONSTEL_GCROOTS_H
#define CONSTEL_GCROOTS_H

#define GCROOTS_KEEP 5

/* Roots `path` for `host` and drops the host's roots past the newest GCROOTS_KEEP. 0 or -1. */
int gcroots_keep(const char *host, const char *path);

#endif
