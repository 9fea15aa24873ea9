/*-------------------------------------------------------------------------
 *
 * idempotency.c
 *	  Idempotency keys: insert-or-return, leases, replay and purge.
 *
 * payments.idempotency_begin() makes a retried request safe: the first call
 * with a new (scope, key) inserts an in_flight row and answers "started";
 * a later call with the same request replays the stored outcome, refuses
 * while the first is still running (PM002), takes over a key whose lease ran
 * out ("resumed"), and refuses a different request under the same key
 * (PM001).  The request is identified by the SHA-256 of its canonical jsonb
 * text, so key order and whitespace do not matter.
 *
 * Concurrency is PostgreSQL's own: a new key is claimed with INSERT ... ON
 * CONFLICT DO NOTHING, so a caller racing an uncommitted insert of the same
 * key waits for that transaction like a unique index does, and every
 * decision that changes an existing row (takeover, reuse of an expired key)
 * is made on the row locked FOR UPDATE, so exactly one caller wins.
 *
 * The common cases are fast: the lookup that answers replays and refusals
 * reads the primary key index directly, without the executor; writes go
 * through SPI plans prepared once per backend.  Times are wall-clock at the
 * call (not transaction start), so a lease runs out in real time.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "storage/lmgr.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "digest.h"
#include "errors.h"
#include "payments.h"
#include "stats.h"

#define IDEM_TABLE			"idempotency_keys"
#define IDEM_QUALIFIED		PAYMENTS_SCHEMA "." IDEM_TABLE
#define IDEM_FP_LEN			PAYMENTS_SHA256_LEN
#define IDEM_MAX_CHARS		255
#define IDEM_MAX_ATTEMPTS	5
#define IDEM_PURGE_BATCH	10000

/* Attribute numbers of payments.idempotency_keys, in table order. */
enum
{
	IA_SCOPE = 1, IA_KEY, IA_FINGERPRINT, IA_STATE, IA_RECOVERY_POINT,
	IA_RESPONSE, IA_ERROR, IA_CREATED_AT, IA_LOCKED_UNTIL, IA_EXPIRES_AT,
	IA_LEASE
};
#define IDEM_NATTS IA_LEASE

/* The columns a decision needs, from fingerprint to expires_at. */
#define IDEM_ROW_COLUMNS \
	"fingerprint, state, recovery_point, response, error, created_at, " \
	"locked_until, expires_at"
#define IDEM_ROW_NCOLS 8

/* "(scope, key) = ($1, $2)" with the operators schema-qualified. */
#define IDEM_WHERE_KEY \
	" WHERE scope OPERATOR(pg_catalog.=) $1 AND key OPERATOR(pg_catalog.=) $2"

/* An in_flight row that has not expired, at time $4. */
#define IDEM_WHERE_LIVE \
	IDEM_WHERE_KEY " AND state OPERATOR(pg_catalog.=) 'in_flight'" \
	" AND (expires_at OPERATOR(pg_catalog.>) $4" \
	" OR locked_until OPERATOR(pg_catalog.>) $4)"

typedef enum IdemState
{
	IDEM_IN_FLIGHT,
	IDEM_COMPLETED,
	IDEM_FAILED
} IdemState;

static const char *const IdemStateNames[] = {"in_flight", "completed", "failed"};

/* What begin does with the row it found. */
typedef enum IdemDecision
{
	IDEM_LOCK,					/* decide again on the row locked */
	IDEM_OVERWRITE,				/* expired: reuse the key as new */
	IDEM_CONFLICT,				/* PM001 */
	IDEM_REFUSE,				/* PM002 */
	IDEM_REPLAY,				/* completed or failed: return it */
	IDEM_TAKEOVER				/* lease ran out: resume */
} IdemDecision;

/* The key a call is about, and when the call happened. */
typedef struct IdemKey
{
	text	   *scope;
	text	   *key;
	TimestampTz now;
	MemoryContext cxt;			/* where results are copied (outlives SPI) */
} IdemKey;

/* The arguments of begin. */
typedef struct IdemRequest
{
	IdemKey		k;
	uint8		fingerprint[IDEM_FP_LEN];
	Interval   *lease;
	TimestampTz locked_until;
	TimestampTz expires_at;
} IdemRequest;

