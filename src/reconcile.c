/*-------------------------------------------------------------------------
 *
 * reconcile.c
 *	  Ledger reconciliation: what the database recorded against what the
 *	  gateway settled, one transaction id at a time.
 *
 * One run reads both sources in a single statement, their rows of the
 * window merged and sorted by transaction id (in byte order), then side,
 * then the row's values; the executor sorts within work_mem and spills
 * beyond it.  The rows stream into a DestReceiver that keeps only the
 * current transaction id's first row of each side and row counts, and
 * classifies the id when the next one starts: so memory does not grow with
 * the window, and the same data gives the same findings in the same order.
 * The findings go to a tuplestore (work_mem, then disk), which one INSERT
 * reads as an ephemeral named relation once the scan is over.
 *
 * The sources are read with the caller's rights (privileges and row
 * security apply); the run and its findings are written as the owner of
 * payments.reconciliation_runs, in the caller's transaction, so a run that
 * fails or is cancelled half-way leaves nothing behind.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/params.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/queryenvironment.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "payments.h"
#include "reconcile.h"
#include "stats.h"
#include "stmt.h"

/* The kinds of finding, in the order of one transaction's findings. */
typedef enum RcKind
{
	RC_MISSING_INTERNAL,
	RC_MISSING_GATEWAY,
	RC_AMOUNT_MISMATCH,
	RC_CURRENCY_MISMATCH,
	RC_STATUS_MISMATCH,
	RC_DUPLICATE_INTERNAL,
	RC_DUPLICATE_GATEWAY,
	RC_NKINDS
} RcKind;

static const char *const RcKindNames[RC_NKINDS] = {
	"missing_internal", "missing_gateway", "amount_mismatch",
	"currency_mismatch", "status_mismatch", "duplicate_internal",
	"duplicate_gateway"
};

/* The columns every source must have. */
static const char *const RcSourceColumns[] = {
	"transaction_id", "amount", "currency", "status", "occurred_at"
};

/* The columns of the scan: the side, then a source's five. */
typedef enum RcCol
{
	RC_COL_SIDE,
	RC_COL_TID,
	RC_COL_AMOUNT,
	RC_COL_CURRENCY,
	RC_COL_STATUS,
	RC_COL_OCCURRED_AT,
	RC_NCOLS
} RcCol;

#define RC_INTERNAL 0
#define RC_GATEWAY 1

/* The name under which the INSERT reads the findings. */
#define RC_FOUND_RELATION "payments_reconcile_found"

/* One side of the current transaction id: its first row, its row count. */
typedef struct RcSide
{
	int64		rows;
	Datum		values[RC_NCOLS];
	bool		nulls[RC_NCOLS];
} RcSide;

/* A row of payments.status_map. */
typedef struct RcStatusPair
{
	const char *internal;
	const char *gateway;
} RcStatusPair;

/* The scan's receiver: classifies each transaction id as its rows arrive. */
typedef struct RcScan
{
	DestReceiver pub;
	Numeric		tolerance;		/* NULL: amounts must be equal */
	RcStatusPair *pairs;		/* sorted, for bsearch */
	int			npairs;
	MemoryContext groupcxt;		/* the current id's rows; reset per id */
	MemoryContext rowcxt;		/* reset per row */
	text	   *tid;			/* the current id; NULL before the first */
	RcSide		side[2];
	Tuplestorestate *found;
	TupleDesc	founddesc;
	int32		seq;
	int64		rows[2];
	int64		transactions;
	int64		matched;
	int64		counts[RC_NKINDS];
} RcScan;

/* The run's statements that do not depend on the sources. */
typedef enum RcStmtId
{
	RC_STMT_STATUS_MAP,
	RC_STMT_START,
	RC_STMT_FINISH,
	RC_NSTMTS
} RcStmtId;

