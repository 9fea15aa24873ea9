/*-------------------------------------------------------------------------
 *
 * webhook.c
 *	  Webhook signature verification, deduplicating inbox and purge.
 *
 * payments.webhook_verify checks a delivery's HMAC-SHA256 signature the way
 * its provider defines it (Stripe, Standard Webhooks, GitHub, Shopify,
 * Slack): the header parsers are pure C in webhook_parse.c, this file finds
 * the headers in the caller's jsonb, computes the HMAC of the raw body
 * bytes with OpenSSL once per secret, compares it with every candidate
 * signature in constant time, and only then looks at the timestamp.
 * Anything wrong with the delivery itself gives valid = false and a reason;
 * only a caller's mistake (unknown scheme, NULL arguments, a secret that
 * cannot be a secret of its scheme) raises an error.
 *
 * payments.webhook_receive does the same with an endpoint's stored secrets
 * and stores an accepted delivery in payments.webhook_inbox, deduplicated on
 * (endpoint, event id) by the unique index, in the caller's transaction.
 * Rejections are recorded with their reason and the body's SHA-256 only.
 *
 * No secret, signature or body ever goes into a message: the errors below
 * name at most the scheme, the endpoint and the position of a secret.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "digest.h"
#include "errors.h"
#include "payments.h"
#include "stats.h"
#include "stmt.h"
#include "webhook.h"
#include "webhook_parse.h"

/* Secrets are at most this long; longer ones are refused as misuse. */
#define WH_MAX_SECRET_LEN 4096

/* Seconds between the unix epoch and PostgreSQL's. */
#define WH_EPOCH_DIFF \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)

/* Longest part of a caller's string that goes into a message. */
#define WH_MESSAGE_MAX 64

int			payments_webhook_retention = 30 * SECS_PER_DAY;

/* Why a delivery was or was not valid; names are the SQL reasons. */
typedef enum WhReason
{
	WH_OK,
	WH_MISSING_HEADER,
	WH_MALFORMED_HEADER,
	WH_NO_MATCHING_SIGNATURE,
	WH_TIMESTAMP_TOO_OLD,
	WH_TIMESTAMP_IN_FUTURE,
	WH_NO_SECRET
} WhReason;

static const char *const WhReasonNames[] = {
	[WH_OK] = "ok",
	[WH_MISSING_HEADER] = "missing_header",
	[WH_MALFORMED_HEADER] = "malformed_header",
	[WH_NO_MATCHING_SIGNATURE] = "no_matching_signature",
	[WH_TIMESTAMP_TOO_OLD] = "timestamp_too_old",
	[WH_TIMESTAMP_IN_FUTURE] = "timestamp_in_future",
	[WH_NO_SECRET] = "no_secret",
};

/* The counter of payments.stats that counts each rejection reason. */
static const PaymentsCounter WhRejectCounters[] = {
	[WH_OK] = PM_STAT_WEBHOOK_ACCEPTED,
	[WH_MISSING_HEADER] = PM_STAT_WEBHOOK_REJECTED_MISSING_HEADER,
	[WH_MALFORMED_HEADER] = PM_STAT_WEBHOOK_REJECTED_MALFORMED_HEADER,
	[WH_NO_MATCHING_SIGNATURE] = PM_STAT_WEBHOOK_REJECTED_NO_MATCHING_SIGNATURE,
	[WH_TIMESTAMP_TOO_OLD] = PM_STAT_WEBHOOK_REJECTED_TIMESTAMP_TOO_OLD,
	[WH_TIMESTAMP_IN_FUTURE] = PM_STAT_WEBHOOK_REJECTED_TIMESTAMP_IN_FUTURE,
	[WH_NO_SECRET] = PM_STAT_WEBHOOK_REJECTED_NO_SECRET,
};

/* Which header of a scheme a lookup slot holds. */
typedef enum WhSlot
{
	WH_SLOT_SIG,				/* the signature */
	WH_SLOT_TS,					/* a separate timestamp header */
	WH_SLOT_ID,					/* the event or message id */
	WH_NSLOTS
} WhSlot;

/* How one signature scheme works. */
typedef struct WhScheme
{
	const char *name;
	const char *headers[WH_NSLOTS]; /* lower case; NULL when none */
	bool		(*parse) (const char *, size_t, WhSignatures *);
	bool		id_required;	/* the id header is part of what is signed */
	const char *body_id_key;	/* top-level body member giving the id */
	const char *prefix;			/* signed before "<timestamp>" */
	const char *separator;		/* signed between timestamp and body */
	bool		timestamped;
	bool		base64_secret;	/* Standard Webhooks' whsec_<base64> */
} WhScheme;

static const WhScheme WhSchemes[] = {
	{"stripe", {"stripe-signature", NULL, NULL},
	wh_parse_stripe, false, "id", NULL, ".", true, false},
	{"standard", {"webhook-signature", "webhook-timestamp", "webhook-id"},
	wh_parse_standard, true, NULL, NULL, ".", true, true},
	{"github", {"x-hub-signature-256", NULL, "x-github-delivery"},
	wh_parse_github, false, NULL, NULL, NULL, false, false},
	{"shopify", {"x-shopify-hmac-sha256", NULL, "x-shopify-webhook-id"},
	wh_parse_shopify, false, NULL, NULL, NULL, false, false},
	{"slack", {"x-slack-signature", "x-slack-request-timestamp", NULL},
	wh_parse_slack, false, "event_id", "v0:", ":", true, false},
};

/* A header's value as found in the caller's jsonb. */
typedef struct WhHeader
{
	bool		present;
	bool		bad;			/* repeated, or not a string */
	const char *val;
	size_t		len;
} WhHeader;

