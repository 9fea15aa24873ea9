/*-------------------------------------------------------------------------
 *
 * stmt.h
 *	  The one way the extension runs SQL from C: statements declared in a
 *	  table, prepared once per backend, run through SPI.
 *
 * A module declares its statements as an array of PmStmt indexed by an
 * enum, each with its SQL (schema-qualified, operators too) and argument
 * types.  A call brackets its statements with pm_spi_begin() and
 * pm_spi_end(); anything read from a result that must outlive the call is
 * copied into call.caller, the caller's memory context, before
 * pm_spi_end() (pm_stmt_value_copy() does it for one value).
 *
 * Between the two, every statement runs with search_path pinned to
 * pg_catalog, pg_temp and, when an owner is given, as that role: so a
 * SECURITY INVOKER function can run its statements with the rights of the
 * tables' owner, exactly where SQL runs, instead of paying for SECURITY
 * DEFINER on every call of a path that runs no SQL at all.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYMENTS_STMT_H
#define PAYMENTS_STMT_H

#include "executor/spi.h"

#define PM_STMT_MAX_ARGS 12

/* One statement of a module. */
typedef struct PmStmt
{
	const char *sql;
	int			nargs;
	Oid			argtypes[PM_STMT_MAX_ARGS];
	SPIPlanPtr	plan;			/* prepared on first use, kept */
} PmStmt;

/* One bracket of statements: what pm_spi_end() restores. */
typedef struct PmSpiCall
{
	MemoryContext caller;		/* results that outlive the call go here */
	Oid			saved_user;
	int			saved_sec_context;
	int			guc_level;		/* 0: search_path was pinned already */
} PmSpiCall;

extern void pm_spi_begin(PmSpiCall *call, Oid owner);
extern void pm_spi_end(PmSpiCall *call);
extern uint64 pm_stmt_exec(PmStmt *stmt, const Datum *args, const char *nulls);
extern uint64 pm_stmt_exec_latest(PmStmt *stmt, const Datum *args,
								  const char *nulls);
extern Portal pm_stmt_cursor(PmStmt *stmt, const Datum *args,
							 const char *nulls);
extern Datum pm_stmt_value(uint64 row, int col, bool *isnull);
extern Datum pm_stmt_value_copy(uint64 row, int col, bool *isnull);
extern Oid	pm_table_owner(const char *relname, Oid *relid);
extern void pm_require_writable(const char *function);
extern bool pm_citus_table(Oid relid);

#endif							/* PAYMENTS_STMT_H */