/* A stored row, as far as a decision needs it. */
typedef struct IdemRow
{
	uint8		fingerprint[IDEM_FP_LEN];
	IdemState	state;
	text	   *recovery_point;
	Jsonb	   *response;
	Jsonb	   *error;
	TimestampTz created_at;
	bool		leased;
	TimestampTz locked_until;
	TimestampTz expires_at;
} IdemRow;

/* The row begin returns. */
typedef struct IdemResult
{
	const char *outcome;
	text	   *recovery_point;
	Jsonb	   *response;
	Jsonb	   *error;
	TimestampTz created_at;
} IdemResult;

/* SPI plans, prepared on first use and kept for the backend's life. */
static SPIPlanPtr LockPlan = NULL;
static SPIPlanPtr OverwritePlan = NULL;
static SPIPlanPtr TakeoverPlan = NULL;
static SPIPlanPtr CheckpointPlan = NULL;
static SPIPlanPtr CompletePlan = NULL;
static SPIPlanPtr FailPlan = NULL;
static SPIPlanPtr ForgetPlan = NULL;
static SPIPlanPtr PurgePlan = NULL;

static const Oid KeyTypes[] = {TEXTOID, TEXTOID};
static const Oid RowTypes[] = {TEXTOID, TEXTOID, BYTEAOID, TIMESTAMPTZOID,
TIMESTAMPTZOID, TIMESTAMPTZOID, INTERVALOID};
static const Oid TakeoverTypes[] = {TEXTOID, TEXTOID, TIMESTAMPTZOID,
INTERVALOID};
static const Oid SetTextTypes[] = {TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID};
static const Oid SetJsonbTypes[] = {TEXTOID, TEXTOID, JSONBOID, TIMESTAMPTZOID};
static const Oid ForgetTypes[] = {TEXTOID, TEXTOID, TIMESTAMPTZOID,
TIMESTAMPTZOID};
static const Oid PurgeTypes[] = {TIMESTAMPTZOID, TIMESTAMPTZOID, INT4OID};

/*
 * IdemPlan - the cached SPI plan for sql, preparing and keeping it once.
 */
static SPIPlanPtr
IdemPlan(SPIPlanPtr *cache, const char *sql, int nargs, const Oid *types)
{
	SPIPlanPtr	plan;

	if (*cache != NULL)
		return *cache;
	plan = SPI_prepare(sql, nargs, (Oid *) types);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s",
			 sql, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	*cache = plan;
	return plan;
}

/*
 * IdemExec - run a plan, fail on an SPI error and return rows processed.
 */
static uint64
IdemExec(SPIPlanPtr plan, Datum *values)
{
	int			rc = SPI_execute_plan(plan, values, NULL, false, 0);

	if (rc < 0)
		elog(ERROR, "idempotency statement failed: %s",
			 SPI_result_code_string(rc));
	return SPI_processed;
}

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
 * IdemStateFromName - the state of a stored state name.
 */
static IdemState
IdemStateFromName(const char *name)
{
	for (int i = 0; i < (int) lengthof(IdemStateNames); i++)
		if (strcmp(name, IdemStateNames[i]) == 0)
			return (IdemState) i;
	elog(ERROR, "unknown idempotency key state \"%s\"", name);
	return IDEM_IN_FLIGHT;		/* keep compiler quiet */
}

/*
 * IdemRowFromDatums - copy the IDEM_ROW_COLUMNS values into row, in cxt.
 */
static void
IdemRowFromDatums(const Datum *v, const bool *n, IdemRow *row,
				  MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	bytea	   *fp = DatumGetByteaPP(v[0]);
	char	   *state = TextDatumGetCString(v[1]);

	if (VARSIZE_ANY_EXHDR(fp) != IDEM_FP_LEN)
		elog(ERROR, "idempotency key row has a malformed fingerprint");
	memcpy(row->fingerprint, VARDATA_ANY(fp), IDEM_FP_LEN);
	row->state = IdemStateFromName(state);
	row->recovery_point = n[2] ? NULL : DatumGetTextPCopy(v[2]);
	row->response = n[3] ? NULL : DatumGetJsonbPCopy(v[3]);
	row->error = n[4] ? NULL : DatumGetJsonbPCopy(v[4]);
	row->created_at = DatumGetTimestampTz(v[5]);
	row->leased = !n[6];
	row->locked_until = n[6] ? 0 : DatumGetTimestampTz(v[6]);
	row->expires_at = DatumGetTimestampTz(v[7]);
	MemoryContextSwitchTo(old);
}