/* One secret, ready to key the HMAC. */
typedef struct WhKey
{
	const uint8_t *key;
	size_t		len;
} WhKey;

/* The outcome of one verification. */
typedef struct WhResult
{
	WhReason	reason;
	bool		authentic;		/* a signature matched */
	bool		has_time;
	int64		unix_time;		/* the signed timestamp, when has_time */
	const char *event_id;		/* not NUL-terminated; NULL when none */
	size_t		event_id_len;
} WhResult;

static void WhStandardKey(const char *secret, size_t *len, uint8_t *key,
						  int position);

/*
 * WhDefineGucs - payments.webhook_retention.
 */
static void
WhDefineGucs(void)
{
	DefineCustomIntVariable("payments.webhook_retention",
							"How long webhook inbox and rejection rows are kept.",
							"payments.webhook_purge never deletes younger rows.",
							&payments_webhook_retention,
							30 * SECS_PER_DAY, 1, INT_MAX,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);
}

const PaymentsModule PaymentsWebhookModule = {
	.name = "webhook",
	.define_gucs = WhDefineGucs,
};

/*
 * WhLookupScheme - the scheme of a name, or ERROR 22023: a scheme name
 * comes from the caller, never from a delivery.
 */
static const WhScheme *
WhLookupScheme(const char *name)
{
	for (size_t i = 0; i < lengthof(WhSchemes); i++)
	{
		if (strcmp(WhSchemes[i].name, name) == 0)
			return &WhSchemes[i];
	}
	ereport(ERROR,
			errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			errmsg("unknown webhook scheme \"%s\"", name),
			errhint("The schemes are stripe, standard, github, shopify and slack."));
	return NULL;				/* keep the compiler quiet */
}

/*
 * WhHeaderValue - record the value of a wanted header: a string, or an
 * array holding exactly one string (how some frameworks hand over headers);
 * anything else, or a second header of the same name, marks it bad.
 */
static void
WhHeaderValue(WhHeader *h, JsonbValue *v)
{
	if (h->present)
		h->bad = true;
	h->present = true;
	if (v->type == jbvBinary && JsonContainerIsArray(v->val.binary.data) &&
		JsonContainerSize(v->val.binary.data) == 1)
		v = getIthJsonbValueFromContainer(v->val.binary.data, 0);
	if (v == NULL || v->type != jbvString)
	{
		h->bad = true;
		return;
	}
	h->val = v->val.string.val;
	h->len = v->val.string.len;
}

/*
 * WhFindHeaders - the scheme's headers in a jsonb object of name/value,
 * names compared case-insensitively.  headers must be an object (22023).
 */
static void
WhFindHeaders(Jsonb *headers, const WhScheme *s, WhHeader *out)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			slot = -1;

	memset(out, 0, sizeof(WhHeader) * WH_NSLOTS);
	if (!JB_ROOT_IS_OBJECT(headers))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("webhook headers must be a JSON object"),
				errhint("Pass the request headers as {\"Header-Name\": \"value\", ...}."));
	it = JsonbIteratorInit(&headers->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			slot = -1;
			for (int i = 0; i < WH_NSLOTS; i++)
			{
				const char *want = s->headers[i];

				if (want != NULL && strlen(want) == (size_t) v.val.string.len &&
					pg_strncasecmp(want, v.val.string.val, v.val.string.len) == 0)
					slot = i;
			}
		}
		else if (tok == WJB_VALUE && slot >= 0)
			WhHeaderValue(&out[slot], &v);
	}
}

/* Wipes a buffer of secret copies when its memory context goes. */
typedef struct WhWipe
{
	MemoryContextCallback cb;
	void	   *buf;
	size_t		size;
} WhWipe;

/*
 * WhWipeCallback - memory context callback: wipe the buffer, whether the
 * call ended normally or with an error.
 */
static void
WhWipeCallback(void *arg)
{
	WhWipe	   *w = (WhWipe *) arg;

	OPENSSL_cleanse(w->buf, w->size);
}

/*
 * WhKeyBuffer - a palloc'd buffer for copies of secrets, wiped when the
 * current memory context is reset or deleted.
 */
static uint8_t *
WhKeyBuffer(size_t size)
{
	WhWipe	   *w = palloc(sizeof(WhWipe));

	w->buf = palloc(size);
	w->size = size;
	w->cb.func = WhWipeCallback;
	w->cb.arg = w;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &w->cb);
	return w->buf;
}

/*
 * WhKeys - the usable secrets of an array, copied into a buffer that is
 * wiped after use (WhForgetKeys) and in any case when the call's memory
 * goes: NULL and empty elements are skipped (an empty key authenticates
 * nothing); Standard Webhooks secrets are base64-decoded.  A secret too
 * long or not decodable is the caller's mistake: ERROR 22023 naming its
 * position only.
 */
static int
WhKeys(const WhScheme *s, ArrayType *secrets, WhKey **keysp)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			nkeys = 0;
	WhKey	   *keys;
	uint8_t    *buf;
	size_t		size = 1;

	deconstruct_array(secrets, TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		size_t		len = nulls[i] ? 0 : VARSIZE_ANY_EXHDR(DatumGetPointer(elems[i]));

		if (len > WH_MAX_SECRET_LEN)
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("webhook secret %d is longer than %d bytes", i + 1,
						   WH_MAX_SECRET_LEN));
		size += len + 1;
	}
	keys = palloc0(sizeof(WhKey) * Max(n, 1));
	buf = WhKeyBuffer(size);
	for (int i = 0; i < n; i++)
	{
		text	   *t;
		size_t		len;

		if (nulls[i])
			continue;
		t = DatumGetTextPP(elems[i]);
		len = VARSIZE_ANY_EXHDR(t);
		if (s->base64_secret)
			WhStandardKey(VARDATA_ANY(t), &len, buf, i + 1);
		else
			memcpy(buf, VARDATA_ANY(t), len);
		keys[nkeys].key = buf;
		keys[nkeys].len = len;
		buf += len;
		if (len > 0)
			nkeys++;
	}
	*keysp = keys;
	return nkeys;
}

