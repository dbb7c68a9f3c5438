/*
 * transport/ssh.c: libssh sessions: connect, host keys, auth, exec, probe.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h> /* ssh_send_keepalive(), which clients may use too */

#include "common/trace.h"
#include "transport/internal.h"
#include "transport/ssh_private.h"
#include "transport/transport.h"

/* Large writes keep libssh's per-call overhead small on bulk transfers. */
#define CHUNK	(256 * 1024)
#define POLL_MS 100

static const char fast_ciphers[] = "aes128-gcm@openssh.com,aes256-gcm@openssh.com,"
				   "chacha20-poly1305@openssh.com,aes128-ctr,aes256-ctr";

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static atomic_uint conn_count;

static void do_init(void)
{
	/*
	 * libssh >= 0.8 uses pthreads by itself: ssh_threads_set_callbacks()
	 * is not needed. ssh_init() also runs from a library constructor;
	 * calling it once more here keeps a static link correct.
	 */
	ssh_init();
}

void transport__init(void)
{
	pthread_once(&init_once, do_init);
}

unsigned ssh_conn_count(void)
{
	return atomic_load(&conn_count);
}

/* "name" or "name (address:port)" when they differ, for messages. */
static char *make_label(const struct ssh_resolved *r)
{
	if (!strcmp(r->name, r->hostname) && r->port == 22)
		return xasprintf("%s", r->name);
	return xasprintf("%s (%s:%d)", r->name, r->hostname, r->port);
}

static int set_opt(struct ssh_conn *c, enum ssh_options_e o, const void *v, const char *what)
{
	if (ssh_options_set(c->s, o, v) < 0)
		return error_set("'%s': cannot set %s: %s", c->label, what, ssh_get_error(c->s));
	return 0;
}

static void tcp_keepalive(int fd, int interval)
{
	int on = 1, cnt = 3;

	if (fd < 0 || interval <= 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &interval, sizeof(interval));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

static char *key_fingerprint(ssh_key key)
{
	unsigned char *hash = NULL;
	size_t hlen = 0;
	char *fp, *ret;

	if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) < 0)
		return xstrdup("(unknown fingerprint)");
	fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
	ssh_clean_pubkey_hash(&hash);
	ret = xstrdup(fp ? fp : "(unknown fingerprint)");
	ssh_string_free_char(fp);
	return ret;
}

/*
 * constel's host key policy, whatever libssh would do with the config: a
 * key that differs from the recorded one is always refused; an unknown key
 * is refused under `StrictHostKeyChecking yes` (and `ask`: constel never
 * prompts), and recorded then accepted under `accept-new` and `no`. So
 * `no` means only "trust on first use", never "accept a changed key".
 */
static int verify_host_key(struct ssh_conn *c)
{
	ssh_key key = NULL;
	char *fp = NULL, *entry = NULL, *line = NULL;
	enum ssh_known_hosts_e state;
	int ret = 0;

	if (ssh_get_server_publickey(c->s, &key) < 0) {
		ret = error_set("'%s': no host key: %s", c->label, ssh_get_error(c->s));
		goto out;
	}
	fp = key_fingerprint(key);
	state = ssh_session_is_known_server(c->s);
	switch (state) {
	case SSH_KNOWN_HOSTS_OK:
		break;
	case SSH_KNOWN_HOSTS_CHANGED:
	case SSH_KNOWN_HOSTS_OTHER:
		ret = error_set(
			"'%s': HOST KEY MISMATCH: the host now presents %s %s, which "
			"differs from the key recorded in '%s' (possible man-in-the-middle); "
			"refusing to connect; if the host was reinstalled, remove its old "
			"entry from that file",
			c->label, ssh_key_type_to_char(ssh_key_type(key)), fp, c->r.known_hosts);
		break;
	case SSH_KNOWN_HOSTS_UNKNOWN:
	case SSH_KNOWN_HOSTS_NOT_FOUND:
		if (c->r.hostkey_policy != SSH_HOSTKEY_STRICT) {
			if (ssh_session_update_known_hosts(c->s) < 0)
				ret = error_set("'%s': cannot add host key to '%s': %s", c->label,
					c->r.known_hosts, ssh_get_error(c->s));
			break;
		}
		if (ssh_session_export_known_hosts_entry(c->s, &entry) < 0 || !entry)
			line = xstrdup("(cannot format the entry)");
		else
			line = xstrndup(entry, strcspn(entry, "\n"));
		ret = error_set("'%s': unknown host key %s %s; if it is right, add this line to "
				"'%s': %s",
			c->label, ssh_key_type_to_char(ssh_key_type(key)), fp, c->r.known_hosts,
			line);
		break;
	case SSH_KNOWN_HOSTS_ERROR:
	default:
		ret = error_set("'%s': cannot check host key against '%s': %s", c->label,
			c->r.known_hosts, ssh_get_error(c->s));
	}
out:
	ssh_key_free(key);
	free(fp);
	free(entry);
	free(line);
	return ret;
}

