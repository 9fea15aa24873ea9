// sources: src/webhook_parse.c
/*
 * fuzz_webhook_standard.c
 *	  libFuzzer target of wh_parse_standard (the Standard Webhooks
 *	  webhook-signature parser) and wh_standard_secret (its secrets).
 *
 * Invariants: no out-of-bounds access (ASan); an accepted header keeps at
 * most WH_MAX_SIGS signatures, no more than its "v1," entries; a decoded
 * secret is never longer than 3/4 of its base64 text.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "webhook_parse.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *h = (const char *) data;
	WhSignatures s;
	uint8_t    *key = malloc(size + 1);
	size_t		keylen = 0;

	if (wh_parse_standard(h, size, &s))
	{
		if (s.nsigs < 0 || s.nsigs > WH_MAX_SIGS || s.nsigs > fuzz_count(h, size, "v1,"))
			abort();
		if (s.has_timestamp || size > WH_MAX_HEADER_LEN)
			abort();
	}
	if (wh_standard_secret(h, size, key, size + 1, &keylen) &&
		keylen > (size + 3) / 4 * 3)
		abort();
	free(key);
	return 0;
}
