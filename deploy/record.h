/*
 * deploy/record.h: what constel leaves on a host about what it deployed.
 *
 * After a host is deployed, /var/lib/constel/deployment.json on the host
 * says what runs there and where it came from, and the same record is
 * appended as one line to /var/lib/constel/history.jsonl. `status` reads
 * them back: the record whose path is the host's current system tells the
 * revision it runs, and a current system no record names was changed by
 * hand.
 */
#ifndef CONSTEL_RECORD_H
#define CONSTEL_RECORD_H

#include <stdbool.h>

#include "common/util.h"

struct record_info {
	const char *revision; /* the git commit built from, or NULL when unknown */
	bool dirty;	      /* the working tree had changes */
	const char *deployer; /* user@machine */
};

#define RECORD_DIR "/var/lib/constel"

/*
 * The record as a JSON object text (caller frees). `result` says what
 * constel did: "deployed", "rolled-back" (restored after a failure; `path`
 * is the system that failed, kept as history: status attributes revisions
 * from "deployed" records only), "rollback" (`constel rollback`).
 */
char *record_json(const struct record_info *info, const char *host, const char *path,
	long generation, const char *goal, const char *result);

/* The command that writes the record given on its stdin (deploy/sh/record.sh). */
/* `pkg`: the host's constel-host package (deploy/hostpkg.h), or NULL; caller frees. */
char *record_cmd_write(const char *pkg);

/* The command printing the host's newest records, one JSON object per line. */
const char *record_cmd_history(void);

#endif
