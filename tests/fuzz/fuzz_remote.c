/*
 * libFuzzer target for what constel reads from a remote host: the answer
 * to "which of these store paths do you lack" (transport) and the
 * key=value state lines of the host-side protocol (deploy/host.c).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "deploy/host.h"
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
	static const char *const keys[] = { "phase", "result", "gen", "prev", "reason", "path",
		"locked", "current" };

	transport__parse_missing(paths, 3, (const char *)data, size, missing);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		free(host_get(text, keys[i]));
		(void)host_get_long(text, keys[i], -1);
	}
	free(text);
	return 0;
}
