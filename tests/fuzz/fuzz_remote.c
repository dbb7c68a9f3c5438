/*
 * libFuzzer target for what constel reads from a remote host: the answer
 * to "which of these store paths do you lack" and the serve protocol's
 * reply (transport), the key=value answers of the host scripts and their
 * output part, store paths (deploy/host.c), and the host's deployment
 * records as `status` reads them (deploy/status.c), and the health gate's
 * verdicts on two query answers (deploy/health.c: the input split in two).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "deploy/health.h"
#include "deploy/host.h"
#include "deploy/status.h"
#include "transport/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const paths[] = {
		"/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a",
		"/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-b",
		"/nix/store/cccccccccccccccccccccccccccccccc-nixos-system",
	};
	bool missing[3];
	char *text = xstrndup((const char *)data, size);
	static const char *const keys[] = {"phase", "result", "gen", "prev", "reason", "path",
		"locked", "current", "run", "milestone", "holder_pid", "holder_since",
		"interrupted", "interrupted_running", "out", "error"};
	struct status_row row = {0};
	size_t refused = 0;
	const char *out;

	transport__parse_missing(paths, 3, (const char *)data, size, missing);
	(void)transport__parse_serve_reply((const char *)data, size, size / 8, &refused);
	(void)transport__parse_serve_reply((const char *)data, size, 1, &refused);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char *v = host_get(text, keys[i]);

		if (v)
			(void)host_is_store_path(v);
		free(text_sanitize(v));
		free(v);
		(void)host_get_long(text, keys[i], -1);
	}
	out = host_answer_output(text);
	if (out)
		free(text_sanitize(out));
	{
		char *before = xstrndup(text, strlen(text) / 2), *why = NULL, *failed = NULL;

		(void)health_units_verdict(before, text + strlen(before), &why);
		free(why);
		(void)health_units_verdict(NULL, text, &why);
		free(why);
		(void)health_is_degraded(text, &failed);
		free(failed);
		free(before);
	}
	row.current = xstrdup("/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a");
	status__read_history(&row, text);
	free(row.current);
	free(row.revision);
	free(row.recorded);
	free(text);
	return 0;
}
