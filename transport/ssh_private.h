/*
 * transport/ssh_private.h: the insides of struct ssh_conn, shared by the
 * files of transport/ that need the libssh session.
 */
#ifndef CONSTEL_TRANSPORT_SSH_PRIVATE_H
#define CONSTEL_TRANSPORT_SSH_PRIVATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <libssh/libssh.h>

#include "transport/transport.h"

/* A ProxyJump hop: a channel on a session to the jump host, pumped to fd. */
struct ssh_jump {
	struct ssh_conn *via; /* the session to the jump host */
	ssh_channel ch;	      /* direct-tcpip to the target, on via */
	int fd;		      /* our end, handed to libssh as the target's socket */
	int pump_fd;	      /* the pump thread's end */
	pthread_t thread;
	bool running;
	bool fd_owned; /* libssh took fd (ssh_connect ran): it closes it */
	_Atomic bool stop;
};

struct ssh_conn {
	ssh_session s;
	struct ssh_resolved r;
	char *label; /* for messages: "name" or "name (address:port)" */
	struct ssh_jump *jump;
};

int transport__jump_open(struct ssh_conn *c, const struct ssh_target *t);
void transport__jump_close(struct ssh_conn *c);

#endif
