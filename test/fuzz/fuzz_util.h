/*
 * fuzz_util.h
 *	  Small helpers shared by the libFuzzer targets in this directory.
 */
#ifndef PAYMENTS_FUZZ_UTIL_H
#define PAYMENTS_FUZZ_UTIL_H

#include <stddef.h>
#include <string.h>

/* fuzz_count - how many places of h[0..len) hold the string needle. */
static inline int
fuzz_count(const char *h, size_t len, const char *needle)
{
	size_t		nlen = strlen(needle);
	int			n = 0;

	for (size_t i = 0; i + nlen <= len; i++)
	{
		if (memcmp(h + i, needle, nlen) == 0)
			n++;
	}
	return n;
}

#endif							/* PAYMENTS_FUZZ_UTIL_H */
