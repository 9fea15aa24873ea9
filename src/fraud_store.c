/*-------------------------------------------------------------------------
 *
 * fraud_store.c
 *	  The fraud module's SQL: loading rules, list lookups, velocity counts,
 *	  recording evaluations, purging.
 *
 * Every function here runs inside a pm_spi_begin()/pm_spi_end() bracket
 * opened by fraud.c as the owner of the tables, so the statements run with
 * the owner's rights and search_path pinned, whoever calls.
 *
 * Velocity counts read with a snapshot taken after fraud.c locked the key:
 * two evaluations of one key are ordered by the lock, and the second
 * counts the first once it committed, whatever the isolation level.
 *
 * List lookups, velocity counts and velocity rows go straight to the
 * index and heap (fastpath.c) when the table is exactly as installed, and
 * through the statements below otherwise.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/pg_collation_d.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "executor/tuptable.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "fastpath.h"
#include "fraud.h"
#include "payments.h"
#include "redact.h"
#include "stmt.h"

#define FRAUD_VELOCITY_WHERE \
	" FROM " PAYMENTS_SCHEMA ".fraud_velocity" \
	" WHERE key_value = $1 AND key_field = $2 AND at > $3" \
	" AND evaluation_id < $4"

enum
{
	FS_LOAD_RULES,
	FS_LISTED,
	FS_LISTED_FOLDED,
	FS_VELOCITY,
	FS_VELOCITY_SUM,
	FS_RECORD,
	FS_RECORD_VELOCITY,
	FS_PURGE_EVALUATIONS,
	FS_PURGE_VELOCITY,
	FS_NSTMTS
};

static PmStmt FraudStmts[FS_NSTMTS] = {
	[FS_LOAD_RULES] = {
		"SELECT name, kind, params, action, score, mode"
		" FROM " PAYMENTS_SCHEMA ".fraud_rules"
		" WHERE enabled ORDER BY position, name",
		0, {0}
	},
	[FS_LISTED] = {
		"SELECT 1 FROM " PAYMENTS_SCHEMA ".fraud_lists"
		" WHERE list_name = $1 AND value = $2",
		2, {TEXTOID, TEXTOID}
	},
	/* the value is folded already; lower() of a "C" column folds ASCII */
	[FS_LISTED_FOLDED] = {
		"SELECT 1 FROM " PAYMENTS_SCHEMA ".fraud_lists"
		" WHERE list_name = $1 AND lower(value) = $2",
		2, {TEXTOID, TEXTOID}
	},
	[FS_VELOCITY] = {
		"SELECT count(*), NULL::numeric" FRAUD_VELOCITY_WHERE,
		4, {TEXTOID, TEXTOID, TIMESTAMPTZOID, INT8OID}
	},
	[FS_VELOCITY_SUM] = {
		"SELECT count(*), sum(CAST(amounts ->> $5 AS numeric))"
		FRAUD_VELOCITY_WHERE,
		5, {TEXTOID, TEXTOID, TIMESTAMPTZOID, INT8OID, TEXTOID}
	},
	[FS_RECORD] = {
		"INSERT INTO " PAYMENTS_SCHEMA ".fraud_evaluations"
		" (evaluated_at, decision, score, blocked_by, context, verdicts)"
		" VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
		6, {TIMESTAMPTZOID, TEXTOID, INT4OID, TEXTOID, JSONBOID, JSONBOID}
	},
	[FS_RECORD_VELOCITY] = {
		"INSERT INTO " PAYMENTS_SCHEMA ".fraud_velocity"
		" (key_value, key_field, at, evaluation_id, amounts)"
		" VALUES ($1, $2, $3, $4, $5)",
		5, {TEXTOID, TEXTOID, TIMESTAMPTZOID, INT8OID, JSONBOID}
	},
	[FS_PURGE_EVALUATIONS] = {
		"WITH gone AS (DELETE FROM " PAYMENTS_SCHEMA ".fraud_evaluations"
		" WHERE id = ANY (ARRAY(SELECT id FROM " PAYMENTS_SCHEMA ".fraud_evaluations"
		" WHERE evaluated_at < $1 ORDER BY evaluated_at LIMIT $2))"
		" RETURNING 1) SELECT count(*) FROM gone",
		2, {TIMESTAMPTZOID, INT8OID}
	},
	[FS_PURGE_VELOCITY] = {
		"WITH gone AS (DELETE FROM " PAYMENTS_SCHEMA ".fraud_velocity"
		" WHERE (key_value, key_field, at, evaluation_id) IN"
		" (SELECT key_value, key_field, at, evaluation_id"
		" FROM " PAYMENTS_SCHEMA ".fraud_velocity WHERE at < $1 ORDER BY at LIMIT $2)"
		" RETURNING 1) SELECT count(*) FROM gone",
		2, {TIMESTAMPTZOID, INT8OID}
	},
};

