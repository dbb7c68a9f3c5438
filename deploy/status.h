/*
 * deploy/status.h: what runs on each host, which commit it came from, and
 * how it drifted from what the repository's HEAD builds (`constel status`).
 *
 * Each selected host is asked once (one session, one round trip: the
 * profile query and the host's newest deployment records), by the common
 * pool; nothing here prints. The revision a host runs is the one of the
 * newest deployment record whose path is its current system; a current
 * system no record names was changed by hand. The drift rules are
 * status_drift_of(), documented in docs/provenance.md.
 */
#ifndef CONSTEL_STATUS_H
#define CONSTEL_STATUS_H

#include <stdbool.h>

#include "common/util.h"
#include "deploy/build.h"
#include "deploy/provenance.h"
#include "inventory/inventory.h"

enum status_drift {
	STATUS_IN_SYNC,
	STATUS_BEHIND,
	STATUS_DIRTY,
	STATUS_BY_HAND,
	STATUS_UNKNOWN,
	STATUS_UNREACHABLE,
};

const char *status_drift_name(enum status_drift d);

/* One host's facts; strings are sanitized, store paths checked. */
struct status_row {
	size_t host;
	bool reachable;
	char *current;
	long generation;
	char *switched;
	char *revision; /* of the deployment record naming `current` */
	char *recorded; /* the time of that record */
	bool dirty;	/* that record was built from a dirty tree */
	bool matched;	/* a deployment record names `current` */
	size_t nrecords;
	char *expected; /* what HEAD builds for it, when evaluated */
	char *eval_error;
	long behind; /* -1 unknown */
	enum status_drift drift;
	char *error;
	bool locked;	   /* a deploy holds the host's lock now */
	char *interrupted; /* the run id of a run that died half-way, or NULL */
};

/* The verdict on a row's facts, `head` HEAD's commit (or NULL). */
enum status_drift status_drift_of(const struct status_row *r, const char *head);

struct status_opts {
	struct inventory *inv;
	const bool *selected;
	const struct provenance *prov; /* repo_path NULL when not in git */
	bool eval;		       /* evaluate what HEAD builds (else --no-eval) */
	struct build_set_eval how;     /* how (repo and commit are set here) */
	const char *ssh_config;
	long parallel;
};

struct status_report {
	struct status_row *rows; /* the selected hosts, in inventory order */
	size_t nrows;
	struct strvec warnings; /* what could not be found out, for the user */
};

/* Asks every selected host. 0; the report is the caller's to release. */
int status_collect(const struct status_opts *o, struct status_report *out);
void status_report_release(struct status_report *r);

/*
 * Internal, shared with the fuzzer: reads the host's newest records (one
 * JSON object per line, untrusted) into row: how many there are, and the
 * newest deployment record naming row->current.
 */
void status__read_history(struct status_row *row, const char *history);

#endif
