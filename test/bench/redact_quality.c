/*
 * redact_quality.c
 *	  Recall and false positives of the card-data scanner, measured.
 *
 * Built by test/bench/redact.sh with "cc -O2" against src/redact_scan.c
 * and run with a fixed seed, so that every run measures the same corpus:
 *	- recall: cards from test/fuzz/redact_gen.h (every brand and length,
 *	  every separator style, hostile contexts): the share rs_contains_pan
 *	  finds, and the share that rs_redact masks down to the last four;
 *	- false positives: realistic text that holds no card (order ids, epoch
 *	  milliseconds, pairs of phone numbers, parcel tracking numbers, log
 *	  lines of timestamps and amounts): the share rs_contains_pan flags.
 * Prints one line per measure: "<name> <percent>".  The first argument is
 * the number of samples of each (default 100,000).
 */
#include <stdlib.h>

#include "../fuzz/redact_gen.h"

#define Q_TEXT 256

/* q_digits - append n random digits (the first from 1-9 if nonzero). */
static void
q_digits(RgRand *r, char *buf, int n, bool nonzero)
{
	size_t		o = strlen(buf);

	for (int i = 0; i < n; i++)
		buf[o++] = '0' + (i == 0 && nonzero ? 1 + rg_int(r, 9) : rg_int(r, 10));
	buf[o] = '\0';
}

/* q_order - "order #" and a number of 8 to 16 digits. */
static void
q_order(RgRand *r, char *buf)
{
	strcpy(buf, rg_int(r, 2) ? "order #" : "order_id=");
	q_digits(r, buf, 8 + rg_int(r, 9), true);
}

/* q_epoch - epoch milliseconds between 2017 and 2030. */
static void
q_epoch(RgRand *r, char *buf)
{
	snprintf(buf, Q_TEXT, "ts=%llu event=charge.updated",
			 1500000000000ULL + (unsigned long long) (rg_next(r) % 400000000000ULL));
}

/* q_phones - two North American numbers in a row. */
static void
q_phones(RgRand *r, char *buf)
{
	char		p[2][16];

	for (int k = 0; k < 2; k++)
	{
		p[k][0] = '\0';
		q_digits(r, p[k], 3, true);
		strcat(p[k], "-");
		q_digits(r, p[k], 3, true);
		strcat(p[k], "-");
		q_digits(r, p[k], 4, false);
	}
	snprintf(buf, Q_TEXT, "call %s %s today", p[0], p[1]);
}

/*
 * q_tracking - a parcel tracking number: UPS 1Z, FedEx 12 or 15 digits,
 * USPS 22 digits (bare, or in groups of four as printed).
 */
static void
q_tracking(RgRand *r, char *buf)
{
	static const char alnum[] = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789";
	char		t[40] = "";

	switch (rg_int(r, 5))
	{
		case 0:
			strcpy(t, "1Z");
			for (int i = 0; i < 6; i++)
				t[2 + i] = alnum[rg_int(r, (int) sizeof(alnum) - 1)];
			t[8] = '\0';
			q_digits(r, t, 10, false);
			break;
		case 1:
			q_digits(r, t, 12, true);
			break;
		case 2:
			q_digits(r, t, 15, true);
			break;
		case 3:
			strcpy(t, "9400");
			q_digits(r, t, 18, false);
			break;
		default:
			strcpy(t, "9400");
			for (int g = 0; g < 5; g++)
			{
				strcat(t, " ");
				q_digits(r, t, g < 4 ? 4 : 2, false);
			}
	}
	snprintf(buf, Q_TEXT, "tracking %s shipped", t);
}

/* q_logline - a log line of timestamps, ids, amounts and durations. */
static void
q_logline(RgRand *r, char *buf)
{
	snprintf(buf, Q_TEXT,
			 "2026-11-%02d %02d:%02d:%02d.%03d UTC [%d] INFO: POST /v1/charges status=200 "
			 "duration_ms=%d.%03d amount=%d.%02d rows=%d ip=10.%d.%d.%d",
			 1 + rg_int(r, 28), rg_int(r, 24), rg_int(r, 60), rg_int(r, 60), rg_int(r, 1000),
			 1000 + rg_int(r, 60000), rg_int(r, 900), rg_int(r, 1000), rg_int(r, 100000),
			 rg_int(r, 100), rg_int(r, 1000), rg_int(r, 256), rg_int(r, 256), rg_int(r, 256));
}

/* q_false_positives - the share of n texts of gen that are flagged. */
static double
q_false_positives(RgRand *r, void (*gen) (RgRand *, char *), int n)
{
	RsOptions	opt = {RS_MASK_LAST4, false, true};
	char		buf[Q_TEXT];
	int			flagged = 0;

	for (int i = 0; i < n; i++)
	{
		gen(r, buf);
		flagged += rs_contains_pan(buf, strlen(buf), &opt);
	}
	return 100.0 * flagged / n;
}

int
main(int argc, char **argv)
{
	int			n = argc > 1 ? atoi(argv[1]) : 100000;
	RgRand		r = {UINT64_C(20261202)};
	RsOptions	opt = {RS_MASK_LAST4, true, true};
	int			found = 0,
				masked = 0;
	char		out[RS_OUT_MAX(RG_TEXT_MAX)];

	for (int i = 0; i < n; i++)
	{
		RgCard		c;
		size_t		np,
					olen;

		rg_card(&r, &c);
		found += rs_contains_pan(c.text, c.len, &opt);
		olen = rs_redact(c.text, c.len, &opt, out, &np);
		masked += rg_check_masked(&c, out, olen, RS_MASK_LAST4) == NULL;
	}
	printf("recall_found %.2f\n", 100.0 * found / n);
	printf("recall_masked %.2f\n", 100.0 * masked / n);
	printf("fp_order_ids %.2f\n", q_false_positives(&r, q_order, n));
	printf("fp_epoch_ms %.2f\n", q_false_positives(&r, q_epoch, n));
	printf("fp_phone_pairs %.2f\n", q_false_positives(&r, q_phones, n));
	printf("fp_tracking %.2f\n", q_false_positives(&r, q_tracking, n));
	printf("fp_log_lines %.2f\n", q_false_positives(&r, q_logline, n));
	return 0;
}