/* Refuses every passphrase request: parallel workers never prompt. */
static int no_passphrase(
	const char *prompt, char *buf, size_t len, int echo, int verify, void *userdata)
{
	(void)prompt;
	(void)echo;
	(void)verify;
	(void)userdata;
	if (len)
		buf[0] = '\0';
	return -1;
}

static int try_identity(struct ssh_conn *c, const char *file, struct buf *tried)
{
	ssh_key pub = NULL, priv = NULL;
	char *pubfile = xasprintf("%s.pub", file);
	int rc, ret = 1; /* 1: not accepted, go on */

	if (access(file, R_OK) < 0)
		goto out;
	if (ssh_pki_import_pubkey_file(pubfile, &pub) == SSH_OK) {
		rc = ssh_userauth_try_publickey(c->s, NULL, pub);
		if (rc == SSH_AUTH_ERROR) {
			ret = error_set(
				"'%s': authentication failed: %s", c->label, ssh_get_error(c->s));
			goto out;
		}
		if (rc != SSH_AUTH_SUCCESS) {
			buf_printf(tried, "%s%s (refused)", tried->len ? ", " : "", file);
			goto out;
		}
	}
	if (ssh_pki_import_privkey_file(file, NULL, no_passphrase, NULL, &priv) != SSH_OK) {
		buf_printf(tried, "%s%s (unreadable or needs a passphrase)", tried->len ? ", " : "",
			file);
		goto out;
	}
	rc = ssh_userauth_publickey(c->s, NULL, priv);
	if (rc == SSH_AUTH_SUCCESS) {
		ret = 0;
	} else if (rc == SSH_AUTH_ERROR) {
		ret = error_set("'%s': authentication failed: %s", c->label, ssh_get_error(c->s));
	} else {
		buf_printf(tried, "%s%s (refused)", tried->len ? ", " : "", file);
	}
out:
	ssh_key_free(pub);
	ssh_key_free(priv);
	free(pubfile);
	return ret;
}

static int authenticate(struct ssh_conn *c)
{
	struct buf tried = BUF_INIT(800);
	int rc, ret = 0;

	rc = ssh_userauth_none(c->s, NULL);
	if (rc == SSH_AUTH_SUCCESS)
		goto out;
	if (rc == SSH_AUTH_ERROR) {
		ret = error_set("'%s': authentication failed: %s", c->label, ssh_get_error(c->s));
		goto out;
	}
	if (c->r.identity_agent && !c->r.identities_only) {
		if (ssh_options_set(c->s, SSH_OPTIONS_IDENTITY_AGENT, c->r.identity_agent) == 0) {
			rc = ssh_userauth_agent(c->s, NULL);
			if (rc == SSH_AUTH_SUCCESS)
				goto out;
			buf_printf(&tried, "agent keys at %s", c->r.identity_agent);
		}
	}
	for (size_t i = 0; i < c->r.identities.nr; i++) {
		ret = try_identity(c, c->r.identities.v[i], &tried);
		if (ret <= 0)
			goto out;
	}
	ret = error_set("'%s': permission denied for user '%s' (public key only); tried: %s",
		c->label, c->r.user, tried.len ? tried.data : "no key (none found)");
out:
	buf_release(&tried);
	return ret;
}

