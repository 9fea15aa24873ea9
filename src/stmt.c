/*-------------------------------------------------------------------------
 *
 * stmt.c
 *	  The one way the extension runs SQL from C (see stmt.h).
 *
 * Statements are prepared with SPI_prepare on first use and kept with
 * SPI_keepplan for the backend's life; the plan cache replans them when a
 * table they use changes.  Errors in a statement are the statement's own
 * (SPI raises them); a negative SPI result is a programming error.
 *
 * pm_spi_begin() pins search_path (as SET search_path on a function does:
 * a GUC nest level that pm_spi_end() pops) and may switch to the owner of
 * the tables (as SECURITY DEFINER does).  On an error, the transaction's
 * abort undoes both, as it does for a SECURITY DEFINER function.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "miscadmin.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/snapmgr.h"

#include "payments.h"
#include "stmt.h"

/* The search_path every statement runs with; as the install script sets it. */
#define PM_SEARCH_PATH "pg_catalog, pg_temp"

/*
 * pm_spi_begin - connect to SPI with search_path pinned and, when owner is
 * valid, as that role; call->caller is the caller's memory context, where
 * results that outlive pm_spi_end() must be copied.
 */
void
pm_spi_begin(PmSpiCall *call, Oid owner)
{
	call->caller = CurrentMemoryContext;
	GetUserIdAndSecContext(&call->saved_user, &call->saved_sec_context);
	if (OidIsValid(owner))
		SetUserIdAndSecContext(owner, call->saved_sec_context |
							   SECURITY_LOCAL_USERID_CHANGE);
	/* a SECURITY DEFINER caller has pinned it already: do it once */
	call->guc_level = 0;
	if (strcmp(namespace_search_path, PM_SEARCH_PATH) != 0)
	{
		call->guc_level = NewGUCNestLevel();
		(void) set_config_option("search_path", PM_SEARCH_PATH,
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
								 true, 0, false);
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

/*
 * pm_spi_end - disconnect (SPI's memory, results included, is freed) and
 * restore search_path and the user.
 */
void
pm_spi_end(PmSpiCall *call)
{
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
	if (call->guc_level > 0)
		AtEOXact_GUC(true, call->guc_level);
	SetUserIdAndSecContext(call->saved_user, call->saved_sec_context);
}

/*
 * StmtPlan - the statement's plan, prepared and kept on first use.
 */
static SPIPlanPtr
StmtPlan(PmStmt *stmt)
{
	if (stmt->plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(stmt->sql, stmt->nargs, stmt->argtypes);

		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "could not prepare \"%s\": %s", stmt->sql,
				 SPI_result_code_string(SPI_result));
		stmt->plan = plan;
	}
	return stmt->plan;
}

/*
 * StmtDone - the rows a statement processed; an SPI failure is a bug.
 */
static uint64
StmtDone(const PmStmt *stmt, int rc)
{
	if (rc < 0)
		elog(ERROR, "\"%s\" failed: %s", stmt->sql, SPI_result_code_string(rc));
	return SPI_processed;
}

/*
 * pm_stmt_exec - run a statement, preparing and keeping it on first use;
 * nulls as for SPI_execute_plan (NULL: none).  Returns SPI_processed.
 */
uint64
pm_stmt_exec(PmStmt *stmt, const Datum *args, const char *nulls)
{
	return StmtDone(stmt, SPI_execute_plan(StmtPlan(stmt), (Datum *) args,
										   nulls, false, 0));
}

/*
 * pm_stmt_exec_latest - pm_stmt_exec, but reading with a snapshot taken
 * now whatever the isolation level: what every transaction committed so
 * far, and what this one did.  For counts that must see concurrent work
 * once a lock has ordered it (fraud velocity).
 */
uint64
pm_stmt_exec_latest(PmStmt *stmt, const Datum *args, const char *nulls)
{
	return StmtDone(stmt, SPI_execute_snapshot(StmtPlan(stmt), (Datum *) args,
											   nulls, GetLatestSnapshot(),
											   InvalidSnapshot, false, false, 0));
}

/*
 * pm_stmt_cursor - open a read-only cursor on a statement, for results
 * too large to hold at once; fetch with SPI_cursor_fetch.
 */
Portal
pm_stmt_cursor(PmStmt *stmt, const Datum *args, const char *nulls)
{
	Portal		portal;

	portal = SPI_cursor_open(NULL, StmtPlan(stmt), (Datum *) args, nulls, true);
	if (portal == NULL)
		elog(ERROR, "could not open a cursor on \"%s\": %s", stmt->sql,
			 SPI_result_code_string(SPI_result));
	return portal;
}

/*
 * pm_stmt_value - column col (from 1) of result row row, in SPI memory.
 */
Datum
pm_stmt_value(uint64 row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col,
						 isnull);
}

