/*
 * transport/internal.h: shared between the files of transport/ and its unit
 * tests; not part of the module's API.
 */
#ifndef CONSTEL_TRANSPORT_INTERNAL_H
#define CONSTEL_TRANSPORT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/transport.h"

/* Initialises libssh once for the process (thread-safe). */
void transport__init(void);

/*
 * Parses the host's answer to "which of these paths are invalid": one path
 * per line, each of which must be one of paths[0..n). Sets missing[i] for
 * each path named. Fails (naming the line) on anything else, since the
 * answer is untrusted.
 */
int transport__parse_missing(
	const char *const *paths, size_t n, const char *answer, size_t len, bool *missing);

/* Is p a store path we are willing to put on a command line or in a list? */
bool transport__valid_path(const char *p);

/*
 * A buffered writer to an fd that counts what it wrote, and the NAR of a
 * store path written through it (transport/nar.c).
 */
struct transport_out {
	int fd;
	char *buf;
	size_t len;
	uint64_t total; /* bytes accepted so far */
};

void transport__out_init(struct transport_out *o, int fd);
void transport__out_release(struct transport_out *o);
int transport__out_flush(struct transport_out *o);
int transport__out_bytes(struct transport_out *o, const void *data, size_t len);
int transport__out_u64(struct transport_out *o, uint64_t v);
/* A NAR/serve-protocol string: length, bytes, zero padding to 8. */
int transport__out_str(struct transport_out *o, const char *s, size_t len);
/* Serialises `path` as a NAR into o (not flushed). */
int transport__nar_dump(struct transport_out *o, const char *path);

/*
 * The host's answer to a batch of cmdAddToStoreNar: its magic and version,
 * then 1 for each of the `npaths` paths. 0 when all were added;
 * CONSTEL_ENOTFOUND with *refused the first path it did not add; -1 for an
 * answer of any other shape. Reads exactly `len` bytes.
 */
int transport__parse_serve_reply(const char *data, size_t len, size_t npaths, size_t *refused);

/* Splits "user@host:port" (ProxyJump's first hop); parts may be NULL. */
int transport__parse_jump(const char *spec, char **user, char **host, int *port);

#endif
