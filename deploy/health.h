/*
 * deploy/health.h: what a host's health is, read from its answers.
 *
 * The health gate (deploy/health.c, run by deploy/steps.c after every
 * activation, reboot and restore of a host) checks, each retried until it
 * passes within health_timeout, in this order:
 *   - every declared service port accepts a connection (direct-tcpip);
 *   - units: no unit failed after the switch that was not failed before
 *     (`systemctl --failed` in the query before the run and now), and the
 *     system is not `degraded` unless it was so before;
 *   - HTTP: each service with `health: { path, status }` answers GET PATH
 *     on localhost:PORT with that status, asked from the host itself
 *     (deploy/sh/health.sh);
 *   - commands: each `check:` on the host, each `local_check:` here; exit
 *     0 passes.
 * A failed gate names the check and its last output.
 *
 * The functions here are pure: they read query answers (deploy/sh/query.sh:
 * `system_state=`, `failed_units=UNIT UNIT ...`), so they are unit-tested
 * without a host.
 */
#ifndef CONSTEL_HEALTH_H
#define CONSTEL_HEALTH_H

#include <stdbool.h>

/*
 * The units of `after` (a space-separated list) that `before` does not
 * list, space-separated and made safe to print; NULL when there is none.
 * Caller frees.
 */
char *health_new_failures(const char *before, const char *after);

/*
 * The units' verdict between two query answers of one host: 0 healthy; 1
 * with *why (caller frees) saying what is wrong: units failed since
 * `before`, the system degraded (or still starting) when it was not
 * before. A host whose answers have no `system_state` (no systemctl) is
 * healthy. `before` may be NULL (nothing known: nothing was failed).
 */
int health_units_verdict(const char *before, const char *after, char **why);

/*
 * Whether a query answer says the system is degraded; *failed (caller
 * frees, may be NULL) gets its failed units, made safe to print.
 */
bool health_is_degraded(const char *query, char **failed);

#endif
