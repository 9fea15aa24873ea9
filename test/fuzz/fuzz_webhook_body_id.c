// sources: src/webhook_parse.c
/*
 * fuzz_webhook_body_id.c
 *	  libFuzzer target of wh_json_top_string, which takes the event id out
 *	  of a Stripe or Slack body.
 *
 * Invariants: no out-of-bounds access (ASan) and no deep recursion however
 * the body nests; a found value lies inside the input, right after a
 * quote, is 1..WH_MAX_ID_LEN bytes with no backslash or quote in it.
 */
#include <stdlib.h>
#include <string.h>

#include "webhook_parse.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *j = (const char *) data;
	const char *v = NULL;
	size_t		len = 0;

	if (!wh_json_top_string(j, size, "id", &v, &len))
		return 0;
	if (v <= j || v + len >= j + size || len == 0 || len > WH_MAX_ID_LEN)
		abort();
	if (v[-1] != '"' || v[len] != '"' || memchr(v, '\\', len) || memchr(v, '"', len))
		abort();
	return 0;
}