static int connect_session(struct ssh_conn *c)
{
	long timeout = c->r.connect_timeout;
	int verbosity = SSH_LOG_NOLOG, nodelay = 1, strict = 1, ret, fd;
	bool no = false;

	/* CONSTEL_SSH_DEBUG=1..4: libssh's own log on stderr, for debugging only */
	if (getenv("CONSTEL_SSH_DEBUG")) {
		long lv;

		if (parse_long(getenv("CONSTEL_SSH_DEBUG"), 0, 4, &lv) == 0)
			verbosity = (int)lv;
	}
	c->s = ssh_new();
	if (!c->s)
		return error_set("'%s': cannot create an ssh session", c->label);
	/* we parse the config ourselves below; libssh must not do it again */
	if ((ret = set_opt(c, SSH_OPTIONS_PROCESS_CONFIG, &no, "ProcessConfig")) < 0 ||
		(ret = set_opt(c, SSH_OPTIONS_LOG_VERBOSITY, &verbosity, "LogLevel")) < 0 ||
		(ret = set_opt(c, SSH_OPTIONS_HOST, c->r.name, "Host")) < 0)
		return ret;
	/* for what libssh applies itself: Ciphers, KexAlgorithms, HostKeyAlgorithms... */
	if (c->r.config_file && ssh_options_parse_config(c->s, c->r.config_file) < 0)
		return error_set("'%s': cannot parse '%s': %s", c->label, c->r.config_file,
			ssh_get_error(c->s));
	/*
	 * ...and what we resolved wins over what it set. libssh reads
	 * `StrictHostKeyChecking no` from the file too, and then reports a key
	 * that is not in the global known_hosts as known, even when the user's
	 * file records another one: keep its check strict, so that it tells
	 * what it found and verify_host_key() applies constel's own policy.
	 */
	if ((ret = set_opt(c, SSH_OPTIONS_STRICTHOSTKEYCHECK, &strict, "StrictHostKeyChecking")) <
			0 ||
		(ret = set_opt(c, SSH_OPTIONS_HOST, c->r.hostname, "HostName")) < 0 ||
		(ret = set_opt(c, SSH_OPTIONS_PORT, &c->r.port, "Port")) < 0 ||
		(ret = set_opt(c, SSH_OPTIONS_USER, c->r.user, "User")) < 0 ||
		(ret = set_opt(c, SSH_OPTIONS_KNOWNHOSTS, c->r.known_hosts, "UserKnownHostsFile")) <
			0 ||
		(ret = set_opt(c, SSH_OPTIONS_TIMEOUT, &timeout, "ConnectTimeout")) < 0 ||
		(ret = set_opt(c, SSH_OPTIONS_PROXYCOMMAND,
			 c->r.proxy_command && !c->jump ? c->r.proxy_command : "none",
			 "ProxyCommand")) < 0)
		return ret;
	/*
	 * AES-GCM first: with AES-NI it costs both ends far less CPU than
	 * libssh's chacha20-poly1305, which bulk copies feel on small hosts.
	 */
	if (!c->r.ciphers_set &&
		((ret = set_opt(c, SSH_OPTIONS_CIPHERS_C_S, fast_ciphers, "Ciphers")) < 0 ||
			(ret = set_opt(c, SSH_OPTIONS_CIPHERS_S_C, fast_ciphers, "Ciphers")) < 0))
		return ret;
	/*
	 * Small request/answer exchanges (channel open, exec, exit status)
	 * otherwise wait out Nagle against delayed ACKs: 40 ms per channel.
	 */
	if ((ret = set_opt(c, SSH_OPTIONS_NODELAY, &nodelay, "TCP_NODELAY")) < 0)
		return ret;
	if (c->jump && (ret = set_opt(c, SSH_OPTIONS_FD, &c->jump->fd, "ProxyJump")) < 0)
		return ret;
	ssh_set_blocking(c->s, 1);
	if (c->jump)
		c->jump->fd_owned = true;
	if (ssh_connect(c->s) != SSH_OK)
		return error_set("'%s': cannot connect: %s", c->label, ssh_get_error(c->s));
	fd = ssh_get_fd(c->s);
	tcp_keepalive(fd, c->r.alive_interval);
	if ((ret = verify_host_key(c)) < 0)
		return ret;
	if ((ret = authenticate(c)) < 0)
		return ret;
	timeout = c->r.op_timeout;
	return set_opt(c, SSH_OPTIONS_TIMEOUT, &timeout, "operation timeout");
}

int ssh_conn_open(struct ssh_conn **out, const struct ssh_target *t)
{
	struct ssh_conn *c = xcalloc(1, sizeof(*c));
	double start = now_seconds();
	int ret;

	*out = NULL;
	transport__init();
	ret = ssh_target_resolve(&c->r, t);
	if (ret < 0) {
		free(c);
		return ret;
	}
	c->label = make_label(&c->r);
	if (c->r.proxy_jump) {
		ret = transport__jump_open(c, t);
		if (ret < 0)
			goto out;
	}
	ret = connect_session(c);
	/* a timeout is what the clock says, not a word in libssh's message */
	if (ret < 0 && ret != CONSTEL_ETIMEOUT && now_seconds() - start >= c->r.connect_timeout)
		ret = error_prefix(CONSTEL_ETIMEOUT, "'%s': no answer within %ds (ConnectTimeout)",
			c->label, c->r.connect_timeout);
out:
	if (ret < 0) {
		ssh_conn_free(c);
		return ret;
	}
	atomic_fetch_add(&conn_count, 1);
	*out = c;
	return 0;
}