/*
 * WhStandardKey - decode a Standard Webhooks secret into key (room for its
 * length plus one byte); *len is the secret's length in, the key's out.
 */
static void
WhStandardKey(const char *secret, size_t *len, uint8_t *key, int position)
{
	if (!wh_standard_secret(secret, *len, key, *len + 1, len))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("webhook secret %d is not a Standard Webhooks secret",
					   position),
				errdetail("A Standard Webhooks secret is base64, optionally prefixed by whsec_."));
}

/*
 * WhForgetKeys - wipe the copies of the secrets that WhKeys made, as soon
 * as they are no longer needed.
 */
static void
WhForgetKeys(WhKey *keys, int nkeys)
{
	for (int i = 0; i < nkeys; i++)
		OPENSSL_cleanse((void *) keys[i].key, keys[i].len);
}

/*
 * WhHmacCtx - the session's HMAC-SHA256 context, created once: fetching
 * the algorithms for every call would cost more than hashing 1 KB.
 */
static EVP_MAC_CTX *
WhHmacCtx(void)
{
	static EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM	params[2];
	EVP_MAC    *mac;

	if (ctx != NULL)
		return ctx;
	mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
	if (mac == NULL || (ctx = EVP_MAC_CTX_new(mac)) == NULL)
		elog(ERROR, "could not set up OpenSSL HMAC");
	EVP_MAC_free(mac);			/* the context keeps its own reference */
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
												 (char *) "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_CTX_set_params(ctx, params) != 1)
		elog(ERROR, "could not set up OpenSSL HMAC-SHA256");
	return ctx;
}

/*
 * WhHmac - HMAC-SHA256 of the concatenation of parts, under key.
 */
static void
WhHmac(const WhKey *key, const char *const *parts, const size_t *lens,
	   int nparts, uint8_t *mac)
{
	EVP_MAC_CTX *ctx = WhHmacCtx();
	size_t		maclen = 0;
	bool		ok;

	ok = EVP_MAC_init(ctx, key->key, key->len, NULL) == 1;
	for (int i = 0; ok && i < nparts; i++)
		ok = EVP_MAC_update(ctx, (const unsigned char *) parts[i], lens[i]) == 1;
	ok = ok && EVP_MAC_final(ctx, mac, &maclen, WH_MAC_LEN) == 1;
	if (!ok || maclen != WH_MAC_LEN)
		elog(ERROR, "OpenSSL HMAC-SHA256 failed");
}

/*
 * WhHmacForget - rekey the session's context with a constant key, so that
 * no state derived from a real secret stays in memory after a call.
 */
static void
WhHmacForget(void)
{
	static const uint8_t zero[WH_MAC_LEN] = {0};

	if (EVP_MAC_init(WhHmacCtx(), zero, sizeof(zero), NULL) != 1)
		elog(ERROR, "OpenSSL HMAC-SHA256 failed");
}

/*
 * WhMatches - whether any secret's HMAC of the signed content equals any
 * candidate signature.  Every pair is compared with CRYPTO_memcmp and the
 * results ORed, so the time taken does not depend on which one matched.
 */
static bool
WhMatches(const WhScheme *s, const WhKey *keys, int nkeys,
		  const WhSignatures *sigs, const WhHeader *hdr,
		  const char *body, size_t body_len)
{
	const char *parts[6];
	size_t		lens[6];
	int			n = 0;
	int			match = 0;
	uint8_t		mac[WH_MAC_LEN];

#define WH_PART(p, l) (parts[n] = (p), lens[n] = (l), n++)
	if (s->id_required)
		WH_PART(hdr[WH_SLOT_ID].val, hdr[WH_SLOT_ID].len), WH_PART(".", 1);
	if (s->prefix)
		WH_PART(s->prefix, strlen(s->prefix));
	if (s->timestamped)
		WH_PART(sigs->ts, sigs->ts_len), WH_PART(s->separator, 1);
	WH_PART(body, body_len);
#undef WH_PART

	for (int k = 0; k < nkeys; k++)
	{
		WhHmac(&keys[k], parts, lens, n, mac);
		for (int i = 0; i < sigs->nsigs; i++)
			match |= CRYPTO_memcmp(mac, sigs->sigs[i], WH_MAC_LEN) == 0;
	}
	OPENSSL_cleanse(mac, sizeof(mac));
	WhHmacForget();
	return match != 0;
}

/*
 * WhParseHeaders - the signature (and timestamp) headers into sigs, or the
 * reason they cannot be used.  For the schemes with a separate timestamp
 * header, its text goes into sigs->ts because it is part of what is signed.
 */
static WhReason
WhParseHeaders(const WhScheme *s, const WhHeader *hdr, WhSignatures *sigs)
{
	const WhHeader *ts = &hdr[WH_SLOT_TS];
	const WhHeader *id = &hdr[WH_SLOT_ID];

	if (!hdr[WH_SLOT_SIG].present || (s->headers[WH_SLOT_TS] && !ts->present) ||
		(s->id_required && !id->present))
		return WH_MISSING_HEADER;
	for (int i = 0; i < WH_NSLOTS; i++)
	{
		if (hdr[i].bad)
			return WH_MALFORMED_HEADER;
	}
	if (id->present && (id->len == 0 || id->len > WH_MAX_ID_LEN))
		return WH_MALFORMED_HEADER;
	if (!s->parse(hdr[WH_SLOT_SIG].val, hdr[WH_SLOT_SIG].len, sigs))
		return WH_MALFORMED_HEADER;
	if (s->headers[WH_SLOT_TS] != NULL)
	{
		if (!wh_parse_timestamp(ts->val, ts->len, &sigs->timestamp))
			return WH_MALFORMED_HEADER;
		sigs->has_timestamp = true;
		sigs->ts = ts->val;
		sigs->ts_len = ts->len;
	}
	return sigs->nsigs > 0 ? WH_OK : WH_NO_MATCHING_SIGNATURE;
}

