/*-------------------------------------------------------------------------
 *
 * idempotency.c
 *	  Idempotency keys: the SQL entry points.
 *
 * payments.idempotency_begin() makes a retried request safe: the first call
 * with a new (scope, key) inserts an in_flight row and answers "started";
 * a later call with the same request replays the stored outcome, refuses
 * while the first is still running (PM002), takes over a key whose lease ran
 * out ("resumed"), and refuses a different request under the same key
 * (PM001).  The request is identified by the SHA-256 of its canonical jsonb
 * text, so key order and whitespace do not matter.
 *
 * This file reads the arguments, asks idem_decide.c what to do with the
 * stored row and idem_store.c to read or change it, and raises the PM
 * errors.  Concurrency is PostgreSQL's own: a new key is claimed with the
 * protocol of INSERT ... ON CONFLICT DO NOTHING, so a caller racing an
 * uncommitted insert of the same key waits for that transaction like a
 * unique index does, and every decision that changes an existing row
 * (takeover, reuse of an expired key) is made on the row locked FOR
 * UPDATE, so exactly one caller wins.  Times are wall-clock at the call
 * (not transaction start), so a lease runs out in real time.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "errors.h"
#include "idempotency.h"
#include "payments.h"
#include "stmt.h"
#include "stats.h"

#define IDEM_MAX_CHARS		255
#define IDEM_MAX_ATTEMPTS	5
#define IDEM_MAX_YEARS		100
#define IDEM_RESULT_NATTS	6
#define IDEM_STATUS_NATTS	6

/* The row begin returns. */
typedef struct IdemResult
{
	const char *outcome;
	text	   *recovery_point;
	Jsonb	   *response;
	Jsonb	   *error;
	TimestampTz created_at;
	const pg_uuid_t *token;		/* NULL for replays */
} IdemResult;

bool		payments_idempotency_require_token = false;

/*
 * IdemDefineGucs - payments.idempotency_require_token.
 */
static void
IdemDefineGucs(void)
{
	DefineCustomBoolVariable("payments.idempotency_require_token",
							 "Makes checkpoint, complete and fail refuse a call without an owner token.",
							 "Turn it on once every application passes the token idempotency_begin returned.",
							 &payments_idempotency_require_token, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);
}

const PaymentsModule PaymentsIdempotencyModule = {
	.name = "idempotency",
	.define_gucs = IdemDefineGucs,
};

/*
 * IdemArgText - a key or scope argument: not null, not empty, at most 255
 * characters.  A missing key must never silently bypass idempotency.
 */
static text *
IdemArgText(FunctionCallInfo fcinfo, int argno, const char *what)
{
	text	   *t;
	int			chars;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("idempotency %s must not be null", what));
	t = PG_GETARG_TEXT_PP(argno);
	if (VARSIZE_ANY_EXHDR(t) == 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("idempotency %s must not be empty", what));
	chars = pg_mbstrlen_with_len(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	if (chars > IDEM_MAX_CHARS)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("idempotency %s is too long", what),
				errdetail("It has %d characters; the limit is %d.",
						  chars, IDEM_MAX_CHARS));
	return t;
}

/*
 * IdemArgNotNull - raise 22023 when a required argument is null.
 */
static void
IdemArgNotNull(FunctionCallInfo fcinfo, int argno, const char *what)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("%s must not be null", what));
}

/*
 * IdemArgLater - now plus an interval argument, which must be positive and
 * at most 100 years (checked before adding, so that no interval can make
 * the sum overflow into a timestamp error).
 */
static TimestampTz
IdemArgLater(FunctionCallInfo fcinfo, int argno, const char *what,
			 TimestampTz now)
{
	Interval   *iv;
	double		days;
	TimestampTz later;

	IdemArgNotNull(fcinfo, argno, what);
	iv = PG_GETARG_INTERVAL_P(argno);
	days = (double) iv->month * DAYS_PER_MONTH + iv->day +
		(double) iv->time / USECS_PER_DAY;
	if (days > IDEM_MAX_YEARS * MONTHS_PER_YEAR * DAYS_PER_MONTH)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("%s must be at most %d years", what, IDEM_MAX_YEARS));
	later = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
													TimestampTzGetDatum(now),
													IntervalPGetDatum(iv)));
	if (later <= now)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("%s must be a positive interval", what));
	return later;
}