void ssh_conn_free(struct ssh_conn *c)
{
	if (!c)
		return;
	if (c->s) {
		ssh_disconnect(c->s);
		ssh_free(c->s);
	}
	transport__jump_close(c);
	ssh_resolved_release(&c->r);
	free(c->label);
	free(c);
}

void ssh_exec_result_init(struct ssh_exec_result *r, size_t max_out, size_t max_err)
{
	r->exit_status = -1;
	r->exit_signal = NULL;
	buf_init(&r->out, max_out);
	buf_init(&r->err, max_err);
}

void ssh_exec_result_release(struct ssh_exec_result *r)
{
	free(r->exit_signal);
	r->exit_signal = NULL;
	r->exit_status = -1;
	buf_release(&r->out);
	buf_release(&r->err);
}

struct exec_state {
	bool exited;
	int status;
	char *signal;
};

static void on_exit_status(ssh_session s, ssh_channel ch, int status, void *userdata)
{
	struct exec_state *st = userdata;

	(void)s;
	(void)ch;
	st->exited = true;
	st->status = status;
}

static void on_exit_signal(ssh_session s, ssh_channel ch, const char *signal, int core,
	const char *errmsg, const char *lang, void *userdata)
{
	struct exec_state *st = userdata;

	(void)s;
	(void)ch;
	(void)core;
	(void)errmsg;
	(void)lang;
	st->exited = true;
	free(st->signal);
	st->signal = xstrndup(signal ? signal : "?", 32);
}

static int on_fd_ready(socket_t fd, int revents, void *userdata)
{
	(void)fd;
	(void)revents;
	*(bool *)userdata = true;
	return 0;
}

static bool fd_readable(int fd)
{
	struct pollfd p = {fd, POLLIN, 0};

	return poll(&p, 1, 0) > 0;
}

/* Sends a keepalive without waiting for its answer; the answer is life. */
static void send_keepalive(ssh_session s)
{
	ssh_set_blocking(s, 0);
	ssh_send_keepalive(s);
	ssh_set_blocking(s, 1);
}

int ssh_conn_exec(struct ssh_conn *c, const char *cmd, const void *stdin_data, size_t stdin_len,
	struct ssh_exec_result *res)
{
	struct ssh_exec_opts o = SSH_EXEC_OPTS_INIT;

	o.stdin_data = stdin_data;
	o.stdin_len = stdin_len;
	return ssh_conn_exec_opts(c, cmd, &o, res);
}

int ssh_conn_exec_opts(struct ssh_conn *c, const char *cmd, const struct ssh_exec_opts *o,
	struct ssh_exec_result *res)
{
	struct exec_state st = {false, -1, NULL};
	struct ssh_channel_callbacks_struct cb = {0};
	ssh_channel ch = NULL;
	char *io = xmalloc(CHUNK), *pend = NULL;
	const char *mem = o->stdin_data;
	size_t mem_left = o->stdin_data ? o->stdin_len : 0, pend_len = 0;
	bool fd_eof = o->stdin_fd < 0, eof_sent = false, stop_input = false;
	double last_life, last_ping, exited_at = 0, last_tick = 0;
	uint64_t sent = 0;
	int linger = o->linger_ms > 0 ? o->linger_ms : 1000;
	ssh_event ev = ssh_event_new();
	bool fd_watched = false, fd_ready = false;
	double started = now_seconds();
	int ret = 0;

	res->exit_status = -1;
	free(res->exit_signal);
	res->exit_signal = NULL;
	buf_reset(&res->out);
	buf_reset(&res->err);
	if (o->stdin_fd >= 0)
		pend = xmalloc(CHUNK);

