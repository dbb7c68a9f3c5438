/*
 * common/trace.h: what `-v` shows: every local and remote command constel
 * runs, with where it ran, how long it took and how it ended.
 *
 * main() sets the level once, before any thread starts; after that the
 * functions are safe from any thread. A trace line is written whole with
 * one write(2) to standard error, so lines of parallel hosts never mix
 * mid-line (the reason workers otherwise leave stderr to the printer).
 * Long or multi-line commands (host scripts) are shown on one line, cut.
 */
#ifndef CONSTEL_TRACE_H
#define CONSTEL_TRACE_H

#include <stdbool.h>

void trace_set_level(int level);
bool trace_enabled(void);

/* "[+12.345s] WHERE$ CMD  (0.123s, OUTCOME)"; `outcome` e.g. "exit 0". */
void trace_command(const char *where, const char *cmd, double seconds, const char *outcome);

#endif