/*
 * WhEventId - the event id of an authentic delivery: its id header, or a
 * top-level string member of a JSON body when that is valid text in the
 * database encoding; none otherwise.
 */
static void
WhEventId(const WhScheme *s, const WhHeader *hdr, const char *body,
		  size_t body_len, WhResult *res)
{
	const char *v;
	size_t		len;

	if (s->headers[WH_SLOT_ID] != NULL && hdr[WH_SLOT_ID].present)
	{
		res->event_id = hdr[WH_SLOT_ID].val;
		res->event_id_len = hdr[WH_SLOT_ID].len;
	}
	else if (s->body_id_key != NULL &&
			 wh_json_top_string(body, body_len, s->body_id_key, &v, &len) &&
			 pg_verify_mbstr(GetDatabaseEncoding(), v, (int) len, true))
	{
		res->event_id = v;
		res->event_id_len = len;
	}
}

/*
 * WhFreshness - timestamp_too_old or timestamp_in_future when the signed
 * time is further from at than the tolerance (whole seconds, boundaries
 * inclusive), else ok.
 */
static WhReason
WhFreshness(int64 signed_unix, int64 at_unix, int64 tolerance)
{
	if (at_unix - signed_unix > tolerance)
		return WH_TIMESTAMP_TOO_OLD;
	if (signed_unix - at_unix > tolerance)
		return WH_TIMESTAMP_IN_FUTURE;
	return WH_OK;
}

/*
 * WhVerify - the whole check of one delivery against some keys: secrets,
 * headers, signature, then (only for an authentic delivery) freshness and
 * the event id.
 */
static void
WhVerify(const WhScheme *s, const WhKey *keys, int nkeys, Jsonb *headers,
		 const char *body, size_t body_len, int64 tolerance, int64 at_unix,
		 WhResult *res)
{
	WhHeader	hdr[WH_NSLOTS];
	WhSignatures sigs;

	memset(res, 0, sizeof(*res));
	if (nkeys == 0)
	{
		res->reason = WH_NO_SECRET;
		return;
	}
	WhFindHeaders(headers, s, hdr);
	res->reason = WhParseHeaders(s, hdr, &sigs);
	if (res->reason != WH_OK)
		return;
	if (!WhMatches(s, keys, nkeys, &sigs, hdr, body, body_len))
	{
		res->reason = WH_NO_MATCHING_SIGNATURE;
		return;
	}
	res->authentic = true;
	res->has_time = sigs.has_timestamp;
	res->unix_time = sigs.timestamp;
	if (sigs.has_timestamp)
		res->reason = WhFreshness(sigs.timestamp, at_unix, tolerance);
	WhEventId(s, hdr, body, body_len, res);
}

/*
 * WhToleranceSeconds - an interval as whole seconds (a month counts 30
 * days, as in EXTRACT(epoch)); a negative one is ERROR 22023.
 */
static int64
WhToleranceSeconds(Interval *iv)
{
	/* floor, so that "1 day -1 microsecond" is less than a day */
	int64		secs = iv->time / USECS_PER_SEC -
		(iv->time % USECS_PER_SEC < 0 ? 1 : 0) +
		(int64) iv->day * SECS_PER_DAY +
		(int64) iv->month * DAYS_PER_MONTH * SECS_PER_DAY;

	/* components may differ in sign ('-1 day 25 hours'): the sum counts */
	if (secs < 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("webhook tolerance must not be negative"));
	return secs;
}

/*
 * WhUnixSeconds - a finite timestamptz as whole unix seconds (floor).
 */
static int64
WhUnixSeconds(TimestampTz at)
{
	int64		secs = at / USECS_PER_SEC;

	if (TIMESTAMP_NOT_FINITE(at))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("webhook verification time must be finite"));
	if (at % USECS_PER_SEC < 0)
		secs--;
	return secs + WH_EPOCH_DIFF;
}

/*
 * WhEventIdDatum - the event id of a result as text, and whether it is NULL.
 */
static Datum
WhEventIdDatum(const WhResult *res, bool *isnull)
{
	*isnull = res->event_id == NULL;
	if (res->event_id == NULL)
		return (Datum) 0;
	return PointerGetDatum(cstring_to_text_with_len(res->event_id,
													(int) res->event_id_len));
}

PG_FUNCTION_INFO_V1(payments_webhook_verify);

/*
 * payments_webhook_verify - payments.webhook_verify(scheme, secrets,
 * headers, body, tolerance, at): one row (valid, reason, signed_at,
 * event_id); signed_at and event_id only once the signature matched.
 */