	ch = ssh_channel_new(c->s);
	if (!ch) {
		ret = error_set("'%s': cannot create a channel: %s", c->label, ssh_get_error(c->s));
		goto out;
	}
	cb.userdata = &st;
	cb.channel_exit_status_function = on_exit_status;
	cb.channel_exit_signal_function = on_exit_signal;
	ssh_callbacks_init(&cb);
	ssh_set_channel_callbacks(ch, &cb);
	if (ssh_channel_open_session(ch) != SSH_OK) {
		ret = error_set("'%s': cannot open a channel: %s", c->label, ssh_get_error(c->s));
		goto out;
	}
	if (ssh_channel_request_exec(ch, cmd) != SSH_OK) {
		ret = error_set("'%s': cannot start command: %s", c->label, ssh_get_error(c->s));
		goto out;
	}
	if (!ev || ssh_event_add_session(ev, c->s) != SSH_OK) {
		ret = error_set("'%s': cannot set up polling", c->label);
		goto out;
	}
	last_life = last_ping = now_seconds();
	for (;;) {
		bool progress = false;
		bool want_fd;
		int n;
		double now;

		/* input: from memory or from the fd, as far as the window allows */
		if (!stop_input && (mem_left || pend_len)) {
			uint32_t win = ssh_channel_window_size(ch);
			const char *p = pend_len ? pend : mem;
			size_t left = pend_len ? pend_len : mem_left;
			size_t want = left < win ? left : win;

			if (want > CHUNK)
				want = CHUNK;
			if (want) {
				n = ssh_channel_write(ch, p, (uint32_t)want);
				if (n < 0 && ssh_is_connected(c->s) &&
					(st.exited || ssh_channel_is_eof(ch) ||
						ssh_channel_is_closed(ch))) {
					/* the command finished without reading it all: fine */
					stop_input = true;
					continue;
				}
				if (n < 0) {
					ret = error_set("'%s': sending input failed: %s", c->label,
						ssh_get_error(c->s));
					goto out;
				}
				if (pend_len) {
					memmove(pend, pend + n, pend_len - (size_t)n);
					pend_len -= (size_t)n;
				} else {
					mem += n;
					mem_left -= (size_t)n;
				}
				sent += (uint64_t)n;
				if (o->stdin_sent)
					*o->stdin_sent = sent;
				if (o->on_progress && now_seconds() - last_tick >= 0.2) {
					o->on_progress(o->data, sent);
					last_tick = now_seconds();
				}
				if (n > 0)
					progress = true;
			}
		}
		if (!stop_input && !pend_len && !fd_eof && fd_readable(o->stdin_fd)) {
			n = (int)read(o->stdin_fd, pend, CHUNK);
			if (n > 0) {
				pend_len = (size_t)n;
				progress = true;
			} else if (n == 0) {
				fd_eof = true;
			} else if (errno != EAGAIN && errno != EINTR) {
				ret = error_set(
					"'%s': reading input: %s", c->label, strerror(errno));
				goto out;
			}
		}
		if (!eof_sent && !mem_left && !pend_len && fd_eof && !stop_input) {
			if (ssh_channel_send_eof(ch) != SSH_OK) {
				ret = error_set("'%s': sending EOF failed: %s", c->label,
					ssh_get_error(c->s));
				goto out;
			}
			eof_sent = true;
		}

		/* output */
		for (int is_err = 0; is_err < 2; is_err++) {
			while ((n = ssh_channel_read_nonblocking(ch, io, CHUNK, is_err)) > 0) {
				progress = true;
				if (o->on_output) {
					int r = o->on_output(o->data, is_err, io, (size_t)n);

					if (r) {
						ret = r < 0 ? r : CONSTEL_EINTERRUPT;
						goto out;
					}
				}
				buf_add(is_err ? &res->err : &res->out, io, (size_t)n);
				if (o->timeout_s > 0 && now_seconds() - started >= o->timeout_s)
					break; /* a host that never stops writing: the check below
						*/
				if (!is_err && o->overflow_fails && res->out.truncated) {
					ret = error_set("'%s': answer too long (over %zu bytes)",
						c->label, res->out.max);
					goto out;
				}
			}
			if (n < 0 && n != SSH_EOF && !ssh_channel_is_eof(ch)) {
				ret = error_set("'%s': reading output failed: %s", c->label,
					ssh_get_error(c->s));
				goto out;
			}
		}
		now = now_seconds();
		if (progress)
			last_life = now;
		if (st.exited && !exited_at)
			exited_at = now;
		if (st.exited || ssh_channel_is_eof(ch) || ssh_channel_is_closed(ch))
			stop_input = true; /* it will never read the rest */
		if (ssh_channel_is_eof(ch) && (st.exited || ssh_channel_is_closed(ch)))
			break;
		if (ssh_channel_is_closed(ch))
			break;
		if (exited_at && (now - exited_at) * 1000 >= linger)
			break; /* a detached child keeps stdout open: don't wait for it */
		if (!ssh_is_connected(c->s)) {
			ret = error_set("'%s': connection lost: %s", c->label, ssh_get_error(c->s));
			goto out;
		}
		if (o->timeout_s > 0 && now - started >= o->timeout_s) {
			ret = error_setc(CONSTEL_ETIMEOUT,
				"'%s': the command did not finish within %ds", c->label,
				o->timeout_s);
			goto out;
		}
		if (o->cancel && atomic_load(o->cancel)) {
			ret = error_setc(
				CONSTEL_EINTERRUPT, "'%s': cancelled (interrupted)", c->label);
			goto out;
		}
		if (now - last_life >= c->r.op_timeout) {
			ret = error_setc(CONSTEL_ETIMEOUT,
				"'%s': no answer for %ds while running "
				"a command",
				c->label, c->r.op_timeout);
			goto out;
		}
		if (progress)
			continue;
		if (now - last_life >= c->r.alive_interval &&
			now - last_ping >= c->r.alive_interval) {
			send_keepalive(c->s);
			last_ping = now;
		}
		/*
		 * Wait through libssh's own poll context, not poll(2) on its fd:
		 * reading the socket ourselves confuses its packet handling.
		 */
		want_fd = !stop_input && !pend_len && !fd_eof;
		if (want_fd != fd_watched) {
			if (want_fd)
				ssh_event_add_fd(ev, o->stdin_fd, POLLIN, on_fd_ready, &fd_ready);
			else
				ssh_event_remove_fd(ev, o->stdin_fd);
			fd_watched = want_fd;
		}
		fd_ready = false;
		n = ssh_event_dopoll(ev, POLL_MS);
		if (n == SSH_OK && !fd_ready)
			last_life = now_seconds();
	}
	res->exit_status = st.signal ? -1 : st.status;
	res->exit_signal = st.signal;
	st.signal = NULL;
out:
	if (trace_enabled()) {
		char outcome[96];

		if (ret < 0)
			snprintf(outcome, sizeof(outcome), "failed: %.80s", error_last());
		else if (res->exit_signal)
			snprintf(outcome, sizeof(outcome), "signal %.40s", res->exit_signal);
		else
			snprintf(outcome, sizeof(outcome), "exit %d", res->exit_status);
		trace_command(c->label, cmd, now_seconds() - started, outcome);
	}
	if (fd_watched)
		ssh_event_remove_fd(ev, o->stdin_fd);
	if (ev) {
		ssh_event_remove_session(ev, c->s);
		ssh_event_free(ev);
	}
	if (ch) {
		if (ssh_channel_is_open(ch))
			ssh_channel_close(ch);
		ssh_channel_free(ch);
	}
	free(st.signal);
	free(io);
	free(pend);
	return ret;
}