/*
 * IdemOpenTable - open payments.idempotency_keys and its primary key index.
 */
static Relation
IdemOpenTable(Relation *index, LOCKMODE lockmode)
{
	Oid			nsp = get_namespace_oid(PAYMENTS_SCHEMA, false);
	Oid			relid = get_relname_relid(IDEM_TABLE, nsp);
	Relation	rel;
	Oid			pkey;

	if (!OidIsValid(relid))
		elog(ERROR, "table %s does not exist", IDEM_QUALIFIED);
	rel = table_open(relid, lockmode);
	pkey = RelationGetPrimaryKeyIndex(rel);
	if (RelationGetDescr(rel)->natts != IDEM_NATTS || !OidIsValid(pkey))
		elog(ERROR, "table %s does not have the expected shape",
			 IDEM_QUALIFIED);
	if (index != NULL)
		*index = index_open(pkey, AccessShareLock);
	return rel;
}

/*
 * IdemLookup - read the key's row through the primary key index, without
 * the executor: the fast path of replays and refusals.  Uses the snapshot
 * a new statement would get, so it sees what this transaction wrote.
 */
static bool
IdemLookup(const IdemKey *k, IdemRow *row)
{
	Relation	index;
	Relation	rel = IdemOpenTable(&index, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	ScanKeyData skey[2];
	IndexScanDesc scan;
	bool		found;

	ScanKeyInit(&skey[0], 1, BTEqualStrategyNumber, F_TEXTEQ,
				PointerGetDatum(k->scope));
	ScanKeyInit(&skey[1], 2, BTEqualStrategyNumber, F_TEXTEQ,
				PointerGetDatum(k->key));
	PushActiveSnapshot(GetTransactionSnapshot());
	UpdateActiveSnapshotCommandId();
	scan = index_beginscan(rel, index, GetActiveSnapshot(), 2, 0);
	index_rescan(scan, skey, 2, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	if (found)
	{
		slot_getallattrs(slot);
		IdemRowFromDatums(slot->tts_values + IA_FINGERPRINT - 1,
						  slot->tts_isnull + IA_FINGERPRINT - 1, row, k->cxt);
	}
	index_endscan(scan);
	PopActiveSnapshot();
	ExecDropSingleTupleTableSlot(slot);
	/* keep the locks until the end of the transaction, as a query does */
	index_close(index, NoLock);
	table_close(rel, NoLock);
	return found;
}

/*
 * IdemLeaseRunning - whether an in_flight row's owner still holds it.
 */
static bool
IdemLeaseRunning(const IdemRow *row, TimestampTz now)
{
	return row->state == IDEM_IN_FLIGHT && row->leased &&
		row->locked_until > now;
}

/*
 * IdemExpired - whether the row behaves as absent.  An in_flight key whose
 * lease still runs never expires: reusing it would execute twice.
 */
static bool
IdemExpired(const IdemRow *row, TimestampTz now)
{
	return row->expires_at <= now && !IdemLeaseRunning(row, now);
}

/*
 * IdemDecide - what begin does with a row; decisions that modify the row
 * are only taken when it is locked.
 */
static IdemDecision
IdemDecide(const IdemRequest *req, const IdemRow *row, bool locked)
{
	if (IdemExpired(row, req->k.now))
		return locked ? IDEM_OVERWRITE : IDEM_LOCK;
	if (memcmp(row->fingerprint, req->fingerprint, IDEM_FP_LEN) != 0)
		return IDEM_CONFLICT;
	if (row->state != IDEM_IN_FLIGHT)
		return IDEM_REPLAY;
	if (IdemLeaseRunning(row, req->k.now))
		return IDEM_REFUSE;
	return locked ? IDEM_TAKEOVER : IDEM_LOCK;
}

/*
 * IdemFingerprintDatum - the request's fingerprint as a bytea datum.
 */
static Datum
IdemFingerprintDatum(const IdemRequest *req)
{
	bytea	   *fp = palloc(VARHDRSZ + IDEM_FP_LEN);

	SET_VARSIZE(fp, VARHDRSZ + IDEM_FP_LEN);
	memcpy(VARDATA(fp), req->fingerprint, IDEM_FP_LEN);
	return PointerGetDatum(fp);
}

/*
 * IdemRowValues - the parameters of OverwritePlan (a whole new row).
 */
static void
IdemRowValues(const IdemRequest *req, Datum *values)
{
	values[0] = PointerGetDatum(req->k.scope);
	values[1] = PointerGetDatum(req->k.key);
	values[2] = IdemFingerprintDatum(req);
	values[3] = TimestampTzGetDatum(req->k.now);
	values[4] = TimestampTzGetDatum(req->locked_until);
	values[5] = TimestampTzGetDatum(req->expires_at);
	values[6] = PointerGetDatum(req->lease);
}

/*
 * IdemFillSlot - the new in_flight row of a request, as a virtual tuple.
 * Its values satisfy the table's CHECK constraints by construction: key and
 * scope were validated, the fingerprint is 32 bytes.
 */
static void
IdemFillSlot(const IdemRequest *req, TupleTableSlot *slot)
{
	Datum	   *v = slot->tts_values;
	bool	   *n = slot->tts_isnull;

	ExecClearTuple(slot);
	memset(n, false, IDEM_NATTS * sizeof(bool));
	v[IA_SCOPE - 1] = PointerGetDatum(req->k.scope);
	v[IA_KEY - 1] = PointerGetDatum(req->k.key);
	v[IA_FINGERPRINT - 1] = IdemFingerprintDatum(req);
	v[IA_STATE - 1] = CStringGetTextDatum(IdemStateNames[IDEM_IN_FLIGHT]);
	n[IA_RECOVERY_POINT - 1] = n[IA_RESPONSE - 1] = n[IA_ERROR - 1] = true;
	v[IA_CREATED_AT - 1] = TimestampTzGetDatum(req->k.now);
	v[IA_LOCKED_UNTIL - 1] = TimestampTzGetDatum(req->locked_until);
	v[IA_EXPIRES_AT - 1] = TimestampTzGetDatum(req->expires_at);
	v[IA_LEASE - 1] = IntervalPGetDatum(req->lease);
	ExecStoreVirtualTuple(slot);
}

/*
 * IdemCheckConflictVisible - under REPEATABLE READ or SERIALIZABLE, a key
 * that a transaction our snapshot cannot see has inserted is a
 * serialization failure, as for INSERT ... ON CONFLICT: we cannot read it.
 */
static void
IdemCheckConflictVisible(Relation rel, ItemPointer tid)
{
	TupleTableSlot *slot;
	bool		isnull;
	TransactionId xmin;

	if (!IsolationUsesXactSnapshot())
		return;
	slot = table_slot_create(rel, NULL);
	if (!table_tuple_fetch_row_version(rel, tid, SnapshotAny, slot))
		elog(ERROR, "failed to fetch the conflicting idempotency key row");
	if (!table_tuple_satisfies_snapshot(rel, slot, GetTransactionSnapshot()))
	{
		xmin = DatumGetTransactionId(slot_getsysattr(slot,
													 MinTransactionIdAttributeNumber,
													 &isnull));
		if (!TransactionIdIsCurrentTransactionId(xmin))
			ereport(ERROR,
					errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					errmsg("could not serialize access due to concurrent insert of an idempotency key"),
					errhint("Call idempotency_begin in a READ COMMITTED transaction, or retry."));
	}
	ExecDropSingleTupleTableSlot(slot);
}

/*
 * IdemInsertSpeculative - one speculative insertion, the protocol of INSERT
 * ... ON CONFLICT DO NOTHING: check the unique index (waiting for an
 * uncommitted insert of the key to end), insert, and back out if someone
 * inserted the key in between.  Returns false if the key exists; sets
 * *retry when the insertion lost a race and must be tried again.
 */
static bool
IdemInsertSpeculative(ResultRelInfo *rri, TupleTableSlot *slot,
					  EState *estate, bool *retry)
{
	Relation	rel = rri->ri_RelationDesc;
	ItemPointerData conflict_tid;
	bool		conflict = false;
	uint32		token;
	List	   *recheck;

	*retry = false;
	if (!ExecCheckIndexConstraints(rri, slot, estate, &conflict_tid, NIL))
	{
		IdemCheckConflictVisible(rel, &conflict_tid);
		return false;
	}
	token = SpeculativeInsertionLockAcquire(GetCurrentTransactionId());
	table_tuple_insert_speculative(rel, slot, estate->es_output_cid, 0, NULL,
								   token);
	recheck = ExecInsertIndexTuples(rri, slot, estate, false, true, &conflict,
									NIL);
	table_tuple_complete_speculative(rel, slot, token, !conflict);
	SpeculativeInsertionLockRelease(GetCurrentTransactionId());
	list_free(recheck);
	*retry = conflict;
	return !conflict;
}

/*
 * IdemInsert - claim a new key; false if the key exists.  This is begin's
 * hot path, so it does what INSERT ... ON CONFLICT DO NOTHING does without
 * planning a statement and starting an executor on every call.  The table
 * belongs to the extension and has no triggers, rules or policies to fire.
 */
static bool
IdemInsert(const IdemRequest *req)
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri = makeNode(ResultRelInfo);
	TupleTableSlot *slot;
	bool		inserted;
	bool		retry;

	PreventCommandIfReadOnly("idempotency_begin()");
	rel = IdemOpenTable(NULL, RowExclusiveLock);
	estate = CreateExecutorState();
	estate->es_output_cid = GetCurrentCommandId(true);
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, true);
	slot = ExecInitExtraTupleSlot(estate, RelationGetDescr(rel),
								  table_slot_callbacks(rel));
	IdemFillSlot(req, slot);
	do
	{
		CHECK_FOR_INTERRUPTS();
		inserted = IdemInsertSpeculative(rri, slot, estate, &retry);
	} while (retry);
	ExecResetTupleTable(estate->es_tupleTable, false);
	ExecCloseIndices(rri);
	FreeExecutorState(estate);
	table_close(rel, NoLock);
	/* later lookups, in this statement too, must see the new row */
	if (inserted)
		CommandCounterIncrement();
	return inserted;
}

