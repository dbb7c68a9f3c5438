/*
 * transport/transport.h: every SSH conversation constel has with a host.
 *
 * All SSH goes through libssh; no `ssh` child process is ever started
 * (ProxyJump included: the jump is a direct-tcpip channel of a session to
 * the jump host, pumped by a thread). The module knows nothing of Nix
 * profiles or of the inventory: the caller describes a target, gets a
 * connection, and runs commands on it.
 *
 * - struct ssh_target: what the inventory says about a host. The strings
 *   are borrowed; they must outlive ssh_conn_open() only.
 * - struct ssh_resolved: the target after OpenSSH config resolution.
 *   ssh_target_resolve() fills it; it owns its strings.
 * - struct ssh_conn: one authenticated libssh session to one host. Every
 *   operation is a channel on that session, so one deploy costs one TCP
 *   connection and one key exchange per host. A conn is used by one thread
 *   at a time (libssh's rule); different threads may use different conns
 *   at once. ssh_conn_free() releases it.
 * - ssh_conn_exec*(): runs a command, feeding stdin from memory or from an
 *   fd, capturing stdout and stderr into bounded buffers (remote output is
 *   untrusted) and optionally passing each chunk to a callback.
 * - ssh_conn_probe(): does localhost:PORT on the host accept a connection?
 * - ssh_copy_closure(): makes the host hold a closure, sending only what
 *   it lacks.
 *
 * Errors: every function returns 0 or a negative code (CONSTEL_ETIMEOUT
 * when a deadline passed) and leaves a one-line message in the error slot
 * (common/util.h) that names the host.
 *
 * Timeouts: `connect_timeout` bounds TCP connect, key exchange and
 * authentication. `op_timeout` bounds the time a running operation may go
 * without any sign of life from the host; while a command is silent,
 * keepalives are sent every ServerAliveInterval (default op_timeout / 3) and
 * their replies count as life. So a dead or unplugged host fails within
 * about op_timeout, while a live host running a long silent command does
 * not. Bounding the command itself is the caller's business.
 */
#ifndef CONSTEL_TRANSPORT_H
#define CONSTEL_TRANSPORT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

/* Host key policy, from StrictHostKeyChecking. */
enum ssh_hostkey_policy {
	SSH_HOSTKEY_STRICT,	/* yes, ask (never prompts): unknown refused */
	SSH_HOSTKEY_ACCEPT_NEW, /* accept-new: unknown added; changed refused */
	SSH_HOSTKEY_NO,		/* no, off: unknown added; changed refused */
};

struct ssh_target {
	const char *name;	/* the inventory name; the ssh config Host to look up */
	const char *address;	/* NULL: config HostName, else name */
	const char *user;	/* NULL: config User, else "root" */
	int port;		/* 0: config Port, else 22 */
	const char *ssh_config; /* NULL: ~/.ssh/config (and /etc/ssh/ssh_config) */
	int connect_timeout;	/* seconds; 0: config ConnectTimeout, else 10 */
	int op_timeout;		/* seconds without any sign of life; 0: config
				 * ServerAliveInterval * ServerAliveCountMax, else 60 */
};

/*
 * The effective settings for one target. Resolution follows OpenSSH: the
 * first value obtained for a keyword wins (IdentityFile accumulates),
 * Host and `Match host`/`Match all` blocks apply when a pattern matches the
 * target's name or its address, `Include` is followed, `~`, %h, %p, %r,
 * %u, %d and %% are expanded. Explicit fields of the target override the
 * config. Unknown keywords are left to libssh (Ciphers, KexAlgorithms...).
 */
struct ssh_resolved {
	char *name;
	char *hostname; /* where to connect */
	char *user;
	int port;
	struct strvec identities; /* IdentityFile, else the OpenSSH defaults */
	bool identities_only;	  /* IdentitiesOnly: skip the agent */
	char *identity_agent;	  /* IdentityAgent, else $SSH_AUTH_SOCK; NULL: none */
	char *known_hosts;	  /* first UserKnownHostsFile, else ~/.ssh/known_hosts */
	enum ssh_hostkey_policy hostkey_policy;
	int connect_timeout;
	int op_timeout;
	int alive_interval;  /* ServerAliveInterval, else op_timeout / 3 */
	char *proxy_jump;    /* ProxyJump (first hop used), NULL: none */
	char *proxy_command; /* ProxyCommand, NULL: none */
	char *config_file;   /* the file read, NULL when none exists */
	bool ciphers_set;    /* Ciphers in the config: libssh applies it, we don't */
};

/* Resolves t through its ssh config file. The caller releases *out. */
int ssh_target_resolve(struct ssh_resolved *out, const struct ssh_target *t);
void ssh_resolved_release(struct ssh_resolved *r);

struct ssh_conn;

/*
 * Connects, verifies the host key against known_hosts, authenticates with
 * public keys only (the agent first, then the identity files; a key that
 * needs a passphrase is skipped, never prompted for). On success *out is
 * the caller's, to ssh_conn_free(). On failure the message names the host
 * and says what failed: for an unknown key its SHA256 fingerprint and the
 * known_hosts line to add, for authentication the keys that were tried.
 */
