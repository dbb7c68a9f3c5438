/*
 * deploy/exec.h: one command on many hosts at once (`constel exec`),
 * through each host's backend (deploy/host_io.h), on common/pool. Each
 * host's output is kept whole, bounded, for the caller to print from one
 * thread.
 */
#ifndef CONSTEL_EXEC_H
#define CONSTEL_EXEC_H

#include <stdbool.h>
#include <stddef.h>

#include "common/util.h"
#include "inventory/inventory.h"

/* Each host's output is kept whole, up to this much per stream. */
#define EXEC_OUTPUT_MAX (4u << 20)

struct exec_output {
	struct buf out, err; /* bounded by EXEC_OUTPUT_MAX (truncated says) */
	int exit_status;     /* -1 when it died of a signal */
	char *error;	     /* it could not run at all (unreachable), or NULL */
	double seconds;
};

/*
 * Runs `cmd` on hosts[0..n) of `inv`, `parallel` at once, as the login
 * user (as_root: through each host's `become`, docs/become.md); out[i] is
 * hosts[i]'s (caller releases each with exec_output_release). Returns how
 * many failed or were unreachable.
 */
size_t exec_hosts(const struct inventory *inv, const size_t *hosts, size_t n, const char *cmd,
	const char *ssh_config, size_t parallel, bool as_root, struct exec_output *out);
void exec_output_release(struct exec_output *o);

#endif