/*
 * IdemLockRow - read the key's row locked FOR UPDATE; false if it is gone.
 */
static bool
IdemLockRow(const IdemRequest *req, IdemRow *row)
{
	Datum		values[2] = {PointerGetDatum(req->k.scope),
	PointerGetDatum(req->k.key)};
	SPIPlanPtr	plan = IdemPlan(&LockPlan,
								"SELECT " IDEM_ROW_COLUMNS " FROM " IDEM_QUALIFIED
								IDEM_WHERE_KEY " FOR UPDATE",
								2, KeyTypes);
	Datum		v[IDEM_ROW_NCOLS];
	bool		n[IDEM_ROW_NCOLS];

	if (IdemExec(plan, values) == 0)
		return false;
	heap_deform_tuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, v, n);
	IdemRowFromDatums(v, n, row, req->k.cxt);
	return true;
}

/*
 * IdemOverwrite - reuse an expired key (locked by us) for a new request.
 */
static void
IdemOverwrite(const IdemRequest *req)
{
	Datum		values[7];
	SPIPlanPtr	plan = IdemPlan(&OverwritePlan,
								"UPDATE " IDEM_QUALIFIED " SET fingerprint = $3,"
								" state = 'in_flight', recovery_point = NULL,"
								" response = NULL, error = NULL, created_at = $4,"
								" locked_until = $5, expires_at = $6, lease = $7"
								IDEM_WHERE_KEY,
								7, RowTypes);

	IdemRowValues(req, values);
	IdemExec(plan, values);
}

