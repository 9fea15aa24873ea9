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
 * Velocity counts read with a snapshot taken after fraud.c locked the key
 * (pm_stmt_exec_latest): two evaluations of one key are ordered by the
 * lock, and the second counts the first once it committed, whatever the
 * isolation level.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

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
		" WHERE ctid = ANY (ARRAY(SELECT ctid FROM " PAYMENTS_SCHEMA ".fraud_velocity"
		" WHERE at < $1 ORDER BY at LIMIT $2))"
		" RETURNING 1) SELECT count(*) FROM gone",
		2, {TIMESTAMPTZOID, INT8OID}
	},
};

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
 * fraud_store_listed - whether value is on the list (email: folded).
 */
bool
fraud_store_listed(const char *list, const char *value, bool email)
{
	Datum		args[2] = {CStringGetTextDatum(list), CStringGetTextDatum(value)};
	bool		listed;

	listed = pm_stmt_exec(&FraudStmts[email ? FS_LISTED_FOLDED : FS_LISTED],
						  args, NULL) > 0;
	/* a backtest runs this once per row: free as it goes */
	SPI_freetuptable(SPI_tuptable);
	return listed;
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
	bool		isnull;
	Datum		d;

	pm_stmt_exec_latest(&FraudStmts[sum ? FS_VELOCITY_SUM : FS_VELOCITY],
						args, NULL);
	*count = DatumGetInt64(pm_stmt_value(0, 1, &isnull));
	d = pm_stmt_value_copy(0, 2, &isnull);
	*total = isnull ? int64_to_numeric(0) : DatumGetNumeric(d);
	SPI_freetuptable(SPI_tuptable);
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
	Datum		args[6] = {
		TimestampTzGetDatum(in->at),
		CStringGetTextDatum(fd_decision_name(decision)),
		Int32GetDatum(score),
		blocked_by ? CStringGetTextDatum(blocked_by) : (Datum) 0,
		JsonbPGetDatum(scrubbed ? scrubbed : in->context),
		JsonbPGetDatum(verdicts)
	};
	char		nulls[6] = {' ', ' ', ' ', blocked_by ? ' ' : 'n', ' ', ' '};
	bool		isnull;

	pm_stmt_exec(&FraudStmts[FS_RECORD], args, nulls);
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
	Datum		args[5] = {
		CStringGetTextDatum(value), CStringGetTextDatum(key->field.path),
		TimestampTzGetDatum(at), Int64GetDatum(evaluation_id),
		amounts ? JsonbPGetDatum(amounts) : (Datum) 0
	};
	char		nulls[5] = {' ', ' ', ' ', ' ', amounts ? ' ' : 'n'};

	pm_stmt_exec(&FraudStmts[FS_RECORD_VELOCITY], args, nulls);
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