/*
 * IdemReadKey - the key and scope arguments of any call, and its time.
 */
static void
IdemReadKey(FunctionCallInfo fcinfo, int keyarg, int scopearg, IdemKey *k)
{
	k->key = IdemArgText(fcinfo, keyarg, "key");
	k->scope = IdemArgText(fcinfo, scopearg, "scope");
	k->now = GetCurrentTimestamp();
	k->cxt = CurrentMemoryContext;
	k->token = NULL;
}

/*
 * IdemReadToken - the owner token argument of checkpoint, complete and
 * fail; NULL acts for whoever owns the key, unless
 * payments.idempotency_require_token forbids it.
 */
static void
IdemReadToken(FunctionCallInfo fcinfo, int argno, IdemKey *k)
{
	if (!PG_ARGISNULL(argno))
		k->token = PG_GETARG_UUID_P(argno);
	else if (payments_idempotency_require_token)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("idempotency token must not be null"),
				errdetail("payments.idempotency_require_token is on."),
				errhint("Pass the token that idempotency_begin returned with started or resumed."));
}

/*
 * IdemNewToken - a random (version 4) UUID: the owner token of a key this
 * call may come to own.
 */
static void
IdemNewToken(pg_uuid_t *token)
{
	if (!pg_strong_random(token->data, UUID_LEN))
		ereport(ERROR,
				errcode(ERRCODE_INTERNAL_ERROR),
				errmsg("could not generate an idempotency owner token"));
	token->data[6] = (token->data[6] & 0x0f) | 0x40;
	token->data[8] = (token->data[8] & 0x3f) | 0x80;
}

/*
 * IdemFingerprint - SHA-256 of the request's canonical jsonb text.  jsonb
 * already sorts keys, drops duplicates and normalises whitespace.
 */
static void
IdemFingerprint(Jsonb *request, uint8 *out)
{
	char	   *canon = JsonbToCString(NULL, &request->root, VARSIZE(request));

	payments_sha256(canon, strlen(canon), out);
	pfree(canon);
}

/*
 * IdemDecideRow - the decision on a row read for this request.
 */
static IdemDecision
IdemDecideRow(const IdemRequest *req, IdemRow *row, bool locked)
{
	row->facts.same_request =
		memcmp(row->fingerprint, req->fingerprint, IDEM_FP_LEN) == 0;
	return idem_decide(&row->facts, req->k.now, locked);
}

/*
 * IdemRaiseConflict - PM001: the key was used for another request.
 */
static void
IdemRaiseConflict(const IdemKey *k, const IdemRow *row)
{
	payments_count(PM_STAT_IDEMPOTENCY_CONFLICTED, 1);
	ereport(ERROR,
			payments_errcode(PM_IDEMPOTENCY_CONFLICT),
			errmsg("idempotency key \"%s\" in scope \"%s\" was already used with a different request",
				   text_to_cstring(k->key), text_to_cstring(k->scope)),
			errdetail("The key is %s and its request fingerprint differs from this request's.",
					  IdemStateNames[row->facts.state]),
			errhint("Use a new idempotency key for a different request."));
}

/*
 * IdemRaiseInFlight - PM002: the key's owner is still working on it.
 */
static void
IdemRaiseInFlight(const IdemKey *k)
{
	payments_count(PM_STAT_IDEMPOTENCY_IN_FLIGHT_REFUSED, 1);
	ereport(ERROR,
			payments_errcode(PM_IDEMPOTENCY_IN_FLIGHT),
			errmsg("idempotency key \"%s\" in scope \"%s\" is in flight",
				   text_to_cstring(k->key), text_to_cstring(k->scope)),
			errdetail("Another call began this request and its lease has not run out."),
			errhint("Retry the same request with the same key later."));
}