/*
 * IdemTakeover - give an in_flight key whose lease ran out (locked by us)
 * to this caller for a new lease.
 */
static void
IdemTakeover(const IdemRequest *req)
{
	Datum		values[4] = {PointerGetDatum(req->k.scope),
		PointerGetDatum(req->k.key),
		TimestampTzGetDatum(req->locked_until),
	PointerGetDatum(req->lease)};
	SPIPlanPtr	plan = IdemPlan(&TakeoverPlan,
								"UPDATE " IDEM_QUALIFIED " SET locked_until = $3,"
								" lease = $4, expires_at = GREATEST(expires_at, $3)"
								IDEM_WHERE_KEY,
								4, TakeoverTypes);

	IdemExec(plan, values);
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
					  IdemStateNames[row->state]),
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
			IdemOverwrite(req);
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
			IdemSetResult(res, IdemStateNames[row->state], row);
			break;
		case IDEM_TAKEOVER:
			IdemTakeover(req);
			payments_count(PM_STAT_IDEMPOTENCY_RESUMED, 1);
			IdemSetResult(res, "resumed", row);
			break;
		case IDEM_LOCK:
			elog(ERROR, "idempotency decision needs a locked row");
	}
}

/*
 * IdemDecideLocked - lock the key's row and act on it; false if it is gone.
 */