static PmStmt RcStmts[RC_NSTMTS] = {
	[RC_STMT_STATUS_MAP] = {
		"SELECT internal_status, gateway_status FROM " PAYMENTS_SCHEMA ".status_map",
		0, {0}
	},
	[RC_STMT_START] = {
		"INSERT INTO " PAYMENTS_SCHEMA ".reconciliation_runs"
		" (window_start, window_end, internal_source, gateway_source, tolerance,"
		"  triggered_by, run_by, started_at)"
		" VALUES ($1, $2, $3, $4, $5, $6, $7, pg_catalog.clock_timestamp())"
		" RETURNING id",
		7, {TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, NUMERICOID,
		TEXTOID, NAMEOID}
	},
	[RC_STMT_FINISH] = {
		"UPDATE " PAYMENTS_SCHEMA ".reconciliation_runs"
		" SET finished_at = pg_catalog.clock_timestamp(), internal_rows = $2,"
		"  gateway_rows = $3, transactions = $4, matched = $5,"
		"  discrepancies = $6, counts = $7, summary = $8"
		" WHERE id = $1",
		8, {INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, JSONBOID,
		TEXTOID}
	},
};

/*
 * RcExec - run one of the module's statements; the rows it processed.
 */
static uint64
RcExec(RcStmtId id, const Datum *args)
{
	return pm_stmt_exec(&RcStmts[id], args, NULL);
}

/*
 * RcSourceName - the schema-qualified, quoted name of a source, after
 * checking that it has the five columns a source needs.
 */
static char *
RcSourceName(Oid relid)
{
	char	   *relname = get_rel_name(relid);

	if (relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("reconciliation source %u does not exist", relid)));
	for (int i = 0; i < (int) lengthof(RcSourceColumns); i++)
	{
		if (get_attnum(relid, RcSourceColumns[i]) == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("reconciliation source %s has no column \"%s\"",
							relname, RcSourceColumns[i]),
					 errhint("A source is a table or view with the columns transaction_id, amount, currency, status and occurred_at.")));
	}
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  relname);
}

/*
 * RcScanSql - the statement that reads both sources' rows of the window,
 * in the order the receiver needs.
 */
