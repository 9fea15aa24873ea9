// sources: src/webhook_parse.c
/*
 * fuzz_webhook_github.c
 *	  libFuzzer target of wh_parse_github, the X-Hub-Signature-256 parser.
 *
 * Invariants: no out-of-bounds access (ASan); an accepted header is exactly
 * "sha256=" and 64 hex digits, and its one signature encodes back to them.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "webhook_parse.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *h = (const char *) data;
	static const char digits[] = "0123456789abcdef";
	WhSignatures s;

	if (!wh_parse_github(h, size, &s))
		return 0;
	if (s.nsigs != 1 || size != 7 + 2 * WH_MAC_LEN || memcmp(h, "sha256=", 7) != 0)
		abort();
	for (int i = 0; i < WH_MAC_LEN; i++)
	{
		if (tolower((unsigned char) h[7 + 2 * i]) != digits[s.sigs[0][i] >> 4] ||
			tolower((unsigned char) h[8 + 2 * i]) != digits[s.sigs[0][i] & 15])
			abort();
	}
	return 0;
}