/*
 * IdemSetResult - fill the returned row from a stored row.
 */
static void
IdemSetResult(IdemResult *res, const char *outcome, const IdemRow *row)
{
	res->outcome = outcome;
	res->recovery_point = row->recovery_point;
	res->response = row->response;
	res->error = row->error;
	res->created_at = row->created_at;
	res->token = NULL;
}

/*
 * IdemStarted - the result of a key this call has just claimed.
 */
static void
IdemStarted(const IdemRequest *req, IdemResult *res)
{
	payments_count(PM_STAT_IDEMPOTENCY_STARTED, 1);
	memset(res, 0, sizeof(*res));
	res->outcome = "started";
	res->created_at = req->k.now;
	res->token = &req->new_token;
}

/*
 * IdemAct - carry out a decision other than IDEM_LOCK.
 */
static void
IdemAct(const IdemRequest *req, IdemRow *row, IdemDecision d, IdemResult *res)
{
	switch (d)
	{
		case IDEM_OVERWRITE:
			idem_store_overwrite(req);
			IdemStarted(req, res);
			break;
		case IDEM_CONFLICT:
			IdemRaiseConflict(&req->k, row);
			break;
		case IDEM_REFUSE:
			IdemRaiseInFlight(&req->k);
			break;
		case IDEM_REPLAY:
			payments_count(PM_STAT_IDEMPOTENCY_REPLAYED, 1);
			IdemSetResult(res, IdemStateNames[row->facts.state], row);
			break;
		case IDEM_TAKEOVER:
			idem_store_takeover(req);
			payments_count(PM_STAT_IDEMPOTENCY_RESUMED, 1);
			IdemSetResult(res, "resumed", row);
			res->token = &req->new_token;
			break;
		case IDEM_LOCK:
			elog(ERROR, "idempotency decision needs a locked row");
	}
}

/*
 * IdemClaim - the slow path of begin: insert, or decide on the locked row.
 * A row deleted between the two (retriable failure, purge) sends us round
 * again, a bounded number of times.
 */
static void
IdemClaim(IdemRequest *req, bool exists, IdemResult *res)
{
	/* the token of the row this call may insert, overwrite or take over */
	IdemNewToken(&req->new_token);
	for (int attempt = 0; attempt < IDEM_MAX_ATTEMPTS; attempt++)
	{
		IdemRow		row;

		if (!exists && idem_store_insert(req))
		{
			IdemStarted(req, res);
			return;
		}
		exists = idem_store_lock(req, &row);
		if (exists)
		{
			IdemAct(req, &row, IdemDecideRow(req, &row, true), res);
			return;
		}
	}
	payments_count(PM_STAT_IDEMPOTENCY_IN_FLIGHT_REFUSED, 1);
	ereport(ERROR,
			payments_errcode(PM_IDEMPOTENCY_IN_FLIGHT),
			errmsg("idempotency key \"%s\" in scope \"%s\" is changing concurrently",
				   text_to_cstring(req->k.key), text_to_cstring(req->k.scope)),
			errhint("Retry the same request with the same key later."));
}

/*
 * IdemBegin - begin's decision: the lock-free lookup answers replays,
 * conflicts and refusals; anything else is claimed under a lock.
 */
static void
IdemBegin(IdemRequest *req, IdemResult *res)
{
	IdemRow		row;
	bool		exists = idem_store_lookup(&req->k, &row);

	if (exists)
	{
		IdemDecision d = IdemDecideRow(req, &row, false);

		if (d != IDEM_LOCK)
		{
			IdemAct(req, &row, d, res);
			return;
		}
	}
	IdemClaim(req, exists, res);
}

/*
 * IdemReadRequest - validate begin's arguments and fingerprint the request.
 */
static void
IdemReadRequest(FunctionCallInfo fcinfo, IdemRequest *req)
{
	IdemReadKey(fcinfo, 0, 2, &req->k);
	IdemArgNotNull(fcinfo, 1, "request");
	req->expires_at = IdemArgLater(fcinfo, 3, "ttl", req->k.now);
	req->locked_until = IdemArgLater(fcinfo, 4, "lease", req->k.now);
	req->ttl = PG_GETARG_INTERVAL_P(3);
	req->lease = PG_GETARG_INTERVAL_P(4);
	IdemFingerprint(PG_GETARG_JSONB_P(1), req->fingerprint);
}

