/*
 * libFuzzer target for the inventory loader: any bytes, valid or not, must
 * load or fail with messages, never crash, hang or leak. Run with `make fuzz`.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "inventory/inventory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__ubsan_default_options(void);

/* UBSan only prints by default: make undefined behaviour a crash the fuzzer keeps. */
const char *__ubsan_default_options(void)
{
	return "halt_on_error=1:print_stacktrace=1";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strvec errors = STRVEC_INIT;
	struct inventory *inv = NULL;
	int ret;

	ret = inventory_load_buffer(&inv, "fuzz.yaml", (const char *)data, size, &errors);
	/* the contract: success with no messages, or failure with at least one */
	assert(ret == 0 ? inv && errors.nr == 0 : !inv && errors.nr > 0);
	for (size_t i = 0; i < errors.nr; i++)
		assert(!strncmp(errors.v[i], "fuzz.yaml:", 10));
	if (inv) {
		for (size_t h = 0; h < inv->nhosts; h++) {
			const struct inv_host *host = &inv->hosts[h];

			assert(host->address && host->arch && host->attr && host->goal);
			assert(!host->flake != !host->file);
			for (size_t r = 0; r < host->nrels; r++)
				assert(host->rels[r].provider < inv->nhosts &&
					host->rels[r].provider != h);
			assert(inventory_host(inv, host->name) == host);
		}
	}
	inventory_free(inv);
	strvec_release(&errors);
	return 0;
}