static bool
IdemDecideLocked(const IdemRequest *req, IdemResult *res)
{
	IdemRow		row;
	bool		exists;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	exists = IdemLockRow(req, &row);
	if (exists)
		IdemAct(req, &row, IdemDecide(req, &row, true), res);
	SPI_finish();
	return exists;
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
		if (!exists && IdemInsert(req))
		{
			IdemStarted(req, res);
			return;
		}
		exists = IdemDecideLocked(req, res);
		if (exists)
			return;
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
	bool		exists = IdemLookup(&req->k, &row);

	if (exists)
	{
		IdemDecision d = IdemDecide(req, &row, false);

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
 * IdemResultDesc - begin's result descriptor, built once per backend.
 */
static TupleDesc
IdemResultDesc(FunctionCallInfo fcinfo)
{
	static TupleDesc desc = NULL;
	TupleDesc	tupdesc;
	MemoryContext old;

	if (desc != NULL)
		return desc;
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE ||
		tupdesc->natts != 5)
		elog(ERROR, "return type must be a row type of 5 columns");
	old = MemoryContextSwitchTo(TopMemoryContext);
	desc = CreateTupleDescCopy(tupdesc);
	MemoryContextSwitchTo(old);
	return desc;
}

/*
 * IdemReturnResult - hand begin's one row to the executor in materialize
 * mode: a one-row tuplestore, which is what a function scan builds from a
 * value-per-call result anyway, and which a select-list call next to other
 * set-returning functions reads exactly once.
 */
static void
IdemReturnResult(FunctionCallInfo fcinfo, const IdemResult *res)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext old;
	Datum		values[5];
	bool		nulls[5] = {false};

	values[0] = CStringGetTextDatum(res->outcome);
	values[1] = PointerGetDatum(res->recovery_point);
	nulls[1] = res->recovery_point == NULL;
	values[2] = PointerGetDatum(res->response);
	nulls[2] = res->response == NULL;
	values[3] = PointerGetDatum(res->error);
	nulls[3] = res->error == NULL;
	values[4] = TimestampTzGetDatum(res->created_at);

	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	rsinfo->returnMode = SFRM_Materialize;
	/* the executor frees a descriptor it is given, so give it a copy */
	rsinfo->setDesc = CreateTupleDescCopy(IdemResultDesc(fcinfo));
	rsinfo->setResult = tuplestore_begin_heap(false, false, work_mem);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	MemoryContextSwitchTo(old);
}

PG_FUNCTION_INFO_V1(payments_idempotency_begin);

/*
 * payments_idempotency_begin - SQL idempotency_begin(key, request, scope,
 * ttl, lease): always one row.
 */
Datum
payments_idempotency_begin(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	IdemRequest req;
	IdemResult	res;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		(rsinfo->allowedModes & SFRM_Materialize) == 0)
		ereport(ERROR,
				errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				errmsg("set-valued function called in context that cannot accept a set"));
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

	if (!IdemLookup(k, &row))
		detail = pstrdup("The key does not exist.");
	else if (IdemExpired(&row, k->now))
		detail = pstrdup("The key has expired.");
	else
		detail = psprintf("The key is %s.", IdemStateNames[row.state]);
	ereport(ERROR,
			payments_errcode(PM_IDEMPOTENCY_INVALID_STATE),
			errmsg("cannot %s idempotency key \"%s\" in scope \"%s\": it is not in flight",
				   action, text_to_cstring(k->key), text_to_cstring(k->scope)),
			errdetail_internal("%s", detail),
			errhint("Only a key that idempotency_begin returned as started or resumed can be checkpointed, completed or failed."));
}

