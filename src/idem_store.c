/*-------------------------------------------------------------------------
 *
 * idem_store.c
 *	  Idempotency keys: reading and writing payments.idempotency_keys.
 *
 * Replays and refusals are answered from a primary-key lookup, and a new
 * key is claimed with a speculative insertion (the protocol of INSERT ...
 * ON CONFLICT DO NOTHING), both directly through fastpath.c when the table
 * is exactly as the install script made it; otherwise, and for every other
 * statement, through the statements below (stmt.c), which fire whatever a
 * DBA added.  Every row read is copied into the caller's context.
 *
 * The SQL entry points run with their caller's rights (SECURITY INVOKER):
 * the direct paths check no privilege (the C code is the only writer), and
 * every statement runs as the table's owner with search_path pinned
 * (IdemSpiBegin), as a SECURITY DEFINER function would, but only where
 * SQL runs.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_collation_d.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "fastpath.h"
#include "idempotency.h"
#include "payments.h"
#include "stmt.h"

#define IDEM_QUALIFIED		PAYMENTS_SCHEMA ".idempotency_keys"
#define IDEM_PURGE_BATCH	10000

/* Attribute numbers of payments.idempotency_keys, in table order. */
enum
{
	IA_SCOPE = 1, IA_KEY, IA_FINGERPRINT, IA_STATE, IA_RECOVERY_POINT,
	IA_RESPONSE, IA_ERROR, IA_CREATED_AT, IA_LOCKED_UNTIL, IA_EXPIRES_AT,
	IA_LEASE, IA_TTL, IA_OWNER_TOKEN
};
#define IDEM_NATTS IA_OWNER_TOKEN

static const FpColumn IdemColumns[IDEM_NATTS] = {
	{"scope", TEXTOID, C_COLLATION_OID, true},
	{"key", TEXTOID, C_COLLATION_OID, true},
	{"fingerprint", BYTEAOID, InvalidOid, true},
	{"state", TEXTOID, DEFAULT_COLLATION_OID, true},
	{"recovery_point", TEXTOID, DEFAULT_COLLATION_OID, false},
	{"response", JSONBOID, InvalidOid, false},
	{"error", JSONBOID, InvalidOid, false},
	{"created_at", TIMESTAMPTZOID, InvalidOid, true},
	{"locked_until", TIMESTAMPTZOID, InvalidOid, false},
	{"expires_at", TIMESTAMPTZOID, InvalidOid, true},
	{"lease", INTERVALOID, InvalidOid, true},
	{"ttl", INTERVALOID, InvalidOid, true},
	{"owner_token", UUIDOID, InvalidOid, false},
};

static const char *const IdemChecks[] = {
	"idempotency_keys_key_check", "idempotency_keys_scope_check",
	"idempotency_keys_fingerprint_check", "idempotency_keys_state_check",
};

static FpTable IdemTable = {
	.relname = "idempotency_keys",
	.what = "idempotency key",
	.ncolumns = IDEM_NATTS,
	.columns = IdemColumns,
	.nchecks = lengthof(IdemChecks),
	.checks = IdemChecks,
};

/*
 * The columns a decision needs, in table order from fingerprint, cast to
 * the types this file reads whatever a DBA altered (a no-op otherwise).
 * IdemRowFromDatums reads them by position: lease and ttl are in the list
 * only to keep the table's order.
 */
#define IDEM_ROW_COLUMNS \
	"fingerprint::pg_catalog.bytea, state::pg_catalog.text," \
	" recovery_point::pg_catalog.text, response::pg_catalog.jsonb," \
	" error::pg_catalog.jsonb, created_at::pg_catalog.timestamptz," \
	" locked_until::pg_catalog.timestamptz, expires_at::pg_catalog.timestamptz," \
	" lease::pg_catalog.interval, ttl::pg_catalog.interval," \
	" owner_token::pg_catalog.uuid"
#define IDEM_ROW_NCOLS (IDEM_NATTS - IA_FINGERPRINT + 1)

/* "(scope, key) = ($1, $2)" with the operators schema-qualified. */
#define IDEM_WHERE_KEY \
	" WHERE scope OPERATOR(pg_catalog.=) $1 AND key OPERATOR(pg_catalog.=) $2"

