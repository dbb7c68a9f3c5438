/*
 * transport/jump.c: ProxyJump without an `ssh -J` child.
 *
 * libssh 0.10 turns ProxyJump into a ProxyCommand running `ssh`, and cannot
 * run a session over a channel. So: a session to the jump host, a
 * direct-tcpip channel on it to the target, and a socketpair whose one end
 * libssh uses as the target session's socket while a thread pumps bytes
 * between the other end and the channel. The thread is the only user of
 * the jump session, as libssh wants.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/internal.h"
#include "transport/ssh_private.h"

#define PUMP_CHUNK     (256 * 1024)
#define MAX_JUMP_DEPTH 8

static _Thread_local int jump_depth;

static void *pump(void *arg)
{
	struct ssh_jump *j = arg;
	char *in = xmalloc(PUMP_CHUNK), *out = xmalloc(PUMP_CHUNK);
	size_t out_len = 0, out_off = 0;
	bool in_eof = false;
	ssh_event ev = ssh_event_new();

	ssh_event_add_session(ev, j->via->s);

	while (!atomic_load(&j->stop)) {
		bool progress = false;
		struct pollfd p;
		uint32_t win;
		ssize_t n;

		win = ssh_channel_window_size(j->ch);
		if (!in_eof && win > 0) {
			n = read(j->pump_fd, in, win < PUMP_CHUNK ? win : PUMP_CHUNK);
			if (n > 0) {
				if (ssh_channel_write(j->ch, in, (uint32_t)n) != n)
					break;
				progress = true;
			} else if (n == 0) {
				in_eof = true;
				ssh_channel_send_eof(j->ch);
			} else if (errno != EAGAIN && errno != EINTR) {
				break;
			}
		}
		if (!out_len) {
			int r = ssh_channel_read_nonblocking(j->ch, out, PUMP_CHUNK, 0);

			if (r > 0) {
				out_len = (size_t)r;
				out_off = 0;
				progress = true;
			} else if (ssh_channel_is_eof(j->ch) || ssh_channel_is_closed(j->ch) ||
				   (r < 0 && r != SSH_EOF)) {
				shutdown(j->pump_fd, SHUT_WR);
				break;
			}
		}
		if (out_len) {
			n = send(j->pump_fd, out + out_off, out_len, MSG_NOSIGNAL); /* no SIGPIPE */
			if (n > 0) {
				out_off += (size_t)n;
				out_len -= (size_t)n;
				progress = true;
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				break;
			}
		}
		if (progress)
			continue;
		/* libssh's poll context for its socket (see ssh.c), ours for the pair */
		p.fd = j->pump_fd;
		p.events = (short)((!in_eof && win > 0 ? POLLIN : 0) | (out_len ? POLLOUT : 0));
		p.revents = 0;
		if (p.events && poll(&p, 1, 0) > 0)
			continue;
		ssh_event_dopoll(ev, 20);
	}
	ssh_event_remove_session(ev, j->via->s);
	ssh_event_free(ev);
	shutdown(j->pump_fd, SHUT_RDWR);
	free(in);
	free(out);
	return NULL;
}

int transport__jump_open(struct ssh_conn *c, const struct ssh_target *t)
{
	struct ssh_target jt = {0};
	struct ssh_jump *j = xcalloc(1, sizeof(*j));
	char *user = NULL, *host = NULL;
	int sv[2] = {-1, -1}, port = 0, ret;

	j->fd = j->pump_fd = -1;
	c->jump = j;
	if (jump_depth >= MAX_JUMP_DEPTH)
		return error_set("'%s': ProxyJump nested more than %d deep (a loop?)", c->label,
			MAX_JUMP_DEPTH);
	ret = transport__parse_jump(c->r.proxy_jump, &user, &host, &port);
	if (ret < 0)
		goto out;
	jt.name = host;
	jt.user = user;
	jt.port = port;
	jt.ssh_config = t->ssh_config;
	jt.connect_timeout = c->r.connect_timeout;
	jt.op_timeout = c->r.op_timeout;
	jump_depth++;
	ret = ssh_conn_open(&j->via, &jt);
	jump_depth--;
	if (ret < 0) {
		/* keep the jump host's message, say what it was for */
		ret = error_prefix(ret, "'%s': through ProxyJump '%s'", c->label, c->r.proxy_jump);
		goto out;
	}
	j->ch = ssh_channel_new(j->via->s);
	if (!j->ch || ssh_channel_open_forward(j->ch, c->r.hostname, c->r.port, "127.0.0.1", 0) !=
			      SSH_OK) {
		ret = error_set("'%s': jump host '%s' cannot reach %s:%d: %s", c->label,
			c->r.proxy_jump, c->r.hostname, c->r.port, ssh_get_error(j->via->s));
		goto out;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		ret = error_set("'%s': socketpair: %s", c->label, strerror(errno));
		goto out;
	}
	j->fd = sv[0];
	j->pump_fd = sv[1];
	fcntl(j->pump_fd, F_SETFL, fcntl(j->pump_fd, F_GETFL) | O_NONBLOCK);
	ssh_set_blocking(j->via->s, 1);
	if (pthread_create(&j->thread, NULL, pump, j) != 0) {
		ret = error_set("'%s': cannot start the ProxyJump thread", c->label);
		goto out;
	}
	j->running = true;
out:
	free(user);
	free(host);
	return ret;
}

void transport__jump_close(struct ssh_conn *c)
{
	struct ssh_jump *j = c->jump;

	if (!j)
		return;
	atomic_store(&j->stop, true);
	if (j->running)
		pthread_join(j->thread, NULL);
	if (j->ch) {
		ssh_channel_close(j->ch);
		ssh_channel_free(j->ch);
	}
	/* once ssh_connect() ran, libssh owns j->fd and has closed it */
	if (j->fd >= 0 && !j->fd_owned)
		close(j->fd);
	if (j->pump_fd >= 0)
		close(j->pump_fd);
	ssh_conn_free(j->via);
	free(j);
	c->jump = NULL;
}
