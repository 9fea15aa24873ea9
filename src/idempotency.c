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
#include "utils/timestamp.h"

#include "errors.h"
#include "idempotency.h"
#include "payments.h"
#include "stats.h"

#define IDEM_MAX_CHARS		255
#define IDEM_MAX_ATTEMPTS	5
#define IDEM_RESULT_NATTS	5

/* The row begin returns. */
typedef struct IdemResult
{
	const char *outcome;
	text	   *recovery_point;
	Jsonb	   *response;
	Jsonb	   *error;
	TimestampTz created_at;
} IdemResult;

const PaymentsModule PaymentsIdempotencyModule = {
	.name = "idempotency",
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
 * IdemArgLater - now plus an interval argument, which must be positive.
 */
static TimestampTz
IdemArgLater(FunctionCallInfo fcinfo, int argno, const char *what,
			 TimestampTz now)
{
	TimestampTz later;

	IdemArgNotNull(fcinfo, argno, what);
	later = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
													TimestampTzGetDatum(now),
													PG_GETARG_DATUM(argno)));
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
IdemClaim(const IdemRequest *req, bool exists, IdemResult *res)
{
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
IdemBegin(const IdemRequest *req, IdemResult *res)
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
 * IdemRaiseNotInFlight - PM003, saying what the key actually is.
 */
static void
IdemRaiseNotInFlight(const IdemKey *k, const char *action)
{
	IdemRow		row;
	char	   *detail;

	if (!idem_store_lookup(k, &row))
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
 * recovery_point, scope): record progress, renew the lease for the
 * interval given at begin.
 */
Datum
payments_idempotency_checkpoint(PG_FUNCTION_ARGS)
{
	IdemKey		k;

	IdemReadKey(fcinfo, 0, 2, &k);
	IdemArgNotNull(fcinfo, 1, "recovery_point");
	IdemFinish(&k, IDEM_FINISH_CHECKPOINT, PG_GETARG_DATUM(1), "checkpoint");
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(payments_idempotency_complete);

/*
 * payments_idempotency_complete - SQL idempotency_complete(key, response,
 * scope): store the response; later begins replay it.
 */
Datum
payments_idempotency_complete(PG_FUNCTION_ARGS)
{
	IdemKey		k;

	IdemReadKey(fcinfo, 0, 2, &k);
	IdemArgNotNull(fcinfo, 1, "response");
	IdemFinish(&k, IDEM_FINISH_COMPLETE, PG_GETARG_DATUM(1), "complete");
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(payments_idempotency_fail);

/*
 * payments_idempotency_fail - SQL idempotency_fail(key, error, retriable,
 * scope): a retriable failure deletes the key so the client may retry; a
 * terminal one is stored and replayed exactly.
 */
Datum
payments_idempotency_fail(PG_FUNCTION_ARGS)
{
	IdemKey		k;

	IdemReadKey(fcinfo, 0, 3, &k);
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

PG_FUNCTION_INFO_V1(payments_idempotency_purge);

/*
 * payments_idempotency_purge - SQL idempotency_purge(before): delete keys
 * expired before min(before, now).
 */
Datum
payments_idempotency_purge(PG_FUNCTION_ARGS)
{
	IdemArgNotNull(fcinfo, 0, "before");
	PG_RETURN_INT64(idem_store_purge(PG_GETARG_TIMESTAMPTZ(0)));
}
