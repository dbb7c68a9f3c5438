/*
 * deploy/host_sh.h: the host-side scripts (deploy/sh/NAME.sh), embedded at
 * build time by deploy/sh/embed. Each is a POSIX sh script run on a host
 * through host_script() (deploy/host.h); their header comments are the
 * reference for their arguments and answers.
 */
#ifndef CONSTEL_HOST_SH_H
#define CONSTEL_HOST_SH_H

extern const char host_sh_start[];	 /* take the lock, start the watchdog */
extern const char host_sh_watchdog[];	 /* activate, confirm, restore */
extern const char host_sh_wait[];	 /* follow (or confirm) a run */
extern const char host_sh_query[];	 /* what runs now, lock, pending record */
extern const char host_sh_generations[]; /* the system profile's generations */
extern const char host_sh_record[];	 /* deployment records */
extern const char host_sh_build[];	 /* build: target */
extern const char host_sh_dispatch[];	 /* constel-host: the commands that need root */
extern const char host_sh_health[];	 /* an HTTP check, from the host */
extern const char host_sh_reboot[];	 /* reboot, answering the boot id first */

#endif