Datum
payments_webhook_verify(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"scheme", NULL, "headers", "body",
	"tolerance", "at"};
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const WhScheme *s;
	WhKey	   *keys = NULL;
	int			nkeys = 0;
	bytea	   *body;
	WhResult	res;
	Datum		values[4];
	bool		nulls[4] = {false};

	payments_require_args(fcinfo, 6, names);
	s = WhLookupScheme(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	if (!PG_ARGISNULL(1))
		nkeys = WhKeys(s, PG_GETARG_ARRAYTYPE_P(1), &keys);
	body = PG_GETARG_BYTEA_PP(3);
	WhVerify(s, keys, nkeys, PG_GETARG_JSONB_P(2), VARDATA_ANY(body),
			 VARSIZE_ANY_EXHDR(body),
			 WhToleranceSeconds(PG_GETARG_INTERVAL_P(4)),
			 WhUnixSeconds(PG_GETARG_TIMESTAMPTZ(5)), &res);
	WhForgetKeys(keys, nkeys);

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	values[0] = BoolGetDatum(res.reason == WH_OK);
	values[1] = CStringGetTextDatum(WhReasonNames[res.reason]);
	nulls[2] = !res.has_time;
	values[2] = TimestampTzGetDatum((res.unix_time - WH_EPOCH_DIFF) * USECS_PER_SEC);
	values[3] = WhEventIdDatum(&res, &nulls[3]);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

/* One delivery handed to webhook_receive. */
typedef struct WhDelivery
{
	Datum		endpoint;		/* text */
	Jsonb	   *headers;
	bytea	   *body;
	TimestampTz at;
	uint8_t		body_sha256[WH_MAC_LEN];
} WhDelivery;

/* The statements of webhook_receive and webhook_purge. */
typedef enum WhStmtId
{
	WH_STMT_ENDPOINT,
	WH_STMT_SECRETS,
	WH_STMT_REJECT,
	WH_STMT_STORE,
	WH_STMT_EXISTING,
	WH_STMT_PURGE_INBOX,
	WH_STMT_PURGE_REJECTIONS,
	WH_STMT_SECRET_ADD,
	WH_STMT_SECRET_EXPIRE,
	WH_STMT_SECRET_REMOVE,
	WH_NSTMTS
} WhStmtId;

static PmStmt WhStmts[WH_NSTMTS] = {
	[WH_STMT_ENDPOINT] = {
		"SELECT scheme, tolerance FROM " PAYMENTS_SCHEMA ".webhook_endpoints"
		" WHERE name = $1",
		1, {TEXTOID}
	},
	[WH_STMT_SECRETS] = {
		"SELECT pg_catalog.array_agg(secret ORDER BY id)"
		" FROM " PAYMENTS_SCHEMA ".webhook_secrets"
		" WHERE endpoint = $1 AND (expires_at IS NULL OR expires_at > $2)",
		2, {TEXTOID, TIMESTAMPTZOID}
	},
	[WH_STMT_REJECT] = {
		"INSERT INTO " PAYMENTS_SCHEMA ".webhook_rejections"
		" (endpoint, reason, body_sha256, received_at) VALUES ($1, $2, $3, $4)",
		4, {TEXTOID, TEXTOID, BYTEAOID, TIMESTAMPTZOID}
	},
	/*
	 * signature headers ($6, found by WhSignatureKeys) are dropped: they are
	 * useless once verified.  VALUES, with no subquery, so that Citus routes
	 * it to the event's shard.
	 */
	[WH_STMT_STORE] = {
		"INSERT INTO " PAYMENTS_SCHEMA ".webhook_inbox"
		" (endpoint, event_id, headers, body, received_at)"
		" VALUES ($1, $2, $3 OPERATOR(pg_catalog.-) $6, $4, $5)"
		" ON CONFLICT (endpoint, event_id) DO NOTHING RETURNING id",
		6, {TEXTOID, TEXTOID, JSONBOID, BYTEAOID, TIMESTAMPTZOID, TEXTARRAYOID}
	},
	[WH_STMT_EXISTING] = {
		"SELECT id FROM " PAYMENTS_SCHEMA ".webhook_inbox"
		" WHERE endpoint = $1 AND event_id = $2",
		2, {TEXTOID, TEXTOID}
	},
	/* oldest first, at most $2 rows (NULL: all); the rows deleted */
	[WH_STMT_PURGE_INBOX] = {
		"WITH gone AS (DELETE FROM " PAYMENTS_SCHEMA ".webhook_inbox"
		" WHERE id IN (SELECT id FROM " PAYMENTS_SCHEMA ".webhook_inbox"
		" WHERE received_at < $1 ORDER BY received_at LIMIT $2)"
		" RETURNING 1) SELECT pg_catalog.count(*) FROM gone",
		2, {TIMESTAMPTZOID, INT8OID}
	},
	[WH_STMT_SECRET_ADD] = {
		"INSERT INTO " PAYMENTS_SCHEMA ".webhook_secrets (endpoint, secret, expires_at)"
		" VALUES ($1, $2, $3) RETURNING id",
		3, {TEXTOID, TEXTOID, TIMESTAMPTZOID}
	},
	/* the endpoint's secrets live at $2 expire then (not the one just added) */
	[WH_STMT_SECRET_EXPIRE] = {
		"UPDATE " PAYMENTS_SCHEMA ".webhook_secrets SET expires_at = $2"
		" WHERE endpoint = $1 AND id <> $3 AND (expires_at IS NULL OR expires_at > $2)",
		3, {TEXTOID, TIMESTAMPTZOID, INT8OID}
	},
	[WH_STMT_SECRET_REMOVE] = {
		"DELETE FROM " PAYMENTS_SCHEMA ".webhook_secrets WHERE endpoint = $1 AND id = $2",
		2, {TEXTOID, INT8OID}
	},
	[WH_STMT_PURGE_REJECTIONS] = {
		"WITH gone AS (DELETE FROM " PAYMENTS_SCHEMA ".webhook_rejections"
		" WHERE id IN (SELECT id FROM " PAYMENTS_SCHEMA ".webhook_rejections"
		" WHERE received_at < $1 ORDER BY received_at LIMIT $2)"
		" RETURNING 1) SELECT pg_catalog.count(*) FROM gone",
		2, {TIMESTAMPTZOID, INT8OID}
	},
};

/*
 * WhExec - run one of the statements; returns the rows processed.
 */
static uint64
WhExec(WhStmtId stmt, Datum *args)
{
	return pm_stmt_exec(&WhStmts[stmt], args, NULL);
}

/*
 * WhFirstDatum - column col of the first result row, and whether it is NULL.
 */
static Datum
WhFirstDatum(int col, bool *isnull)
{
	return pm_stmt_value(0, col, isnull);
}

/*
 * WhClipped - a caller's string as it may go into a message: at most
 * WH_MESSAGE_MAX bytes (whole characters), then "...".
 */
static const char *
WhClipped(const char *s)
{
	int			len = strlen(s);
	int			keep = pg_mbcliplen(s, len, WH_MESSAGE_MAX);

	return keep < len ? psprintf("%.*s...", keep, s) : s;
}

/*
 * WhLoadEndpoint - the scheme and tolerance of an endpoint; an unknown
 * endpoint is ERROR PM010 (an application answers 404).
 */
static const WhScheme *
WhLoadEndpoint(WhDelivery *d, int64 *tolerance)
{
	Datum		args[1] = {d->endpoint};
	bool		isnull;
	char	   *scheme;

	if (WhExec(WH_STMT_ENDPOINT, args) == 0)
		ereport(ERROR,
				payments_errcode(PM_WEBHOOK_UNKNOWN_ENDPOINT),
				errmsg("unknown webhook endpoint \"%s\"",
					   WhClipped(TextDatumGetCString(d->endpoint))),
				errhint("Add it to payments.webhook_endpoints."));
	scheme = TextDatumGetCString(WhFirstDatum(1, &isnull));
	*tolerance = WhToleranceSeconds(DatumGetIntervalP(WhFirstDatum(2, &isnull)));
	return WhLookupScheme(scheme);
}

/*
 * WhLoadKeys - the endpoint's secrets that are live at the delivery's time
 * (expires_at later than it), as keys.
 */
static int
WhLoadKeys(const WhScheme *s, WhDelivery *d, WhKey **keys)
{
	Datum		args[2] = {d->endpoint, TimestampTzGetDatum(d->at)};
	bool		isnull;
	Datum		secrets;
	int			nkeys;
	struct varlena *raw;
	ArrayType  *arr;

	WhExec(WH_STMT_SECRETS, args);
	secrets = WhFirstDatum(1, &isnull);
	if (isnull)
		return 0;
	raw = (struct varlena *) DatumGetPointer(secrets);
	arr = DatumGetArrayTypeP(secrets);
	nkeys = WhKeys(s, arr, keys);
	/* the result's own copies of the secrets: wipe them too */
	OPENSSL_cleanse(VARDATA_ANY(raw), VARSIZE_ANY_EXHDR(raw));
	if ((Pointer) arr != (Pointer) raw)
		OPENSSL_cleanse(VARDATA(arr), VARSIZE(arr) - VARHDRSZ);
	return nkeys;
}

/*
 * WhIsSignatureHeader - whether a header name (any case) carries a
 * signature of one of the schemes, or GitHub's old SHA-1 one.
 */
static bool
WhIsSignatureHeader(const char *name, int len)
{
	static const char *const extra = "x-hub-signature";

	for (size_t i = 0; i < lengthof(WhSchemes); i++)
	{
		const char *sig = WhSchemes[i].headers[WH_SLOT_SIG];

		if (strlen(sig) == (size_t) len && pg_strncasecmp(sig, name, len) == 0)
			return true;
	}
	return strlen(extra) == (size_t) len && pg_strncasecmp(extra, name, len) == 0;
}

/*
 * WhSignatureKeys - the signature headers' names as they are spelt in the
 * headers object, as a text[] for jsonb's "-" operator.
 */
static Datum
WhSignatureKeys(Jsonb *headers)
{
	ArrayBuildState *keys = initArrayResult(TEXTOID, CurrentMemoryContext, false);
	JsonbIterator *it = JsonbIteratorInit(&headers->root);
	JsonbValue	v;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY && WhIsSignatureHeader(v.val.string.val, v.val.string.len))
			accumArrayResult(keys, PointerGetDatum(cstring_to_text_with_len(v.val.string.val,
																			 v.val.string.len)),
							 false, TEXTOID, CurrentMemoryContext);
	}
	return makeArrayResult(keys, CurrentMemoryContext);
}