/*
 * An in_flight row that has not expired, at time $4, owned by the token $5
 * (any owner when $5 is NULL).
 */
#define IDEM_WHERE_LIVE \
	IDEM_WHERE_KEY " AND state OPERATOR(pg_catalog.=) 'in_flight'" \
	" AND (expires_at OPERATOR(pg_catalog.>) $4" \
	" OR locked_until OPERATOR(pg_catalog.>) $4)" \
	" AND ($5 IS NULL OR owner_token OPERATOR(pg_catalog.=) $5)"

/*
 * A row the purge may delete: expired before $1 and now ($2), and not an
 * in_flight key whose lease still runs.
 */
#define IDEM_WHERE_PURGEABLE \
	" WHERE expires_at OPERATOR(pg_catalog.<) $1" \
	" AND expires_at OPERATOR(pg_catalog.<=) $2" \
	" AND (state OPERATOR(pg_catalog.<>) 'in_flight'" \
	" OR locked_until IS NULL OR locked_until OPERATOR(pg_catalog.<=) $2)"

/* A whole new in_flight row: $1 scope .. $9 token, as in IdemRowArgs. */
#define IDEM_ROW_ARGTYPES \
	{TEXTOID, TEXTOID, BYTEAOID, TIMESTAMPTZOID, TIMESTAMPTZOID, \
	TIMESTAMPTZOID, INTERVALOID, INTERVALOID, UUIDOID}

typedef enum IdemStmtId
{
	IDEM_STMT_LOOKUP,
	IDEM_STMT_INSERT,
	IDEM_STMT_LOCK,
	IDEM_STMT_OVERWRITE,
	IDEM_STMT_TAKEOVER,
	IDEM_STMT_FINISH,
	IDEM_STMT_FORGET,
	IDEM_STMT_PURGE,
	IDEM_STMT_PURGE_CITUS,
	IDEM_NSTMTS
} IdemStmtId;

static PmStmt IdemStmts[IDEM_NSTMTS] = {
	[IDEM_STMT_LOOKUP] = {
		"SELECT " IDEM_ROW_COLUMNS " FROM " IDEM_QUALIFIED IDEM_WHERE_KEY,
		2, {TEXTOID, TEXTOID}
	},
	[IDEM_STMT_INSERT] = {
		"INSERT INTO " IDEM_QUALIFIED " (scope, key, fingerprint, state,"
		" created_at, locked_until, expires_at, lease, ttl, owner_token)"
		" VALUES ($1, $2, $3, 'in_flight', $4, $5, $6, $7, $8, $9)"
		" ON CONFLICT (scope, key) DO NOTHING",
		9, IDEM_ROW_ARGTYPES
	},
	[IDEM_STMT_LOCK] = {
		"SELECT " IDEM_ROW_COLUMNS " FROM " IDEM_QUALIFIED IDEM_WHERE_KEY
		" FOR UPDATE",
		2, {TEXTOID, TEXTOID}
	},
	[IDEM_STMT_OVERWRITE] = {
		"UPDATE " IDEM_QUALIFIED " SET fingerprint = $3,"
		" state = 'in_flight', recovery_point = NULL,"
		" response = NULL, error = NULL, created_at = $4,"
		" locked_until = $5, expires_at = $6, lease = $7, ttl = $8,"
		" owner_token = $9" IDEM_WHERE_KEY,
		9, IDEM_ROW_ARGTYPES
	},
	[IDEM_STMT_TAKEOVER] = {
		"UPDATE " IDEM_QUALIFIED " SET locked_until = $3,"
		" lease = $4, expires_at = GREATEST(expires_at, $3),"
		" owner_token = $5" IDEM_WHERE_KEY,
		5, {TEXTOID, TEXTOID, TIMESTAMPTZOID, INTERVALOID, UUIDOID}
	},
	/*
	 * the new values of a finished row, computed by IdemFinishValues from
	 * the row locked by IDEM_STMT_LOCK: Citus, which plans this too, cannot
	 * run "now + ttl" (a stable function of a column) on its shards
	 */
	[IDEM_STMT_FINISH] = {
		"UPDATE " IDEM_QUALIFIED " SET state = $3, recovery_point = $4,"
		" response = $5, error = $6, locked_until = $7, expires_at = $8"
		IDEM_WHERE_KEY,
		8, {TEXTOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, JSONBOID,
		TIMESTAMPTZOID, TIMESTAMPTZOID}
	},
	[IDEM_STMT_FORGET] = {
		"DELETE FROM " IDEM_QUALIFIED IDEM_WHERE_LIVE,
		5, {TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, UUIDOID}
	},
	[IDEM_STMT_PURGE] = {
		"DELETE FROM " IDEM_QUALIFIED " WHERE ctid OPERATOR(pg_catalog.=) ANY"
		" (ARRAY(SELECT ctid FROM " IDEM_QUALIFIED IDEM_WHERE_PURGEABLE
		" LIMIT $3 FOR UPDATE SKIP LOCKED))",
		3, {TIMESTAMPTZOID, TIMESTAMPTZOID, INT4OID}
	},
	/*
	 * on Citus, which locks no rows across shards: a batch picked without
	 * locks, and each row checked again when the DELETE has it locked (it
	 * waits for a row another transaction holds)
	 */
	[IDEM_STMT_PURGE_CITUS] = {
		"DELETE FROM " IDEM_QUALIFIED IDEM_WHERE_PURGEABLE
		" AND (scope, key) IN (SELECT scope, key FROM " IDEM_QUALIFIED
		IDEM_WHERE_PURGEABLE " LIMIT $3)",
		3, {TIMESTAMPTZOID, TIMESTAMPTZOID, INT4OID}
	},
};

