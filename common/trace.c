#include "common/trace.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"

/* Long enough for a nix command line; a host script shows its first part. */
#define TRACE_CMD_MAX 240

static int level;
static double t0;

void trace_set_level(int l)
{
	level = l;
	t0 = now_seconds();
}

bool trace_enabled(void)
{
	return level > 0;
}

void trace_command(const char *where, const char *cmd, double seconds, const char *outcome)
{
	char line[TRACE_CMD_MAX + 256], shown[TRACE_CMD_MAX + 4];
	size_t n = 0;
	int len;

	if (!level)
		return;
	/* whitespace runs (newlines of a script) become one space; controls are dropped */
	for (const unsigned char *p = (const unsigned char *)cmd; *p && n < TRACE_CMD_MAX; p++) {
		if (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') {
			if (n && shown[n - 1] != ' ')
				shown[n++] = ' ';
		} else if (*p >= 0x20 && *p != 0x7f) {
			shown[n++] = (char)*p;
		}
	}
	if (cmd[0] && n == TRACE_CMD_MAX)
		memcpy(shown + n - 3, "...", 3);
	shown[n] = '\0';
	len = snprintf(line, sizeof(line), "[+%.3fs] %s$ %s  (%.3fs, %s)\n", now_seconds() - t0,
		where, shown, seconds, outcome);
	if (len > (int)sizeof(line) - 1)
		len = (int)sizeof(line) - 1;
	if (len > 0 && write(STDERR_FILENO, line, (size_t)len) < 0)
		return; /* nothing to do: stderr is where errors would go */
}