static char *
RcScanSql(const char *internal, const char *gateway)
{
	StringInfoData sql;
	const char *const sources[2] = {internal, gateway};

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT side, tid, amount, currency, status, occurred_at FROM (");
	for (int side = 0; side < 2; side++)
		appendStringInfo(&sql,
						 "%s SELECT %d AS side,"
						 " s.transaction_id::text COLLATE \"C\" AS tid,"
						 " s.amount::numeric AS amount,"
						 " s.currency::text COLLATE \"C\" AS currency,"
						 " s.status::text COLLATE \"C\" AS status,"
						 " s.occurred_at::timestamptz AS occurred_at"
						 " FROM %s AS s WHERE s.occurred_at >= $1"
						 " AND s.occurred_at < $2 AND s.transaction_id IS NOT NULL",
						 side == 0 ? "" : " UNION ALL", side, sources[side]);
	appendStringInfoString(&sql, ") AS r ORDER BY tid, side, amount, currency, status, occurred_at");
	return sql.data;
}

/*
 * RcPairCmp - order of status pairs, for sorting and bsearch.
 */
static int
RcPairCmp(const void *a, const void *b)
{
	const RcStatusPair *pa = a;
	const RcStatusPair *pb = b;
	int			c = strcmp(pa->internal, pb->internal);

	return c != 0 ? c : strcmp(pa->gateway, pb->gateway);
}

/*
 * RcLoadStatusMap - payments.status_map, sorted, copied into runcxt.
 */
static void
RcLoadStatusMap(RcScan *scan, MemoryContext runcxt)
{
	uint64		n = RcExec(RC_STMT_STATUS_MAP, NULL);
	SPITupleTable *tt = SPI_tuptable;

	scan->npairs = (int) n;
	scan->pairs = MemoryContextAllocZero(runcxt, sizeof(RcStatusPair) * (n + 1));
	for (uint64 i = 0; i < n; i++)
	{
		scan->pairs[i].internal =
			MemoryContextStrdup(runcxt, SPI_getvalue(tt->vals[i], tt->tupdesc, 1));
		scan->pairs[i].gateway =
			MemoryContextStrdup(runcxt, SPI_getvalue(tt->vals[i], tt->tupdesc, 2));
	}
	qsort(scan->pairs, n, sizeof(RcStatusPair), RcPairCmp);
}

/*
 * RcSameText - whether two texts are byte for byte the same; with fold,
 * ignoring ASCII case (currency codes).
 */
static bool
RcSameText(Datum a, Datum b, bool fold)
{
	text	   *ta = DatumGetTextPP(a);
	text	   *tb = DatumGetTextPP(b);
	Size		len = VARSIZE_ANY_EXHDR(ta);

	if (len != VARSIZE_ANY_EXHDR(tb))
		return false;
	if (fold)
		return pg_strncasecmp(VARDATA_ANY(ta), VARDATA_ANY(tb), len) == 0;
	return memcmp(VARDATA_ANY(ta), VARDATA_ANY(tb), len) == 0;
}

/*
 * RcSame - whether one column agrees on both sides; NULL agrees only with
 * NULL.
 */
static bool
RcSame(const RcScan *scan, RcCol col)
{
	const RcSide *in = &scan->side[RC_INTERNAL];
	const RcSide *gw = &scan->side[RC_GATEWAY];
	Datum		a = in->values[col];
	Datum		b = gw->values[col];

	if (in->nulls[col] || gw->nulls[col])
		return in->nulls[col] && gw->nulls[col];
	switch (col)
	{
		case RC_COL_AMOUNT:
			if (scan->tolerance == NULL)
				return DatumGetInt32(DirectFunctionCall2(numeric_cmp, a, b)) == 0;
			return DatumGetInt32(DirectFunctionCall2(numeric_cmp,
													 DirectFunctionCall1(numeric_abs,
																		 DirectFunctionCall2(numeric_sub, a, b)),
													 NumericGetDatum(scan->tolerance))) <= 0;
		case RC_COL_CURRENCY:
			return RcSameText(a, b, true);
		case RC_COL_STATUS:
			{
				RcStatusPair key;

				if (RcSameText(a, b, false))
					return true;
				key.internal = TextDatumGetCString(a);
				key.gateway = TextDatumGetCString(b);
				return bsearch(&key, scan->pairs, scan->npairs,
							   sizeof(RcStatusPair), RcPairCmp) != NULL;
			}
		default:
			elog(ERROR, "unexpected reconciliation column %d", (int) col);
	}
	return false;
}

/*
 * RcEmit - record one finding about the current transaction id.
 */
static void
RcEmit(RcScan *scan, RcKind kind)
{
	Datum		values[13];
	bool		nulls[13] = {0};
	int			n = 0;

	values[n++] = Int32GetDatum(++scan->seq);
	values[n++] = PointerGetDatum(scan->tid);
	values[n++] = CStringGetTextDatum(RcKindNames[kind]);
	for (int s = 0; s < 2; s++)
	{
		const RcSide *side = &scan->side[s];

		values[n++] = Int32GetDatum((int32) Min(side->rows, PG_INT32_MAX));
		for (int col = RC_COL_AMOUNT; col < RC_NCOLS; col++, n++)
		{
			values[n] = side->values[col];
			nulls[n] = side->rows == 0 || side->nulls[col];
		}
	}
	tuplestore_putvalues(scan->found, scan->founddesc, values, nulls);
	scan->counts[kind]++;
}

/*
 * RcClassify - the findings about the current transaction id.  Duplicates
 * are reported as such and not compared further (which of the rows would
 * be the transaction is the question for the analyst); a currency
 * difference is not an amount difference as well.
 */
static void
RcClassify(RcScan *scan)
{
	const RcSide *in = &scan->side[RC_INTERNAL];
	const RcSide *gw = &scan->side[RC_GATEWAY];
	int32		seq = scan->seq;

	scan->transactions++;
	if (in->rows == 0)
		RcEmit(scan, RC_MISSING_INTERNAL);
	if (gw->rows == 0)
		RcEmit(scan, RC_MISSING_GATEWAY);
	if (in->rows == 1 && gw->rows == 1)
	{
		bool		same_currency = RcSame(scan, RC_COL_CURRENCY);

		if (same_currency && !RcSame(scan, RC_COL_AMOUNT))
			RcEmit(scan, RC_AMOUNT_MISMATCH);
		if (!same_currency)
			RcEmit(scan, RC_CURRENCY_MISMATCH);
		if (!RcSame(scan, RC_COL_STATUS))
			RcEmit(scan, RC_STATUS_MISMATCH);
	}
	if (in->rows > 1)
		RcEmit(scan, RC_DUPLICATE_INTERNAL);
	if (gw->rows > 1)
		RcEmit(scan, RC_DUPLICATE_GATEWAY);
	if (scan->seq == seq)
		scan->matched++;
}

/*
 * RcReceive - the receiver's slot callback: one row of either side.
 */
static bool
RcReceive(TupleTableSlot *slot, DestReceiver *self)
{
	RcScan	   *scan = (RcScan *) self;
	MemoryContext old;
	RcSide	   *side;
	int			s;

	MemoryContextReset(scan->rowcxt);
	old = MemoryContextSwitchTo(scan->rowcxt);
	slot_getallattrs(slot);
	s = DatumGetInt32(slot->tts_values[RC_COL_SIDE]) == 0 ? RC_INTERNAL : RC_GATEWAY;
	if (scan->tid == NULL ||
		!RcSameText(PointerGetDatum(scan->tid), slot->tts_values[RC_COL_TID], false))
	{
		if (scan->tid != NULL)
			RcClassify(scan);
		MemoryContextReset(scan->groupcxt);
		memset(scan->side, 0, sizeof(scan->side));
		MemoryContextSwitchTo(scan->groupcxt);
		scan->tid = DatumGetTextPCopy(slot->tts_values[RC_COL_TID]);
	}
	side = &scan->side[s];
	if (side->rows++ == 0)
	{
		MemoryContextSwitchTo(scan->groupcxt);
		for (int col = RC_COL_AMOUNT; col < RC_NCOLS; col++)
		{
			side->nulls[col] = slot->tts_isnull[col];
			if (!side->nulls[col])
				side->values[col] = col == RC_COL_OCCURRED_AT ?
					slot->tts_values[col] :
					PointerGetDatum(PG_DETOAST_DATUM_COPY(slot->tts_values[col]));
		}
	}
	scan->rows[s]++;
	MemoryContextSwitchTo(old);
	return true;
}

/*
 * RcFoundDesc - the columns of the findings, as the INSERT reads them.
 */
static TupleDesc
RcFoundDesc(void)
{
	static const struct
	{
		const char *name;
		Oid			type;
	}			cols[] = {
		{"seq", INT4OID}, {"transaction_id", TEXTOID}, {"kind", TEXTOID},
		{"internal_rows", INT4OID}, {"internal_amount", NUMERICOID},
		{"internal_currency", TEXTOID}, {"internal_status", TEXTOID},
		{"internal_occurred_at", TIMESTAMPTZOID},
		{"gateway_rows", INT4OID}, {"gateway_amount", NUMERICOID},
		{"gateway_currency", TEXTOID}, {"gateway_status", TEXTOID},
		{"gateway_occurred_at", TIMESTAMPTZOID},
	};
	TupleDesc	desc = CreateTemplateTupleDesc(lengthof(cols));

	for (int i = 0; i < (int) lengthof(cols); i++)
		TupleDescInitEntry(desc, (AttrNumber) (i + 1), cols[i].name,
						   cols[i].type, -1, 0);
	return desc;
}

/* The receiver's other callbacks: nothing to set up or release. */
static void
RcStartup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
RcShutdown(DestReceiver *self)
{
}

static void
RcDestroy(DestReceiver *self)
{
}

/*
 * RcScanInit - an empty scan whose memory lives in runcxt.
 */
static void
RcScanInit(RcScan *scan, MemoryContext runcxt, Numeric tolerance)
{
	MemoryContext old = MemoryContextSwitchTo(runcxt);

	memset(scan, 0, sizeof(RcScan));
	scan->pub.receiveSlot = RcReceive;
	scan->pub.rStartup = RcStartup;
	scan->pub.rShutdown = RcShutdown;
	scan->pub.rDestroy = RcDestroy;
	scan->pub.mydest = DestNone;
	scan->tolerance = tolerance;
	scan->groupcxt = AllocSetContextCreate(runcxt, "payments reconcile id",
										   ALLOCSET_SMALL_SIZES);
	scan->rowcxt = AllocSetContextCreate(runcxt, "payments reconcile row",
										 ALLOCSET_SMALL_SIZES);
	scan->found = tuplestore_begin_heap(false, false, work_mem);
	scan->founddesc = RcFoundDesc();
	MemoryContextSwitchTo(old);
}

/*
 * RcScanRun - read both sources' rows of the window through the receiver,
 * with the caller's rights, and classify the last transaction id.
 */
static void
RcScanRun(RcScan *scan, const char *internal, const char *gateway,
		  TimestampTz window_start, TimestampTz window_end)
{
	Oid			argtypes[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};
	TimestampTz bounds[2] = {window_start, window_end};
	SPIPlanPtr	plan;
	ParamListInfo params = makeParamList(2);
	SPIExecuteOptions options = {0};
	MemoryContext old;
	int			rc;

	/*
	 * Not parallel: on the two-core machines measured, Gather Merge of two
	 * workers' sorts took 1.5x the time of one backend's sort.
	 */
	plan = SPI_prepare(RcScanSql(internal, gateway), 2, argtypes);
	if (plan == NULL)
		elog(ERROR, "could not prepare the reconciliation scan: %s",
			 SPI_result_code_string(SPI_result));
	for (int i = 0; i < 2; i++)
	{
		params->params[i].value = TimestampTzGetDatum(bounds[i]);
		params->params[i].isnull = false;
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = TIMESTAMPTZOID;
	}
	options.params = params;
	options.dest = &scan->pub;
	rc = SPI_execute_plan_extended(plan, &options);
	/* SPI says "utility" for a SELECT whose rows went to a DestNone receiver */
	if (rc != SPI_OK_UTILITY)
		elog(ERROR, "reconciliation scan failed: %s", SPI_result_code_string(rc));
	SPI_freeplan(plan);
	old = MemoryContextSwitchTo(scan->rowcxt);
	if (scan->tid != NULL)
		RcClassify(scan);
	MemoryContextSwitchTo(old);
}

/*
 * RcStoreFound - insert the findings of the run, read from the tuplestore
 * as an ephemeral named relation.
 */
static void
RcStoreFound(RcScan *scan, int64 run_id)
{
	EphemeralNamedRelation enr = palloc0(sizeof(EphemeralNamedRelationData));
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(run_id)};
	int			rc;

	if (tuplestore_tuple_count(scan->found) == 0)
		return;
	enr->md.name = RC_FOUND_RELATION;
	enr->md.reliddesc = InvalidOid;
	enr->md.tupdesc = scan->founddesc;
	enr->md.enrtype = ENR_NAMED_TUPLESTORE;
	enr->md.enrtuples = tuplestore_tuple_count(scan->found);
	enr->reldata = scan->found;
	if (SPI_register_relation(enr) != SPI_OK_REL_REGISTER)
		elog(ERROR, "could not register the reconciliation findings");
	rc = SPI_execute_with_args(
							   "INSERT INTO " PAYMENTS_SCHEMA ".reconciliation_discrepancies"
							   " (run_id, seq, transaction_id, kind, internal_rows, internal_amount,"
							   "  internal_currency, internal_status, internal_occurred_at,"
							   "  gateway_rows, gateway_amount, gateway_currency, gateway_status,"
							   "  gateway_occurred_at)"
							   " SELECT $1, f.seq, f.transaction_id, f.kind, f.internal_rows,"
							   "  f.internal_amount, f.internal_currency, f.internal_status,"
							   "  f.internal_occurred_at, f.gateway_rows, f.gateway_amount,"
							   "  f.gateway_currency, f.gateway_status, f.gateway_occurred_at"
							   " FROM " RC_FOUND_RELATION " AS f",
							   1, argtypes, args, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not store the reconciliation findings: %s",
			 SPI_result_code_string(rc));
	SPI_unregister_relation(RC_FOUND_RELATION);
}