/*
 * IdemReturnResult - hand begin's one row to the executor in materialize
 * mode, with the row type the caller expects: a one-row tuplestore, which
 * is what a function scan builds from a value-per-call result anyway, and
 * which a select-list call next to other set-returning functions reads
 * exactly once.
 */
static void
IdemReturnResult(FunctionCallInfo fcinfo, const IdemResult *res)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[IDEM_RESULT_NATTS];
	bool		nulls[IDEM_RESULT_NATTS] = {false};

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	if (rsinfo->setDesc->natts != IDEM_RESULT_NATTS)
		elog(ERROR, "return type must be a row type of %d columns",
			 IDEM_RESULT_NATTS);
	values[0] = CStringGetTextDatum(res->outcome);
	values[1] = PointerGetDatum(res->recovery_point);
	nulls[1] = res->recovery_point == NULL;
	values[2] = PointerGetDatum(res->response);
	nulls[2] = res->response == NULL;
	values[3] = PointerGetDatum(res->error);
	nulls[3] = res->error == NULL;
	values[4] = TimestampTzGetDatum(res->created_at);
	values[5] = UUIDPGetDatum(res->token);
	nulls[5] = res->token == NULL;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

PG_FUNCTION_INFO_V1(payments_idempotency_begin);

/*
 * payments_idempotency_begin - SQL idempotency_begin(key, request, scope,
 * ttl, lease): always one row.
 */
Datum
payments_idempotency_begin(PG_FUNCTION_ARGS)
{
	IdemRequest req;
	IdemResult	res;

	IdemReadRequest(fcinfo, &req);
	IdemBegin(&req, &res);
	IdemReturnResult(fcinfo, &res);
	return (Datum) 0;
}

/*
 * IdemRaiseNotInFlight - PM003, saying what the key actually is.  A key's
 * state is no secret from a caller allowed to use the key (begin tells it
 * too); its response and error are.
 */
static void
IdemRaiseNotInFlight(const IdemKey *k, const char *action)
{
	IdemRow		row;
	bool		found = idem_store_lookup(k, &row);
	char	   *detail;

	if (found && !idem_expired(&row.facts, k->now) &&
		row.facts.state == IDEM_IN_FLIGHT && k->token != NULL)
		ereport(ERROR,
				payments_errcode(PM_IDEMPOTENCY_INVALID_STATE),
				errmsg("cannot %s idempotency key \"%s\" in scope \"%s\": the token is not its owner's",
					   action, text_to_cstring(k->key), text_to_cstring(k->scope)),
				errdetail("The key is in flight under another owner token: it was taken over, or it expired and was begun again."),
				errhint("Stop working on this request: another caller owns it now."));
	if (!found)
		detail = pstrdup("The key does not exist.");
	else if (idem_expired(&row.facts, k->now))
		detail = pstrdup("The key has expired.");
	else
		detail = psprintf("The key is %s.", IdemStateNames[row.facts.state]);
	ereport(ERROR,
			payments_errcode(PM_IDEMPOTENCY_INVALID_STATE),
			errmsg("cannot %s idempotency key \"%s\" in scope \"%s\": it is not in flight",
				   action, text_to_cstring(k->key), text_to_cstring(k->scope)),
			errdetail_internal("%s", detail),
			errhint("Only a key that idempotency_begin returned as started or resumed can be checkpointed, completed or failed."));
}

/*
 * IdemFinish - change a live in_flight key; PM003 when there is none.
 */
static void
IdemFinish(const IdemKey *k, IdemFinishKind kind, Datum value,
		   const char *action)
{
	if (!idem_store_finish(k, kind, value))
		IdemRaiseNotInFlight(k, action);
}

PG_FUNCTION_INFO_V1(payments_idempotency_checkpoint);

