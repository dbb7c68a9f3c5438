/*
 * deploy/host_io.h: the host backend. One host is reached one way, chosen
 * once when it is opened: over SSH (libssh, transport/) or, for the machine
 * constel runs on (`local: true`), directly. Everything host-side (deploy,
 * rollback, status, exec) goes through this table, so a local host gets the
 * same protocol, health gate, records and exit statuses as any other, and
 * callers never ask which kind they have (curl's `struct Curl_ssl` shape).
 *
 * A struct host_io is used by one thread at a time. host_io_open() only
 * connects (ssh: a NEW session each time, which after an activation is the
 * proof that the new system still lets constel in); for a local host it is
 * a no-op that succeeds.
 */
#ifndef CONSTEL_HOST_IO_H
#define CONSTEL_HOST_IO_H

#include <stdatomic.h>
#include <stdbool.h>

#include "inventory/inventory.h"
#include "transport/transport.h"

struct host_io;

struct host_io_config {
	const char *ssh_config; /* NULL: ~/.ssh/config */
	long connect_timeout;
	int op_timeout; /* seconds without a sign of life */
	const struct host_io_ops *ops; /* NULL: by the host (ssh, or local); tests pass a fake */
	bool substitute; /* copies: the host first fetches what it can from its substituters */
};

/* How one command runs. */
struct host_exec {
	const char *input;	   /* stdin (borrowed), or NULL */
	long timeout;		   /* wall-clock seconds, 0: none */
	const atomic_bool *cancel; /* abandon it once true (NULL: never) */
	bool as_root;		   /* it needs root: run through the host's `become` */
	const char *become_pass;   /* as_root with sudo asking a password: this one */
};

struct host_io_ops {
	const char *kind; /* "ssh", "local": for logs only */
	int (*connect)(struct host_io *io);
	/* 0 when it ran (res->exit_status says how), < 0 when it could not */
	int (*exec)(struct host_io *io, const char *cmd, const struct host_exec *o,
		struct ssh_exec_result *res);
	/* 0 when localhost:port accepts, CONSTEL_ENOTFOUND refused, CONSTEL_ETIMEOUT */
	int (*probe)(struct host_io *io, int port, int timeout_ms);
	/* makes the host hold the closure of store path `path` (a local host already does) */
	int (*copy)(struct host_io *io, const char *path, struct ssh_copy_stats *st,
		ssh_copy_progress_fn progress, void *data);
	void (*disconnect)(struct host_io *io);
};

struct host_io {
	const struct host_io_ops *ops;
	const struct inv_host *host;
	struct host_io_config cfg;
	struct ssh_conn *conn; /* ssh: the current session */
	unsigned sessions;     /* sessions opened so far */
	bool open;	       /* opened, not closed since */
};

/* Chooses the backend of `h` (borrowed, like cfg's strings); connects nothing yet. */
void host_io_init(struct host_io *io, const struct inv_host *h, const struct host_io_config *cfg);
/* Connects (ssh: a session). 0 or < 0 with the error set. */
int host_io_open(struct host_io *io);
int host_io_exec(struct host_io *io, const char *cmd, const struct host_exec *o,
	struct ssh_exec_result *res);
int host_io_probe(struct host_io *io, int port, int timeout_ms);
int host_io_copy(struct host_io *io, const char *path, struct ssh_copy_stats *st,
	ssh_copy_progress_fn progress, void *data);
/* Closes the session, if any; io can be opened again. */
void host_io_close(struct host_io *io);
/* Whether io was opened and not closed since. */
bool host_io_connected(const struct host_io *io);

#endif
