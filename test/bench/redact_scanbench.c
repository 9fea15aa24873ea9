/*
 * redact_scanbench.c
 *	  Throughput of the card-data scanner alone, outside the server.
 *
 * Built by test/bench/redact.sh with "cc -O2" against src/redact_scan.c.
 * Fills a buffer (256 MB by default, first argument in MB) with log text
 * without any digit, then with digit-heavy log lines (timestamps, ids,
 * amounts, IP addresses, phone numbers, 1% of lines with a card number),
 * scrubs each with rs_redact into a second buffer, best of 3 runs, and
 * prints "nodigits <MB/s>" and "digits <MB/s>" with the PANs found.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "redact_scan.h"

/* fill - repeat the lines over buf; every hundredth line gets a card. */
static void
fill(char *buf, size_t len, const char *const *lines, int nlines, const char *card)
{
	size_t		o = 0;

	for (int k = 0; o < len; k++)
	{
		const char *l = lines[k % nlines];
		size_t		n = strlen(l);

		if (card && k % 100 == 99)
			l = card, n = strlen(card);
		if (n > len - o)
			n = len - o;
		memcpy(buf + o, l, n);
		o += n;
	}
}

/* now - seconds on a monotonic clock. */
static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* best_mbps - best of 3 scrubs of buf, in MB/s; sets the PANs found. */
static double
best_mbps(const char *buf, size_t len, char *out, size_t *npans)
{
	RsOptions	opt = {RS_MASK_LAST4, false, true};
	double		best = 0;

	for (int r = 0; r < 3; r++)
	{
		double		t0 = now(),
					mbps;

		rs_redact(buf, len, &opt, out, npans);
		mbps = len / 1e6 / (now() - t0);
		if (mbps > best)
			best = mbps;
	}
	return best;
}

int
main(int argc, char **argv)
{
	static const char *const words[] = {
		"INFO request handled path=/v1/charges method=POST status=ok user=alice@example.com ",
		"WARN retrying upstream call after timeout; customer=cus_Mqhxaz region=eu-west ",
		"DEBUG cache miss for key session:abcdef; falling back to the primary database\n",
	};
	static const char *const numbers[] = {
		"2026-11-22 00:12:01.123 UTC [12345] order=100045678 amount=19.99 qty=3 ",
		"ip=192.168.100.200 port=5432 phone=+1 415-555-2671 ts=1700000000 id=98765 ",
		"ref 2024-01-15 txn 12345678901234567890123 items 4 7 12 cents 1999 ok\n",
	};
	size_t		mb = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
	size_t		len = mb << 20;
	char	   *buf = malloc(len),
			   *out = malloc(RS_OUT_MAX(len));
	size_t		npans;
	double		mbps;

	if (buf == NULL || out == NULL)
		return 1;
	fill(buf, len, words, 3, NULL);
	mbps = best_mbps(buf, len, out, &npans);
	printf("nodigits %.0f %zu\n", mbps, npans);
	fill(buf, len, numbers, 3, "card 4111 1111 1111 1111 declined\n");
	mbps = best_mbps(buf, len, out, &npans);
	printf("digits %.0f %zu\n", mbps, npans);
	return 0;
}