/*
 * IdemFinish - run a statement that changes a live in_flight key (params:
 * scope, key, value, now); PM003 when there is none.
 */
static void
IdemFinish(const IdemKey *k, SPIPlanPtr *cache, const char *sql,
		   const Oid *types, Datum value, const char *action)
{
	Datum		values[4] = {PointerGetDatum(k->scope), PointerGetDatum(k->key),
	value, TimestampTzGetDatum(k->now)};
	SPIPlanPtr	plan;
	uint64		n;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = IdemPlan(cache, sql, 4, types);
	n = IdemExec(plan, values);
	if (n == 0)
		IdemRaiseNotInFlight(k, action);
	SPI_finish();
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
	IdemFinish(&k, &CheckpointPlan,
			   "UPDATE " IDEM_QUALIFIED " SET recovery_point = $3,"
			   " locked_until = $4 OPERATOR(pg_catalog.+) lease,"
			   " expires_at = GREATEST(expires_at, $4 OPERATOR(pg_catalog.+) lease)"
			   IDEM_WHERE_LIVE,
			   SetTextTypes, PG_GETARG_DATUM(1), "checkpoint");
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
	IdemFinish(&k, &CompletePlan,
			   "UPDATE " IDEM_QUALIFIED " SET state = 'completed',"
			   " response = $3, locked_until = NULL" IDEM_WHERE_LIVE,
			   SetJsonbTypes, PG_GETARG_DATUM(1), "complete");
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
		IdemFinish(&k, &ForgetPlan,
				   "DELETE FROM " IDEM_QUALIFIED IDEM_WHERE_LIVE,
				   ForgetTypes, TimestampTzGetDatum(k.now), "fail");
	else
	{
		IdemArgNotNull(fcinfo, 1, "error");
		IdemFinish(&k, &FailPlan,
				   "UPDATE " IDEM_QUALIFIED " SET state = 'failed',"
				   " error = $3, locked_until = NULL" IDEM_WHERE_LIVE,
				   SetJsonbTypes, PG_GETARG_DATUM(1), "fail");
	}
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(payments_idempotency_purge);

/*
 * payments_idempotency_purge - SQL idempotency_purge(before): delete keys
 * expired before min(before, now) in batches, skipping rows others have
 * locked; in_flight keys whose lease runs are never expired.
 */
Datum
payments_idempotency_purge(PG_FUNCTION_ARGS)
{
	Datum		values[3];
	SPIPlanPtr	plan;
	int64		total = 0;
	uint64		n;

	IdemArgNotNull(fcinfo, 0, "before");
	values[0] = PG_GETARG_DATUM(0);
	values[1] = TimestampTzGetDatum(GetCurrentTimestamp());
	values[2] = Int32GetDatum(IDEM_PURGE_BATCH);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = IdemPlan(&PurgePlan,
					"DELETE FROM " IDEM_QUALIFIED " WHERE ctid OPERATOR(pg_catalog.=) ANY"
					" (ARRAY(SELECT ctid FROM " IDEM_QUALIFIED
					" WHERE expires_at OPERATOR(pg_catalog.<) $1"
					" AND expires_at OPERATOR(pg_catalog.<=) $2"
					" AND (state OPERATOR(pg_catalog.<>) 'in_flight'"
					" OR locked_until IS NULL OR locked_until OPERATOR(pg_catalog.<=) $2)"
					" LIMIT $3 FOR UPDATE SKIP LOCKED))",
					3, PurgeTypes);
	do
	{
		CHECK_FOR_INTERRUPTS();
		n = IdemExec(plan, values);
		total += n;
	} while (n == IDEM_PURGE_BATCH);
	SPI_finish();
	PG_RETURN_INT64(total);
}