static const FpColumn ListColumns[] = {
	{"list_name", TEXTOID, C_COLLATION_OID, true},
	{"value", TEXTOID, C_COLLATION_OID, true},
	{"note", TEXTOID, DEFAULT_COLLATION_OID, false},
	{"added_at", TIMESTAMPTZOID, InvalidOid, true},
};

static const char *const ListChecks[] = {"fraud_lists_list_name_check"};

static FpTable ListTable = {
	.relname = "fraud_lists",
	.what = "list entry",
	.ncolumns = lengthof(ListColumns),
	.columns = ListColumns,
	.nchecks = lengthof(ListChecks),
	.checks = ListChecks,
	.second = "fraud_lists_folded_idx",
};

/* fraud_velocity's columns, in order; VA_* are their attribute numbers. */
enum
{
	VA_KEY_VALUE = 1,
	VA_KEY_FIELD,
	VA_AT,
	VA_EVALUATION_ID,
	VA_AMOUNTS,
	VA_NATTS = VA_AMOUNTS
};

static const FpColumn VelocityColumns[] = {
	{"key_value", TEXTOID, C_COLLATION_OID, true},
	{"key_field", TEXTOID, C_COLLATION_OID, true},
	{"at", TIMESTAMPTZOID, InvalidOid, true},
	{"evaluation_id", INT8OID, InvalidOid, true},
	{"amounts", JSONBOID, InvalidOid, false},
};

static FpTable VelocityTable = {
	.relname = "fraud_velocity",
	.what = "velocity row",
	.ncolumns = lengthof(VelocityColumns),
	.columns = VelocityColumns,
};

/* fraud_evaluations' columns, in order. */
enum
{
	EA_ID = 1,
	EA_EVALUATED_AT,
	EA_DECISION,
	EA_SCORE,
	EA_BLOCKED_BY,
	EA_CONTEXT,
	EA_VERDICTS,
	EA_NATTS = EA_VERDICTS
};

static const FpColumn EvaluationColumns[] = {
	{"id", INT8OID, InvalidOid, true},
	{"evaluated_at", TIMESTAMPTZOID, InvalidOid, true},
	{"decision", TEXTOID, DEFAULT_COLLATION_OID, true},
	{"score", INT4OID, InvalidOid, true},
	{"blocked_by", TEXTOID, DEFAULT_COLLATION_OID, false},
	{"context", JSONBOID, InvalidOid, true},
	{"verdicts", JSONBOID, InvalidOid, true},
};

static const char *const EvaluationChecks[] = {"fraud_evaluations_decision_check"};

static FpTable EvaluationTable = {
	.relname = "fraud_evaluations",
	.what = "fraud evaluation",
	.ncolumns = lengthof(EvaluationColumns),
	.columns = EvaluationColumns,
	.nchecks = lengthof(EvaluationChecks),
	.checks = EvaluationChecks,
};