/*
 * RcSummary - "M/T matched, D discrepancies: n kind, ..." or "All T
 * transactions match."; the kinds in their fixed order.
 */
static char *
RcSummary(const RcScan *scan, int64 discrepancies)
{
	StringInfoData s;
	const char *sep = ": ";

	initStringInfo(&s);
	if (discrepancies == 0)
	{
		appendStringInfo(&s, "All " INT64_FORMAT " transactions match.",
						 scan->transactions);
		return s.data;
	}
	appendStringInfo(&s, INT64_FORMAT "/" INT64_FORMAT " matched, "
					 INT64_FORMAT " discrepancies",
					 scan->matched, scan->transactions, discrepancies);
	for (int k = 0; k < RC_NKINDS; k++)
	{
		if (scan->counts[k] == 0)
			continue;
		appendStringInfo(&s, "%s" INT64_FORMAT " %s", sep, scan->counts[k],
						 RcKindNames[k]);
		sep = ", ";
	}
	return s.data;
}

/*
 * RcCounts - the run's counts by kind as a JSON object, every kind present.
 */
static char *
RcCounts(const RcScan *scan)
{
	StringInfoData s;

	initStringInfo(&s);
	for (int k = 0; k < RC_NKINDS; k++)
		appendStringInfo(&s, "%s\"%s\": " INT64_FORMAT, k == 0 ? "{" : ", ",
						 RcKindNames[k], scan->counts[k]);
	appendStringInfoChar(&s, '}');
	return s.data;
}