/* The columns IDEM_STMT_FINISH sets, $3 onwards. */
static const int IdemFinishColumns[] = {
	IA_STATE, IA_RECOVERY_POINT, IA_RESPONSE, IA_ERROR, IA_LOCKED_UNTIL,
	IA_EXPIRES_AT
};

/* The name of each kind of finish in messages. */
static const char *const IdemFinishCommands[] = {
	[IDEM_FINISH_CHECKPOINT] = "payments.idempotency_checkpoint",
	[IDEM_FINISH_COMPLETE] = "payments.idempotency_complete",
	[IDEM_FINISH_FAIL] = "payments.idempotency_fail",
	[IDEM_FINISH_FORGET] = "payments.idempotency_fail",
};

const char *const IdemStateNames[] = {"in_flight", "completed", "failed"};

/*
 * IdemStateFromName - the state of a stored state name.
 */
static IdemState
IdemStateFromName(const char *name)
{
	for (int i = 0; i <= IDEM_FAILED; i++)
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
	row->facts.state = IdemStateFromName(state);
	row->recovery_point = n[2] ? NULL : DatumGetTextPCopy(v[2]);
	row->response = n[3] ? NULL : DatumGetJsonbPCopy(v[3]);
	row->error = n[4] ? NULL : DatumGetJsonbPCopy(v[4]);
	row->created_at = DatumGetTimestampTz(v[5]);
	row->facts.leased = !n[6];
	row->facts.locked_until = n[6] ? 0 : DatumGetTimestampTz(v[6]);
	row->facts.expires_at = DatumGetTimestampTz(v[7]);
	row->has_owner = !n[10];
	if (!n[10])
		row->owner_token = *DatumGetUUIDP(v[10]);
	MemoryContextSwitchTo(old);
}

/*
 * IdemRowFromResult - the first row of an IDEM_ROW_COLUMNS result.
 */