/*
 * payments_idempotency_checkpoint - SQL idempotency_checkpoint(key,
 * recovery_point, scope, token): record progress, renew the lease for the
 * interval given at begin.
 */
Datum
payments_idempotency_checkpoint(PG_FUNCTION_ARGS)
{
	IdemKey		k;

	IdemReadKey(fcinfo, 0, 2, &k);
	IdemReadToken(fcinfo, 3, &k);
	IdemArgNotNull(fcinfo, 1, "recovery_point");
	IdemFinish(&k, IDEM_FINISH_CHECKPOINT, PG_GETARG_DATUM(1), "checkpoint");
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(payments_idempotency_complete);

/*
 * payments_idempotency_complete - SQL idempotency_complete(key, response,
 * scope, token): store the response; later begins replay it for at least
 * the key's ttl from now.
 */
Datum
payments_idempotency_complete(PG_FUNCTION_ARGS)
{
	IdemKey		k;

	IdemReadKey(fcinfo, 0, 2, &k);
	IdemReadToken(fcinfo, 3, &k);
	IdemArgNotNull(fcinfo, 1, "response");
	IdemFinish(&k, IDEM_FINISH_COMPLETE, PG_GETARG_DATUM(1), "complete");
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(payments_idempotency_fail);

/*
 * payments_idempotency_fail - SQL idempotency_fail(key, error, retriable,
 * scope, token): a retriable failure deletes the key so the client may
 * retry; a terminal one is stored and replayed exactly, for at least the
 * key's ttl from now.
 */
Datum
payments_idempotency_fail(PG_FUNCTION_ARGS)
{
	IdemKey		k;

	IdemReadKey(fcinfo, 0, 3, &k);
	IdemReadToken(fcinfo, 4, &k);
	IdemArgNotNull(fcinfo, 2, "retriable");
	if (PG_GETARG_BOOL(2))
		IdemFinish(&k, IDEM_FINISH_FORGET, (Datum) 0, "fail");
	else
	{
		IdemArgNotNull(fcinfo, 1, "error");
		IdemFinish(&k, IDEM_FINISH_FAIL, PG_GETARG_DATUM(1), "fail");
	}
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(payments_idempotency_status);

/*
 * payments_idempotency_status - SQL idempotency_status(key, scope): the
 * key's state and times, for support; never its response or error.  No
 * row when there is no such key.
 */
Datum
payments_idempotency_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	IdemKey		k;
	IdemRow		row;
	Datum		values[IDEM_STATUS_NATTS];
	bool		nulls[IDEM_STATUS_NATTS] = {false};

	IdemReadKey(fcinfo, 0, 1, &k);
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	if (!idem_store_lookup(&k, &row))
		return (Datum) 0;
	values[0] = CStringGetTextDatum(IdemStateNames[row.facts.state]);
	values[1] = BoolGetDatum(idem_expired(&row.facts, k.now));
	values[2] = TimestampTzGetDatum(row.created_at);
	values[3] = TimestampTzGetDatum(row.facts.expires_at);
	values[4] = TimestampTzGetDatum(row.facts.locked_until);
	nulls[4] = !row.facts.leased;
	values[5] = PointerGetDatum(row.recovery_point);
	nulls[5] = row.recovery_point == NULL;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(payments_idempotency_purge);

/*
 * payments_idempotency_purge - SQL idempotency_purge(before, max_rows):
 * delete keys expired before min(before, now), at most max_rows when it
 * is given, so that a scheduler can purge in short transactions.
 */
Datum
payments_idempotency_purge(PG_FUNCTION_ARGS)
{
	int64		max_rows = -1;

	IdemArgNotNull(fcinfo, 0, "before");
	if (!PG_ARGISNULL(1))
	{
		max_rows = PG_GETARG_INT64(1);
		if (max_rows < 0)
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("max_rows must not be negative"));
	}
	pm_require_writable("payments.idempotency_purge");
	PG_RETURN_INT64(idem_store_purge(PG_GETARG_TIMESTAMPTZ(0), max_rows));
}