/*
 * RcFinish - record the run's counts and summary, and tell listeners on
 * payments_reconciliation (delivered when the transaction commits).
 */
static void
RcFinish(const RcScan *scan, int64 run_id, ReconcileTrigger trigger)
{
	int64		discrepancies = 0;
	char	   *counts = RcCounts(scan);
	Datum		args[8];
	StringInfoData payload;

	for (int k = 0; k < RC_NKINDS; k++)
		discrepancies += scan->counts[k];
	args[0] = Int64GetDatum(run_id);
	args[1] = Int64GetDatum(scan->rows[RC_INTERNAL]);
	args[2] = Int64GetDatum(scan->rows[RC_GATEWAY]);
	args[3] = Int64GetDatum(scan->transactions);
	args[4] = Int64GetDatum(scan->matched);
	args[5] = Int64GetDatum(discrepancies);
	args[6] = DirectFunctionCall1(jsonb_in, CStringGetDatum(counts));
	args[7] = CStringGetTextDatum(RcSummary(scan, discrepancies));
	RcExec(RC_STMT_FINISH, args);

	initStringInfo(&payload);
	appendStringInfo(&payload,
					 "{\"run_id\": " INT64_FORMAT ", \"triggered_by\": \"%s\","
					 " \"transactions\": " INT64_FORMAT ", \"matched\": " INT64_FORMAT ","
					 " \"discrepancies\": " INT64_FORMAT ", \"counts\": %s}",
					 run_id, trigger == RECONCILE_WORKER ? "worker" : "manual",
					 scan->transactions, scan->matched, discrepancies, counts);
	Async_Notify("payments_reconciliation", payload.data);
	payments_count(PM_STAT_RECONCILE_RUNS, 1);
	payments_count(PM_STAT_RECONCILE_DISCREPANCIES, (uint64) discrepancies);
}