static void
IdemRowFromResult(IdemRow *row, MemoryContext cxt)
{
	Datum		v[IDEM_ROW_NCOLS];
	bool		n[IDEM_ROW_NCOLS];

	for (int i = 0; i < IDEM_ROW_NCOLS; i++)
		v[i] = pm_stmt_value(0, i + 1, &n[i]);
	IdemRowFromDatums(v, n, row, cxt);
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
 * IdemRowArgs - a whole new in_flight row as IDEM_ROW_ARGTYPES arguments.
 */
static void
IdemRowArgs(const IdemRequest *req, Datum *args)
{
	args[0] = PointerGetDatum(req->k.scope);
	args[1] = PointerGetDatum(req->k.key);
	args[2] = IdemFingerprintDatum(req);
	args[3] = TimestampTzGetDatum(req->k.now);
	args[4] = TimestampTzGetDatum(req->locked_until);
	args[5] = TimestampTzGetDatum(req->expires_at);
	args[6] = PointerGetDatum(req->lease);
	args[7] = PointerGetDatum(req->ttl);
	args[8] = UUIDPGetDatum(&req->new_token);
}

/*
 * IdemKeyScan - scan keys on the primary key's columns for (scope, key).
 */
static void
IdemKeyScan(const IdemKey *k, ScanKey skey)
{
	ScanKeyInit(&skey[0], 1, BTEqualStrategyNumber, F_TEXTEQ,
				PointerGetDatum(k->scope));
	ScanKeyInit(&skey[1], 2, BTEqualStrategyNumber, F_TEXTEQ,
				PointerGetDatum(k->key));
}

/*
 * IdemSpiBegin - bracket statements on the keys table as its owner: the
 * SQL entry points run with their caller's rights (see stmt.h).
 */
static void
IdemSpiBegin(PmSpiCall *call, Relation rel)
{
	pm_spi_begin(call, rel->rd_rel->relowner);
}

/*
 * IdemLookupFast - the lookup through the primary key index.
 */
static bool
IdemLookupFast(const IdemKey *k, Relation rel, IdemRow *row)
{
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	ScanKeyData skey[2];
	bool		found;

	IdemKeyScan(k, skey);
	found = fp_fetch(&IdemTable, rel, skey, 2, slot);
	if (found)
		IdemRowFromDatums(slot->tts_values + IA_FINGERPRINT - 1,
						  slot->tts_isnull + IA_FINGERPRINT - 1, row, k->cxt);
	ExecDropSingleTupleTableSlot(slot);
	return found;
}

/*
 * IdemReadRowSpi - run a statement that reads the key's row (IDEM_STMT_LOOKUP
 * or IDEM_STMT_LOCK) and copy the row into the caller's context.
 */
static bool
IdemReadRowSpi(IdemStmtId stmt, const IdemKey *k, IdemRow *row, Relation rel)
{
	Datum		args[2] = {PointerGetDatum(k->scope), PointerGetDatum(k->key)};
	PmSpiCall	call;
	bool		found;

	IdemSpiBegin(&call, rel);
	found = pm_stmt_exec(&IdemStmts[stmt], args, NULL) > 0;
	if (found)
		IdemRowFromResult(row, call.caller);
	pm_spi_end(&call);
	return found;
}

/*
 * idem_store_lookup - read the key's row without locking it, as a new
 * statement would see it; false if there is none.
 */
bool
idem_store_lookup(const IdemKey *k, IdemRow *row)
{
	Relation	rel = fp_open(&IdemTable, AccessShareLock);
	bool		found;

	if (fp_exact(&IdemTable, rel))
		found = IdemLookupFast(k, rel, row);
	else
		found = IdemReadRowSpi(IDEM_STMT_LOOKUP, k, row, rel);
	table_close(rel, NoLock);
	return found;
}

/*
 * IdemInsertFast - the speculative insertion of a new in_flight row.  Its
 * values satisfy the table's CHECK constraints by construction: key and
 * scope were validated, the fingerprint is 32 bytes.
 */
static bool
IdemInsertFast(const IdemRequest *req, Relation rel)
{
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	Datum	   *v = slot->tts_values;
	bool	   *n = slot->tts_isnull;
	Datum		args[9];
	bool		inserted;

	IdemRowArgs(req, args);
	ExecClearTuple(slot);
	memset(n, false, IDEM_NATTS * sizeof(bool));
	v[IA_SCOPE - 1] = args[0];
	v[IA_KEY - 1] = args[1];
	v[IA_FINGERPRINT - 1] = args[2];
	v[IA_STATE - 1] = CStringGetTextDatum(IdemStateNames[IDEM_IN_FLIGHT]);
	n[IA_RECOVERY_POINT - 1] = n[IA_RESPONSE - 1] = n[IA_ERROR - 1] = true;
	v[IA_CREATED_AT - 1] = args[3];
	v[IA_LOCKED_UNTIL - 1] = args[4];
	v[IA_EXPIRES_AT - 1] = args[5];
	v[IA_LEASE - 1] = args[6];
	v[IA_TTL - 1] = args[7];
	v[IA_OWNER_TOKEN - 1] = args[8];
	ExecStoreVirtualTuple(slot);
	inserted = fp_insert_speculative(&IdemTable, rel, slot);
	ExecDropSingleTupleTableSlot(slot);
	return inserted;
}

/*
 * IdemInsertSpi - the insertion as INSERT ... ON CONFLICT DO NOTHING.
 */
static bool
IdemInsertSpi(const IdemRequest *req, Relation rel)
{
	Datum		args[9];
	PmSpiCall	call;
	bool		inserted;

	IdemRowArgs(req, args);
	IdemSpiBegin(&call, rel);
	inserted = pm_stmt_exec(&IdemStmts[IDEM_STMT_INSERT], args, NULL) > 0;
	pm_spi_end(&call);
	return inserted;
}

/*
 * idem_store_insert - claim a new key; false if the key exists.  A caller
 * racing an uncommitted insert of the same key waits for that
 * transaction, as with a unique index.
 */
bool
idem_store_insert(const IdemRequest *req)
{
	Relation	rel;
	bool		inserted;

	pm_require_writable("payments.idempotency_begin");
	rel = fp_open(&IdemTable, RowExclusiveLock);
	if (fp_exact(&IdemTable, rel))
		inserted = IdemInsertFast(req, rel);
	else
		inserted = IdemInsertSpi(req, rel);
	table_close(rel, NoLock);
	return inserted;
}

/*
 * idem_store_lock - read the key's row locked FOR UPDATE; false if it is
 * gone.
 */
bool
idem_store_lock(const IdemRequest *req, IdemRow *row)
{
	Relation	rel = fp_open(&IdemTable, RowShareLock);
	bool		found = IdemReadRowSpi(IDEM_STMT_LOCK, &req->k, row, rel);

	table_close(rel, NoLock);
	return found;
}

/*
 * idem_store_overwrite - reuse an expired key (locked by us) for a new
 * request.
 */
void
idem_store_overwrite(const IdemRequest *req)
{
	Datum		args[9];
	Relation	rel = fp_open(&IdemTable, RowExclusiveLock);
	PmSpiCall	call;

	IdemRowArgs(req, args);
	IdemSpiBegin(&call, rel);
	pm_stmt_exec(&IdemStmts[IDEM_STMT_OVERWRITE], args, NULL);
	pm_spi_end(&call);
	table_close(rel, NoLock);
}

/*
 * idem_store_takeover - give an in_flight key whose lease ran out (locked
 * by us) to this caller for a new lease.
 */
void
idem_store_takeover(const IdemRequest *req)
{
	Datum		args[5] = {PointerGetDatum(req->k.scope),
		PointerGetDatum(req->k.key),
		TimestampTzGetDatum(req->locked_until),
		PointerGetDatum(req->lease),
	UUIDPGetDatum(&req->new_token)};
	Relation	rel = fp_open(&IdemTable, RowExclusiveLock);
	PmSpiCall	call;

	IdemSpiBegin(&call, rel);
	pm_stmt_exec(&IdemStmts[IDEM_STMT_TAKEOVER], args, NULL);
	pm_spi_end(&call);
	table_close(rel, NoLock);
}

/*
 * IdemPlus - ts + iv; the intervals stored are at most 100 years.
 */
static Datum
IdemPlus(TimestampTz ts, Datum iv)
{
	return DirectFunctionCall2(timestamptz_pl_interval,
							   TimestampTzGetDatum(ts), iv);
}

/*
 * IdemLiveFor - IDEM_WHERE_LIVE on a locked row's values: in flight, not
 * expired at now, and owned by the caller's token when it gave one.
 */
static bool
IdemLiveFor(const IdemKey *k, const Datum *v, const bool *n)
{
	char	   *state = TextDatumGetCString(v[IA_STATE - 1]);
	TimestampTz expires_at = DatumGetTimestampTz(v[IA_EXPIRES_AT - 1]);
	bool		leased = !n[IA_LOCKED_UNTIL - 1] &&
		DatumGetTimestampTz(v[IA_LOCKED_UNTIL - 1]) > k->now;

	if (strcmp(state, IdemStateNames[IDEM_IN_FLIGHT]) != 0 ||
		!(expires_at > k->now || leased))
		return false;
	return k->token == NULL ||
		(!n[IA_OWNER_TOKEN - 1] &&
		 memcmp(DatumGetUUIDP(v[IA_OWNER_TOKEN - 1]), k->token, UUID_LEN) == 0);
}

/*
 * IdemFinishValues - the new values of a row after a checkpoint, complete
 * or fail, as the statements of IdemStmts set them.
 */
static void
IdemFinishValues(const IdemKey *k, IdemFinishKind kind, Datum value,
				 Datum *v, bool *n)
{
	Datum		keep_until;
	int			slot = kind == IDEM_FINISH_CHECKPOINT ? IA_RECOVERY_POINT :
		kind == IDEM_FINISH_COMPLETE ? IA_RESPONSE : IA_ERROR;

	v[slot - 1] = value;
	n[slot - 1] = false;
	if (kind == IDEM_FINISH_CHECKPOINT)
	{
		keep_until = IdemPlus(k->now, v[IA_LEASE - 1]);
		v[IA_LOCKED_UNTIL - 1] = keep_until;
		n[IA_LOCKED_UNTIL - 1] = false;
	}
	else
	{
		keep_until = IdemPlus(k->now, v[IA_TTL - 1]);
		v[IA_STATE - 1] = CStringGetTextDatum(IdemStateNames[kind == IDEM_FINISH_COMPLETE ?
															 IDEM_COMPLETED : IDEM_FAILED]);
		n[IA_LOCKED_UNTIL - 1] = true;
	}
	if (DatumGetTimestampTz(keep_until) > DatumGetTimestampTz(v[IA_EXPIRES_AT - 1]))
		v[IA_EXPIRES_AT - 1] = keep_until;
}

/*
 * IdemFinishFast - the finish on the row locked directly, as the UPDATE or
 * DELETE of IdemStmts would do it; false when there is no live row.
 */
static bool
IdemFinishFast(const IdemKey *k, IdemFinishKind kind, Datum value,
			   Relation rel)
{
	TupleTableSlot *old = table_slot_create(rel, NULL);
	TupleTableSlot *new;
	ScanKeyData skey[2];
	bool		live;

	/* like UPDATE: only a row that matches is locked, and checked again */
	IdemKeyScan(k, skey);
	live = fp_fetch(&IdemTable, rel, skey, 2, old) &&
		IdemLiveFor(k, old->tts_values, old->tts_isnull) &&
		fp_lock(&IdemTable, rel, old) &&
		IdemLiveFor(k, old->tts_values, old->tts_isnull);
	if (live && kind == IDEM_FINISH_FORGET)
		fp_delete(&IdemTable, rel, old);
	else if (live)
	{
		new = table_slot_create(rel, NULL);
		ExecClearTuple(new);
		memcpy(new->tts_values, old->tts_values, IDEM_NATTS * sizeof(Datum));
		memcpy(new->tts_isnull, old->tts_isnull, IDEM_NATTS * sizeof(bool));
		IdemFinishValues(k, kind, value, new->tts_values, new->tts_isnull);
		ExecStoreVirtualTuple(new);
		fp_update(&IdemTable, rel, old, new);
		ExecDropSingleTupleTableSlot(new);
	}
	ExecDropSingleTupleTableSlot(old);
	return live;
}

/*
 * IdemForgetSpi - the forget as its statement.
 */
static bool
IdemForgetSpi(const IdemKey *k, Relation rel)
{
	Datum		args[5] = {PointerGetDatum(k->scope), PointerGetDatum(k->key),
		TimestampTzGetDatum(k->now), TimestampTzGetDatum(k->now),
	UUIDPGetDatum(k->token)};
	char		nulls[5] = {' ', ' ', ' ', ' ', k->token ? ' ' : 'n'};
	PmSpiCall	call;
	uint64		n;

	IdemSpiBegin(&call, rel);
	n = pm_stmt_exec(&IdemStmts[IDEM_STMT_FORGET], args, nulls);
	pm_spi_end(&call);
	return n > 0;
}

/*
 * IdemFinishSpi - a checkpoint, complete or fail through statements: the
 * row locked FOR UPDATE, checked and changed as IdemFinishFast does.
 */
static bool
IdemFinishSpi(const IdemKey *k, IdemFinishKind kind, Datum value,
			  Relation rel)
{
	Datum		key[2] = {PointerGetDatum(k->scope), PointerGetDatum(k->key)};
	Datum		v[IDEM_NATTS];
	bool		n[IDEM_NATTS] = {false};
	Datum		args[8];
	char		nulls[8];
	PmSpiCall	call;
	bool		live = false;

	IdemSpiBegin(&call, rel);
	if (pm_stmt_exec(&IdemStmts[IDEM_STMT_LOCK], key, NULL) > 0)
	{
		for (int i = 0; i < IDEM_ROW_NCOLS; i++)
			v[IA_FINGERPRINT - 1 + i] = pm_stmt_value(0, i + 1,
													  &n[IA_FINGERPRINT - 1 + i]);
		live = IdemLiveFor(k, v, n);
	}
	if (live)
	{
		IdemFinishValues(k, kind, value, v, n);
		args[0] = key[0];
		args[1] = key[1];
		nulls[0] = nulls[1] = ' ';
		for (size_t i = 0; i < lengthof(IdemFinishColumns); i++)
		{
			args[2 + i] = v[IdemFinishColumns[i] - 1];
			nulls[2 + i] = n[IdemFinishColumns[i] - 1] ? 'n' : ' ';
		}
		pm_stmt_exec(&IdemStmts[IDEM_STMT_FINISH], args, nulls);
	}
	pm_spi_end(&call);
	return live;
}

/*
 * idem_store_finish - checkpoint, complete, fail or forget a live in_flight
 * key (of the caller's token, when it gave one); false when there is none.
 */
bool
idem_store_finish(const IdemKey *k, IdemFinishKind kind, Datum value)
{
	Relation	rel;
	bool		done;

	pm_require_writable(IdemFinishCommands[kind]);
	rel = fp_open(&IdemTable, RowExclusiveLock);
	if (fp_exact(&IdemTable, rel))
		done = IdemFinishFast(k, kind, value, rel);
	else if (kind == IDEM_FINISH_FORGET)
		done = IdemForgetSpi(k, rel);
	else
		done = IdemFinishSpi(k, kind, value, rel);
	table_close(rel, NoLock);
	return done;
}

/*
 * idem_store_purge - delete keys expired before min(before, now) in
 * batches, at most max_rows (no limit when negative), skipping rows others
 * have locked; in_flight keys whose lease runs are never expired.  Returns
 * the number deleted.
 */
int64
idem_store_purge(TimestampTz before, int64 max_rows)
{
	Datum		args[3] = {TimestampTzGetDatum(before),
	TimestampTzGetDatum(GetCurrentTimestamp())};
	int64		total = 0;
	int32		batch;
	uint64		n;
	Relation	rel = fp_open(&IdemTable, RowExclusiveLock);
	PmStmt	   *purge = &IdemStmts[fp_citus(&IdemTable, rel) ?
								   IDEM_STMT_PURGE_CITUS : IDEM_STMT_PURGE];
	PmSpiCall	call;

	IdemSpiBegin(&call, rel);
	do
	{
		CHECK_FOR_INTERRUPTS();
		batch = max_rows < 0 ? IDEM_PURGE_BATCH :
			(int32) Min(IDEM_PURGE_BATCH, max_rows - total);
		if (batch == 0)
			break;
		args[2] = Int32GetDatum(batch);
		n = pm_stmt_exec(purge, args, NULL);
		total += n;
	} while (n == (uint64) batch);
	pm_spi_end(&call);
	table_close(rel, NoLock);
	return total;
}