/*
 * pm_stmt_value_copy - column col of result row row, copied into the
 * caller's context (call.caller of pm_spi_begin).
 */
Datum
pm_stmt_value_copy(uint64 row, int col, bool *isnull)
{
	Datum		value = pm_stmt_value(row, col, isnull);
	Form_pg_attribute att = TupleDescAttr(SPI_tuptable->tupdesc, col - 1);

	if (*isnull)
		return (Datum) 0;
	return SPI_datumTransfer(value, att->attbyval, att->attlen);
}

/*
 * pm_table_owner - the owner of the extension's table relname, as whom a
 * module runs its SQL; *relid is set to the table's OID.  A missing table
 * (the extension not created in this database) is an error saying so.
 */
Oid
pm_table_owner(const char *relname, Oid *relid)
{
	Oid			nsp = get_namespace_oid(PAYMENTS_SCHEMA, true);
	HeapTuple	tup;
	Oid			owner;

	*relid = OidIsValid(nsp) ? get_relname_relid(relname, nsp) : InvalidOid;
	if (!OidIsValid(*relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table %s.%s does not exist", PAYMENTS_SCHEMA, relname),
				 errhint("Run CREATE EXTENSION payments.")));
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(*relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", *relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * pm_require_writable - refuse, naming the function and saying why, a call
 * that writes when the transaction is read-only or the server a standby
 * (rather than the internal statement's "cannot execute UPDATE").
 */
void
pm_require_writable(const char *function)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot call %s on a standby server", function),
				 errdetail("It writes, and a standby is read-only."),
				 errhint("Call it on the primary.")));
	if (XactReadOnly)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot call %s in a read-only transaction", function),
				 errhint("Call it in a read-write transaction on the primary (default_transaction_read_only, or a connection routed to a standby, makes a transaction read-only).")));
}

/*
 * CitusLoaded - whether Citus is loaded in this server (its GUCs are real,
 * not placeholders).
 */
static bool
CitusLoaded(void)
{
	const char *name = "citus.node_conninfo";

	return GetConfigOption(name, true, false) != NULL &&
		(GetConfigOptionFlags(name, true) & GUC_CUSTOM_PLACEHOLDER) == 0;
}

/*
 * pm_citus_table - whether Citus has the table in its metadata
 * (pg_dist_partition): distributed, reference or Citus-managed local.  Its
 * rows are then in shards, which only statements that Citus plans reach;
 * the coordinator's own table is an empty shell.
 */
bool
pm_citus_table(Oid relid)
{
	Oid			catalog;
	Relation	dist;
	SysScanDesc scan;
	ScanKeyData key;
	bool		found;

	if (!CitusLoaded())
		return false;
	catalog = get_relname_relid("pg_dist_partition", PG_CATALOG_NAMESPACE);
	if (!OidIsValid(catalog))
		return false;			/* loaded, but CREATE EXTENSION citus not run */
	dist = table_open(catalog, AccessShareLock);
	/* its first column is logicalrelid */
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(dist, InvalidOid, false, NULL, 1, &key);
	found = HeapTupleIsValid(systable_getnext(scan));
	systable_endscan(scan);
	table_close(dist, AccessShareLock);
	return found;
}
