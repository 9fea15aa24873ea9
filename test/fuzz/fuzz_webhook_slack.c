// sources: src/webhook_parse.c
/*
 * fuzz_webhook_slack.c
 *	  libFuzzer target of wh_parse_slack (X-Slack-Signature) and
 *	  wh_parse_timestamp (X-Slack-Request-Timestamp and the other schemes'
 *	  timestamps).
 *
 * Invariants: no out-of-bounds access (ASan); an accepted signature is
 * "v0=" and 64 hex digits that its decoding encodes back to; an accepted
 * timestamp is all digits, within range, and equals its decimal value.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "webhook_parse.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check_timestamp - wh_parse_timestamp against a plain recomputation. */
static void
check_timestamp(const char *h, size_t size)
{
	int64_t		ts;
	long double v = 0;

	if (!wh_parse_timestamp(h, size, &ts))
		return;
	for (size_t i = 0; i < size; i++)
	{
		if (!isdigit((unsigned char) h[i]))
			abort();
		v = v * 10 + (h[i] - '0');
	}
	if (ts < 0 || ts > WH_MAX_UNIX_TIME || v != (long double) ts)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *h = (const char *) data;
	static const char digits[] = "0123456789abcdef";
	WhSignatures s;

	check_timestamp(h, size);
	if (!wh_parse_slack(h, size, &s))
		return 0;
	if (s.nsigs != 1 || size != 3 + 2 * WH_MAC_LEN || memcmp(h, "v0=", 3) != 0)
		abort();
	for (int i = 0; i < WH_MAC_LEN; i++)
	{
		if (tolower((unsigned char) h[3 + 2 * i]) != digits[s.sigs[0][i] >> 4] ||
			tolower((unsigned char) h[4 + 2 * i]) != digits[s.sigs[0][i] & 15])
			abort();
	}
	return 0;
}