/*
 * WhStore - insert an accepted delivery unless (endpoint, event id) is
 * already there; a concurrent insert of the same event waits for the other
 * transaction.  Returns whether it was new; *inbox_id is the row's id, or
 * NULL (0) when a duplicate's row is not visible to this snapshot.
 */
static bool
WhStore(WhDelivery *d, Datum event_id, int64 *inbox_id)
{
	Datum		args[6] = {d->endpoint, event_id, JsonbPGetDatum(d->headers),
		PointerGetDatum(d->body), TimestampTzGetDatum(d->at),
	WhSignatureKeys(d->headers)};
	bool		isnull;
	bool		inserted = WhExec(WH_STMT_STORE, args) > 0;

	if (!inserted && WhExec(WH_STMT_EXISTING, args) == 0)
	{
		*inbox_id = 0;
		return false;
	}
	*inbox_id = DatumGetInt64(WhFirstDatum(1, &isnull));
	return inserted;
}

/*
 * WhReject - record a rejection: endpoint, reason and the body's SHA-256,
 * never the body or its headers.
 */
static void
WhReject(WhDelivery *d, WhReason reason)
{
	Datum		args[4] = {d->endpoint, CStringGetTextDatum(WhReasonNames[reason]),
		PointerGetDatum(cstring_to_text_with_len((char *) d->body_sha256,
												 WH_MAC_LEN)),
	TimestampTzGetDatum(d->at)};

	WhExec(WH_STMT_REJECT, args);
}