int ssh_conn_probe(struct ssh_conn *c, int port, int timeout_ms)
{
	ssh_channel ch = ssh_channel_new(c->s);
	long sec = timeout_ms / 1000, usec = (long)(timeout_ms % 1000) * 1000;
	long op = c->r.op_timeout, zero = 0;
	int rc, ret = 0;

	if (!ch)
		return error_set(
			"'%s': cannot create a channel: %s", c->label, ssh_get_error(c->s));
	ssh_options_set(c->s, SSH_OPTIONS_TIMEOUT, &sec);
	ssh_options_set(c->s, SSH_OPTIONS_TIMEOUT_USEC, &usec);
	rc = ssh_channel_open_forward(ch, "localhost", port, "127.0.0.1", 0);
	ssh_options_set(c->s, SSH_OPTIONS_TIMEOUT, &op);
	ssh_options_set(c->s, SSH_OPTIONS_TIMEOUT_USEC, &zero);
	if (rc == SSH_OK) {
		ssh_channel_close(ch);
	} else if (rc == SSH_AGAIN) {
		ret = error_setc(CONSTEL_ETIMEOUT, "'%s': port %d: no answer within %d ms",
			c->label, port, timeout_ms);
	} else if (ssh_is_connected(c->s)) {
		ret = error_setc(CONSTEL_ENOTFOUND, "'%s': port %d refused: %s", c->label, port,
			ssh_get_error(c->s));
	} else {
		ret = error_set("'%s': connection lost while probing port %d: %s", c->label, port,
			ssh_get_error(c->s));
	}
	ssh_channel_free(ch);
	return ret;
}