int ssh_conn_open(struct ssh_conn **out, const struct ssh_target *t);
void ssh_conn_free(struct ssh_conn *c);
/* Sessions opened successfully by this process so far (jump hosts too). */
unsigned ssh_conn_count(void);

/*
 * Called with each chunk of remote output as it arrives (is_stderr tells
 * which stream), before it is appended to the result's buffers. Returning
 * non-zero stops the command (the channel is closed) and the exec fails
 * with that code.
 */
typedef int (*ssh_output_fn)(void *data, bool is_stderr, const char *chunk, size_t len);

struct ssh_exec_opts {
	const void *stdin_data; /* borrowed; sent then EOF */
	size_t stdin_len;
	int stdin_fd;		 /* or -1; read to its EOF, then EOF (not closed) */
	ssh_output_fn on_output; /* optional */
	void *data;		 /* for on_output */
	uint64_t *stdin_sent;	 /* optional: bytes sent so far, updated live */
	/* optional: called with the bytes of input sent, at most 5 times a second */
	void (*on_progress)(void *data, uint64_t stdin_sent);
	/*
	 * Once the exit status has arrived, wait at most this many ms for the
	 * output's EOF (0: 1000). A command that leaves a background child
	 * holding its stdout open must not hold the channel open with it.
	 */
	int linger_ms;
	/* wall-clock limit of the whole command in seconds (0: none): CONSTEL_ETIMEOUT */
	int timeout_s;
	/* stdout past the result's maximum fails the command ("answer too long") */
	bool overflow_fails;
	/* optional: once it reads true the command is abandoned (CONSTEL_EINTERRUPT) */
	const atomic_bool *cancel;
};

#define SSH_EXEC_OPTS_INIT                                                                         \
	{                                                                                          \
		.stdin_fd = -1                                                                     \
	}

struct ssh_exec_result {
	int exit_status;   /* -1 when the command died of a signal or none came */
	char *exit_signal; /* "TERM", "KILL"...; NULL unless killed by a signal */
	struct buf out;	   /* stdout, at most max_out bytes (truncated says) */
	struct buf err;	   /* stderr, at most max_err bytes */
};

void ssh_exec_result_init(struct ssh_exec_result *r, size_t max_out, size_t max_err);
void ssh_exec_result_release(struct ssh_exec_result *r);

/*
 * Runs `cmd` (a shell command line, as sshd gives it to the user's shell)
 * in a new channel of c and waits for it. Returns 0 when the command ran,
 * whatever its exit status: look at res->exit_status. Fails on transport
 * errors and timeouts. res must have been initialised; it is reset first.
 */
int ssh_conn_exec(struct ssh_conn *c, const char *cmd, const void *stdin_data, size_t stdin_len,
	struct ssh_exec_result *res);
int ssh_conn_exec_opts(struct ssh_conn *c, const char *cmd, const struct ssh_exec_opts *o,
	struct ssh_exec_result *res);

/*
 * Opens a direct-tcpip channel to localhost:port through the host's sshd.
 * 0 when the port accepted, CONSTEL_ENOTFOUND when it was refused,
 * CONSTEL_ETIMEOUT when no answer came within timeout_ms.
 */
int ssh_conn_probe(struct ssh_conn *c, int port, int timeout_ms);

struct ssh_copy_stats {
	size_t paths_total;	  /* paths asked about */
	size_t paths_missing;	  /* paths the host lacked, hence sent */
	size_t paths_substituted; /* paths it lacked and fetched from its own substituters */
	uint64_t bytes_sent;  /* bytes of the NAR stream sent */
	double seconds;
	unsigned round_trips; /* channels opened */
};

/* Progress of a copy: called a few times a second at most, and at the end. */
typedef void (*ssh_copy_progress_fn)(void *data, const struct ssh_copy_stats *s);

/*
 * Makes the host hold `paths`, a closure in dependency order (as
 * `nix-store -qR` gives it). One round trip asks which paths the host lacks
 * (`nix-store --check-validity --print-invalid` on the host); only those
 * are then streamed, in the given order, as NARs read from the local store
 * (transport/nar.c) into the host's `nix-store --serve --write` (Nix's serve
 * protocol, cmdAddToStoreNar) on a channel of the same session, never held
 * in memory as a whole. An unchanged host costs one round trip and no bytes.
 * With `substitute`, a host that lacks paths is first asked to fetch them
 * from its own substituters (`nix-store --realise --keep-going`, as
 * `nix-copy-closure --use-substitutes`), two more round trips; only what it
 * could not get is sent.
 * stats (optional) is filled as the copy goes; `progress` is called once
 * the missing paths are known, then as bytes go.
 */
int ssh_copy_closure(struct ssh_conn *c, const char *const *paths, size_t n, bool substitute,
	struct ssh_copy_stats *stats, ssh_copy_progress_fn progress, void *data);

#endif