/* A velocity count in progress. */
typedef struct VelocityCount
{
	int64		before_id;
	const FraudField *sum;
	int64		count;
	Numeric		total;
	int64		rows;			/* rows seen */
	MemoryContext scratch;		/* where the sums of the last rows are */
} VelocityCount;

/*
 * ColumnText - column col of result row row as a C string, or NULL.
 */
static char *
ColumnText(uint64 row, int col)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
}

/*
 * fraud_store_load_rules - compile the enabled rules, in position order,
 * into set, allocated in cxt.
 */
void
fraud_store_load_rules(FraudRuleSet *set, MemoryContext cxt)
{
	uint64		n = pm_stmt_exec(&FraudStmts[FS_LOAD_RULES], NULL, NULL);
	MemoryContext old = MemoryContextSwitchTo(cxt);

	set->nrules = (int) n;
	set->rules = palloc0(sizeof(FraudRule) * (n + 1));
	for (uint64 i = 0; i < n; i++)
	{
		bool		params_null,
					score_null;
		Datum		params = pm_stmt_value(i, 3, &params_null);
		Datum		score = pm_stmt_value(i, 5, &score_null);

		fraud_rule_compile(&set->rules[i], ColumnText(i, 1), ColumnText(i, 2),
						   params_null ? NULL : DatumGetJsonbPCopy(params),
						   ColumnText(i, 4), score_null,
						   score_null ? 0 : DatumGetInt32(score),
						   ColumnText(i, 6));
	}
	fraud_ruleset_keys(set);
	MemoryContextSwitchTo(old);
}

/*
 * ListedRow - fp_scan callback: a visible entry is enough.
 */
static bool
ListedRow(TupleTableSlot *slot, void *arg)
{
	*(bool *) arg = true;
	return false;
}

/*
 * fraud_store_listed - whether value is on the list (email: folded, and
 * looked up through lower(value)).
 */
bool
fraud_store_listed(const char *list, const char *value, bool email)
{
	Datum		args[2] = {CStringGetTextDatum(list), CStringGetTextDatum(value)};
	Relation	rel = fp_open(&ListTable, AccessShareLock);
	bool		listed = false;

	if (fp_exact(&ListTable, rel))
	{
		ScanKeyData keys[2];

		ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_TEXTEQ, args[0]);
		ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_TEXTEQ, args[1]);
		fp_scan(&ListTable, rel, email ? FP_INDEX_SECOND : FP_INDEX_PKEY,
				keys, 2, false, ListedRow, &listed);
	}
	else
	{
		listed = pm_stmt_exec(&FraudStmts[email ? FS_LISTED_FOLDED : FS_LISTED],
							  args, NULL) > 0;
		/* a backtest runs this once per row: free as it goes */
		SPI_freetuptable(SPI_tuptable);
	}
	table_close(rel, NoLock);
	return listed;
}

/*
 * VelocityRow - fp_scan callback: count a row of an earlier evaluation
 * and add its sum field.  Sums are computed in a scratch context, and the
 * running total copied out of it every 1024 rows, so that a long history
 * needs bounded memory.
 */
static bool
VelocityRow(TupleTableSlot *slot, void *arg)
{
	VelocityCount *vc = arg;
	bool		isnull;
	Datum		d;
	JsonbValue	v;
	MemoryContext old;

	if (++vc->rows % 1024 == 0)
	{
		vc->total = DatumGetNumeric(datumCopy(NumericGetDatum(vc->total), false, -1));
		MemoryContextReset(vc->scratch);
	}
	if (DatumGetInt64(slot_getattr(slot, VA_EVALUATION_ID, &isnull)) >= vc->before_id)
		return true;
	vc->count++;
	if (vc->sum == NULL)
		return true;
	d = slot_getattr(slot, VA_AMOUNTS, &isnull);
	if (isnull)
		return true;
	old = MemoryContextSwitchTo(vc->scratch);
	if (getKeyJsonValueFromContainer(&DatumGetJsonbP(d)->root, vc->sum->path,
									 vc->sum->len, &v) != NULL &&
		v.type == jbvNumeric)
		vc->total = DatumGetNumeric(DirectFunctionCall2(numeric_add,
														NumericGetDatum(vc->total),
														NumericGetDatum(v.val.numeric)));
	MemoryContextSwitchTo(old);
	return true;
}