/*
 * WhDedupId - the event id to deduplicate on: the delivery's own, or
 * "sha256:<hex of the body's SHA-256>" when it has none.
 */
static Datum
WhDedupId(WhDelivery *d, const WhResult *res)
{
	char		hex[7 + 2 * WH_MAC_LEN + 1] = "sha256:";
	bool		isnull;
	Datum		id = WhEventIdDatum(res, &isnull);

	if (!isnull)
		return id;
	for (int i = 0; i < WH_MAC_LEN; i++)
		snprintf(hex + 7 + 2 * i, 3, "%02x", d->body_sha256[i]);
	return CStringGetTextDatum(hex);
}

/*
 * WhReceive - verify a delivery with its endpoint's stored secrets, then
 * store it or record its rejection; fills status, inbox id and event id.
 * Runs inside an SPI connection; the results are copied out by the caller.
 */
static WhReason
WhReceive(WhDelivery *d, const char **status, int64 *inbox_id, Datum *event_id)
{
	int64		tolerance;
	const WhScheme *s = WhLoadEndpoint(d, &tolerance);
	WhKey	   *keys;
	int			nkeys = WhLoadKeys(s, d, &keys);
	WhResult	res;
	bool		isnull;

	WhVerify(s, keys, nkeys, d->headers, VARDATA_ANY(d->body),
			 VARSIZE_ANY_EXHDR(d->body), tolerance, WhUnixSeconds(d->at), &res);
	WhForgetKeys(keys, nkeys);
	*inbox_id = 0;
	*event_id = WhEventIdDatum(&res, &isnull);
	if (res.reason != WH_OK)
	{
		WhReject(d, res.reason);
		payments_count(WhRejectCounters[res.reason], 1);
		*status = "rejected";
		return res.reason;
	}
	*event_id = WhDedupId(d, &res);
	if (WhStore(d, *event_id, inbox_id))
	{
		payments_count(PM_STAT_WEBHOOK_ACCEPTED, 1);
		*status = "accepted";
	}
	else
	{
		payments_count(PM_STAT_WEBHOOK_DUPLICATE, 1);
		*status = "duplicate";
	}
	return WH_OK;
}

/*
 * WhCheckAt - only the owner of the webhook tables may receive a delivery
 * at a time other than now() (tests, replays of history): anyone else
 * could revive an expired secret, widen the replay window or have a
 * delivery purged at once and accepted again.
 */
static void
WhCheckAt(TimestampTz at, Oid owner)
{
	if (at != GetCurrentTransactionStartTimestamp() &&
		!has_privs_of_role(GetUserId(), owner))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("only the owner of the webhook tables may receive a delivery at a time other than now()"),
				errhint("Leave at out."));
}

PG_FUNCTION_INFO_V1(payments_webhook_receive);

/*
 * payments_webhook_receive - payments.webhook_receive(endpoint, headers,
 * body, at): one row (status, inbox_id, event_id, reason).
 */
Datum
payments_webhook_receive(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"endpoint", "headers", "body", "at"};
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	WhDelivery	d;
	const char *status;
	int64		inbox_id;
	Datum		event_id;
	WhReason	reason;
	PmSpiCall	call;
	Datum		values[4];
	bool		nulls[4] = {false};
	Oid			owner;
	Oid			inbox;

	payments_require_args(fcinfo, 4, names);
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	d.endpoint = PG_GETARG_DATUM(0);
	d.headers = PG_GETARG_JSONB_P(1);
	d.body = PG_GETARG_BYTEA_PP(2);
	d.at = PG_GETARG_TIMESTAMPTZ(3);
	owner = pm_table_owner("webhook_inbox", &inbox);
	WhCheckAt(d.at, owner);
	pm_require_writable("payments.webhook_receive");
	payments_sha256(VARDATA_ANY(d.body), VARSIZE_ANY_EXHDR(d.body), d.body_sha256);

	pm_spi_begin(&call, owner);
	reason = WhReceive(&d, &status, &inbox_id, &event_id);
	/* the event id lives in SPI memory: copy it out before pm_spi_end */
	nulls[2] = event_id == (Datum) 0;
	values[2] = nulls[2] ? (Datum) 0 : SPI_datumTransfer(event_id, false, -1);
	pm_spi_end(&call);

	values[0] = CStringGetTextDatum(status);
	values[1] = Int64GetDatum(inbox_id);
	nulls[1] = inbox_id == 0;
	values[3] = CStringGetTextDatum(WhReasonNames[reason]);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(payments_webhook_purge);

/*
 * WhPurge - one purge statement; the rows it deleted.
 */
static int64
WhPurge(WhStmtId stmt, TimestampTz before, int64 max_rows)
{
	Datum		args[2] = {TimestampTzGetDatum(before), Int64GetDatum(max_rows)};
	char		nulls[2] = {' ', max_rows < 0 ? 'n' : ' '};
	bool		isnull;

	pm_stmt_exec(&WhStmts[stmt], args, nulls);
	return DatumGetInt64(pm_stmt_value(0, 1, &isnull));
}

/*
 * payments_webhook_purge - payments.webhook_purge(before, max_rows): delete
 * inbox and rejection rows received before the earlier of before and now()
 * minus payments.webhook_retention, so that no purge forgets a delivery
 * younger than the retention (the inbox is what deduplicates
 * redeliveries); oldest first, at most max_rows in all when it is given.
 * Returns the number of rows deleted.
 */