/*
 * RcStart - insert the run's row (finished_at still NULL); its id.
 */
static int64
RcStart(TimestampTz window_start, TimestampTz window_end, const char *internal,
		const char *gateway, Numeric tolerance, ReconcileTrigger trigger,
		Oid caller)
{
	Datum		args[7];
	bool		isnull;

	args[0] = TimestampTzGetDatum(window_start);
	args[1] = TimestampTzGetDatum(window_end);
	args[2] = CStringGetTextDatum(internal);
	args[3] = CStringGetTextDatum(gateway);
	args[4] = NumericGetDatum(tolerance);
	args[5] = CStringGetTextDatum(trigger == RECONCILE_WORKER ? "worker" : "manual");
	args[6] = DirectFunctionCall1(namein,
								  CStringGetDatum(GetUserNameFromId(caller, false)));
	RcExec(RC_STMT_START, args);
	return DatumGetInt64(pm_stmt_value(0, 1, &isnull));
}

/*
 * reconcile_run - one reconciliation of the window [window_start,
 * window_end) of two sources, in the caller's transaction; the run id.
 */
int64
reconcile_run(TimestampTz window_start, TimestampTz window_end,
			  Oid internal, Oid gateway, Numeric tolerance,
			  ReconcileTrigger trigger)
{
	Oid			runs;
	Oid			owner = pm_table_owner("reconciliation_runs", &runs);
	Oid			caller = GetUserId();
	MemoryContext runcxt;
	PmSpiCall	call;
	PmSpiCall	owner_call;
	RcScan		scan;
	char	   *internal_name;
	char	   *gateway_name;
	bool		exact = DatumGetInt32(DirectFunctionCall2(numeric_cmp,
														  NumericGetDatum(tolerance),
														  NumericGetDatum(int64_to_numeric(0)))) == 0;
	int64		run_id;

	pm_require_writable("payments.reconcile");
	runcxt = AllocSetContextCreate(CurrentMemoryContext, "payments reconcile",
								   ALLOCSET_DEFAULT_SIZES);
	RcScanInit(&scan, runcxt, exact ? NULL : tolerance);
	pm_spi_begin(&call, InvalidOid);
	internal_name = RcSourceName(internal);
	gateway_name = RcSourceName(gateway);

	pm_spi_begin(&owner_call, owner);
	RcLoadStatusMap(&scan, runcxt);
	run_id = RcStart(window_start, window_end, internal_name, gateway_name,
					 tolerance, trigger, caller);
	pm_spi_end(&owner_call);

	RcScanRun(&scan, internal_name, gateway_name, window_start, window_end);

	pm_spi_begin(&owner_call, owner);
	RcStoreFound(&scan, run_id);
	RcFinish(&scan, run_id, trigger);
	pm_spi_end(&owner_call);
	pm_spi_end(&call);
	tuplestore_end(scan.found);
	MemoryContextDelete(runcxt);
	return run_id;
}

PG_FUNCTION_INFO_V1(payments_reconcile);

/*
 * payments_reconcile - payments.reconcile(window_start, window_end,
 * internal, gateway, tolerance): the run id.
 */
Datum
payments_reconcile(PG_FUNCTION_ARGS)
{
	Numeric		tolerance;

	for (int i = 0; i < 5; i++)
	{
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the window, the sources and the tolerance of a reconciliation must not be NULL")));
	}
	if (PG_GETARG_TIMESTAMPTZ(1) <= PG_GETARG_TIMESTAMPTZ(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("window_end must be later than window_start")));
	tolerance = PG_GETARG_NUMERIC(4);
	if (numeric_is_nan(tolerance) ||
		DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(tolerance),
										  NumericGetDatum(int64_to_numeric(0)))) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tolerance must be zero or more")));
	PG_RETURN_INT64(reconcile_run(PG_GETARG_TIMESTAMPTZ(0), PG_GETARG_TIMESTAMPTZ(1),
								  PG_GETARG_OID(2), PG_GETARG_OID(3), tolerance,
								  RECONCILE_MANUAL));
}