/*
 * VelocityScan - the count and sum through the primary key, directly.
 */
static void
VelocityScan(Relation rel, Datum *args, VelocityCount *vc)
{
	ScanKeyData keys[3];

	ScanKeyInit(&keys[0], VA_KEY_VALUE, BTEqualStrategyNumber, F_TEXTEQ, args[0]);
	ScanKeyInit(&keys[1], VA_KEY_FIELD, BTEqualStrategyNumber, F_TEXTEQ, args[1]);
	ScanKeyInit(&keys[2], VA_AT, BTGreaterStrategyNumber, F_TIMESTAMPTZ_GT, args[2]);
	vc->scratch = AllocSetContextCreate(CurrentMemoryContext,
										"payments fraud velocity sum",
										ALLOCSET_SMALL_SIZES);
	fp_scan(&VelocityTable, rel, FP_INDEX_PKEY, keys, 3, true, VelocityRow, vc);
	vc->total = DatumGetNumeric(datumCopy(NumericGetDatum(vc->total), false, -1));
	MemoryContextDelete(vc->scratch);
}

/*
 * fraud_store_velocity - how many evaluations recorded before in's (all
 * those visible now, or those with lower ids in a backtest) had this value
 * of the key at a time after from, and the sum of their sum field (when
 * sum is not NULL; zero when there is none).  There is no upper bound on
 * the time: an evaluation that committed before this one counts even if
 * its transaction started later.
 */
void
fraud_store_velocity(const FraudField *key, const char *value,
					 TimestampTz from, const FraudInput *in,
					 const FraudField *sum, int64 *count, Numeric *total)
{
	Datum		args[5] = {
		CStringGetTextDatum(value), CStringGetTextDatum(key->path),
		TimestampTzGetDatum(from), Int64GetDatum(in->before_id),
		sum ? CStringGetTextDatum(sum->path) : (Datum) 0
	};
	Relation	rel = fp_open(&VelocityTable, AccessShareLock);
	VelocityCount vc = {in->before_id, sum, 0, int64_to_numeric(0), 0, NULL};
	bool		isnull;
	Datum		d;

	if (fp_exact(&VelocityTable, rel))
		VelocityScan(rel, args, &vc);
	else
	{
		pm_stmt_exec_latest(&FraudStmts[sum ? FS_VELOCITY_SUM : FS_VELOCITY],
							args, NULL);
		vc.count = DatumGetInt64(pm_stmt_value(0, 1, &isnull));
		d = pm_stmt_value_copy(0, 2, &isnull);
		if (!isnull)
			vc.total = DatumGetNumeric(d);
		SPI_freetuptable(SPI_tuptable);
	}
	table_close(rel, NoLock);
	*count = vc.count;
	*total = vc.total;
}

/*
 * StoreInsertDirect - insert one row of values (nulls as for SPI) into an
 * exactly shaped table.
 */
static void
StoreInsertDirect(FpTable *t, Relation rel, const Datum *values,
				  const char *nulls)
{
	TupleTableSlot *slot = table_slot_create(rel, NULL);

	ExecClearTuple(slot);
	for (int i = 0; i < t->ncolumns; i++)
	{
		slot->tts_values[i] = values[i];
		slot->tts_isnull[i] = nulls[i] == 'n';
	}
	ExecStoreVirtualTuple(slot);
	fp_insert(t, rel, slot);
	ExecDropSingleTupleTableSlot(slot);
}

/*
 * RecordDirect - the audit row straight into the table, its id from the
 * table's sequence (as the column's default would); false, to use SQL,
 * when the table or the sequence is not as installed.
 */