Datum
payments_webhook_purge(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"before"};
	int64		max_rows = PG_ARGISNULL(1) ? -1 : PG_GETARG_INT64(1);
	TimestampTz before;
	PmSpiCall	call;
	int64		n;

	payments_require_args(fcinfo, 1, names);
	if (!PG_ARGISNULL(1) && max_rows < 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("max_rows must not be negative"));
	pm_require_writable("payments.webhook_purge");
	before = Min(PG_GETARG_TIMESTAMPTZ(0),
				 GetCurrentTransactionStartTimestamp() -
				 (int64) payments_webhook_retention * USECS_PER_SEC);
	pm_spi_begin(&call, InvalidOid);
	n = WhPurge(WH_STMT_PURGE_INBOX, before, max_rows);
	if (max_rows < 0 || n < max_rows)
		n += WhPurge(WH_STMT_PURGE_REJECTIONS, before,
					 max_rows < 0 ? -1 : max_rows - n);
	pm_spi_end(&call);
	PG_RETURN_INT64(n);
}

/*
 * WhSecretEndpoint - the scheme of the endpoint a secret is for, after
 * checking the secret so that the INSERT cannot fail on it: an error about
 * a failing row would quote the secret.  No message here quotes it either.
 */
static const WhScheme *
WhSecretEndpoint(FunctionCallInfo fcinfo)
{
	static const char *const names[] = {"endpoint", "secret"};
	WhDelivery	d = {0};
	int64		tolerance;
	const WhScheme *s;
	text	   *secret;
	size_t		len;

	payments_require_args(fcinfo, 2, names);
	secret = PG_GETARG_TEXT_PP(1);
	len = VARSIZE_ANY_EXHDR(secret);
	if (len == 0 || len > WH_MAX_SECRET_LEN)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("a webhook secret must be 1 to %d bytes", WH_MAX_SECRET_LEN));
	d.endpoint = PG_GETARG_DATUM(0);
	s = WhLoadEndpoint(&d, &tolerance);
	if (s->base64_secret)
	{
		uint8_t    *key = palloc(len + 1);

		WhStandardKey(VARDATA_ANY(secret), &len, key, 1);
		explicit_bzero(key, len);
	}
	return s;
}

/*
 * WhSecretInsert - store the checked secret; its id.
 */
static int64
WhSecretInsert(FunctionCallInfo fcinfo, TimestampTz expires_at, bool expires)
{
	Datum		args[3] = {PG_GETARG_DATUM(0), PG_GETARG_DATUM(1),
	TimestampTzGetDatum(expires_at)};
	char		nulls[3] = {' ', ' ', expires ? ' ' : 'n'};
	bool		isnull;

	pm_stmt_exec(&WhStmts[WH_STMT_SECRET_ADD], args, nulls);
	return DatumGetInt64(pm_stmt_value(0, 1, &isnull));
}

PG_FUNCTION_INFO_V1(payments_webhook_secret_add);

/*
 * payments_webhook_secret_add - webhook_secret_add(endpoint, secret,
 * expires_at): add a live secret to an endpoint; its id.
 */
Datum
payments_webhook_secret_add(PG_FUNCTION_ARGS)
{
	PmSpiCall	call;
	int64		id;

	pm_require_writable("payments.webhook_secret_add");
	pm_spi_begin(&call, InvalidOid);
	(void) WhSecretEndpoint(fcinfo);
	id = WhSecretInsert(fcinfo, PG_ARGISNULL(2) ? 0 : PG_GETARG_TIMESTAMPTZ(2),
						!PG_ARGISNULL(2));
	pm_spi_end(&call);
	PG_RETURN_INT64(id);
}

PG_FUNCTION_INFO_V1(payments_webhook_secret_rotate);

/*
 * payments_webhook_secret_rotate - webhook_secret_rotate(endpoint, secret,
 * overlap): add the new secret and let the endpoint's other live secrets
 * expire after overlap, so that deliveries signed with either verify
 * meanwhile; the new secret's id.
 */
Datum
payments_webhook_secret_rotate(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"endpoint", "secret", "overlap"};
	Interval   *overlap;
	TimestampTz until;
	Datum		args[3];
	PmSpiCall	call;
	int64		id;

	payments_require_args(fcinfo, 3, names);
	overlap = payments_interval_arg(fcinfo, 2, "overlap");
	until = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
													TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
													IntervalPGetDatum(overlap)));
	pm_require_writable("payments.webhook_secret_rotate");
	pm_spi_begin(&call, InvalidOid);
	(void) WhSecretEndpoint(fcinfo);
	id = WhSecretInsert(fcinfo, 0, false);
	args[0] = PG_GETARG_DATUM(0);
	args[1] = TimestampTzGetDatum(until);
	args[2] = Int64GetDatum(id);
	pm_stmt_exec(&WhStmts[WH_STMT_SECRET_EXPIRE], args, NULL);
	pm_spi_end(&call);
	PG_RETURN_INT64(id);
}

PG_FUNCTION_INFO_V1(payments_webhook_secret_remove);

/*
 * payments_webhook_secret_remove - webhook_secret_remove(endpoint,
 * secret_id): delete one secret at once; whether it existed.
 */
Datum
payments_webhook_secret_remove(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"endpoint", "secret_id"};
	Datum		args[2];
	PmSpiCall	call;
	uint64		n;

	payments_require_args(fcinfo, 2, names);
	args[0] = PG_GETARG_DATUM(0);
	args[1] = PG_GETARG_DATUM(1);
	pm_require_writable("payments.webhook_secret_remove");
	pm_spi_begin(&call, InvalidOid);
	n = pm_stmt_exec(&WhStmts[WH_STMT_SECRET_REMOVE], args, NULL);
	pm_spi_end(&call);
	PG_RETURN_BOOL(n > 0);
}