static bool
RecordDirect(Datum *values, const char *nulls)
{
	Relation	rel = fp_open(&EvaluationTable, RowExclusiveLock);
	Oid			seq = InvalidOid;

	if (fp_exact(&EvaluationTable, rel))
		seq = get_relname_relid("fraud_evaluations_id_seq",
								RelationGetNamespace(rel));
	if (OidIsValid(seq))
	{
		values[EA_ID - 1] = Int64GetDatum(nextval_internal(seq, true));
		StoreInsertDirect(&EvaluationTable, rel, values, nulls);
	}
	table_close(rel, NoLock);
	return OidIsValid(seq);
}

/*
 * fraud_store_record - write the evaluation to the audit trail, its
 * context scrubbed of card data; returns its id.
 */
int64
fraud_store_record(const FraudInput *in, FraudDecision decision, int32 score,
				   const char *blocked_by, Jsonb *verdicts)
{
	Jsonb	   *scrubbed = redact_jsonb(in->context);
	Datum		values[EA_NATTS] = {
		(Datum) 0,
		TimestampTzGetDatum(in->at),
		CStringGetTextDatum(fd_decision_name(decision)),
		Int32GetDatum(score),
		blocked_by ? CStringGetTextDatum(blocked_by) : (Datum) 0,
		JsonbPGetDatum(scrubbed ? scrubbed : in->context),
		JsonbPGetDatum(verdicts)
	};
	char		nulls[EA_NATTS] = {' ', ' ', ' ', ' ', blocked_by ? ' ' : 'n', ' ', ' '};
	bool		isnull;

	if (RecordDirect(values, nulls))
		return DatumGetInt64(values[EA_ID - 1]);
	pm_stmt_exec(&FraudStmts[FS_RECORD], values + 1, nulls + 1);
	return DatumGetInt64(pm_stmt_value(0, 1, &isnull));
}

/*
 * fraud_store_record_velocity - one velocity row: the key's value at the
 * evaluation's time, with the values of the key's sum fields.
 */
void
fraud_store_record_velocity(const FraudVelocityKey *key, const char *value,
							TimestampTz at, int64 evaluation_id, Jsonb *amounts)
{
	Datum		args[VA_NATTS] = {
		CStringGetTextDatum(value), CStringGetTextDatum(key->field.path),
		TimestampTzGetDatum(at), Int64GetDatum(evaluation_id),
		amounts ? JsonbPGetDatum(amounts) : (Datum) 0
	};
	char		nulls[VA_NATTS] = {' ', ' ', ' ', ' ', amounts ? ' ' : 'n'};
	Relation	rel = fp_open(&VelocityTable, RowExclusiveLock);

	if (fp_exact(&VelocityTable, rel))
		StoreInsertDirect(&VelocityTable, rel, args, nulls);
	else
		pm_stmt_exec(&FraudStmts[FS_RECORD_VELOCITY], args, nulls);
	table_close(rel, NoLock);
}

/*
 * StorePurge - one purge statement; the rows it deleted.
 */
static int64
StorePurge(int stmt, TimestampTz before, int64 max_rows)
{
	Datum		args[2] = {TimestampTzGetDatum(before), Int64GetDatum(max_rows)};
	bool		isnull;

	pm_stmt_exec(&FraudStmts[stmt], args, NULL);
	return DatumGetInt64(pm_stmt_value(0, 1, &isnull));
}

/*
 * fraud_store_purge - delete at most max_rows evaluations recorded before
 * before, and at most max_rows velocity rows older than velocity_before;
 * the rows deleted.
 */
int64
fraud_store_purge(TimestampTz before, TimestampTz velocity_before,
				  int64 max_rows)
{
	return StorePurge(FS_PURGE_EVALUATIONS, before, max_rows) +
		StorePurge(FS_PURGE_VELOCITY, velocity_before, max_rows);
}
