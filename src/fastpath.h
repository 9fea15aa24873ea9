/*-------------------------------------------------------------------------
 *
 * fastpath.h
 *	  Direct heap and index access to the extension's own tables.
 *
 * The hottest calls (idempotency_begin, _complete, fraud_evaluate) read
 * rows through an index, claim a key with a speculative insertion, insert,
 * and lock and update a row, without planning a statement or starting an
 * executor.  That bypasses triggers, rules, row
 * security, CHECK constraints and Citus, and reads Datums by position, so
 * it is only allowed on a table that is exactly the shape the code
 * expects: FpTable describes that shape, fp_exact() checks it once per
 * relcache entry, and a caller uses SPI instead whenever it says no.  A
 * table only read directly (read_only) may have triggers: reads fire none.
 * This file is the only one that touches heap or index access methods.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYMENTS_FASTPATH_H
#define PAYMENTS_FASTPATH_H

#include "access/skey.h"
#include "executor/tuptable.h"
#include "storage/lockdefs.h"
#include "utils/relcache.h"

/* One column as the install script creates it. */
typedef struct FpColumn
{
	const char *name;
	Oid			typid;
	Oid			collid;			/* InvalidOid for a type without collation */
	bool		notnull;
} FpColumn;

/* What a table of the extension must look like for the fast path. */
typedef struct FpTable
{
	const char *relname;		/* in schema payments */
	const char *what;			/* a row, in messages: "idempotency key" */
	int			ncolumns;
	const FpColumn *columns;
	int			nchecks;
	const char *const *checks;	/* names of its CHECK constraints */
	const char *second;			/* another index fp_scan uses, or NULL */
	bool		read_only;		/* only read directly: triggers allowed */
	/* cached until a relcache invalidation of the table */
	Oid			relid;
	Oid			pkey;
	Oid			second_index;
	int			shape;			/* an FpShape */
} FpTable;

/* Which index of the table fp_scan reads. */
typedef enum FpIndex
{
	FP_INDEX_PKEY,
	FP_INDEX_SECOND
} FpIndex;

/* fp_scan's callback for each visible row; false stops the scan. */
typedef bool (*FpRowCallback) (TupleTableSlot *slot, void *arg);

extern Relation fp_open(FpTable *t, LOCKMODE mode);
extern bool fp_exact(FpTable *t, Relation rel);
extern bool fp_citus(FpTable *t, Relation rel);
extern bool fp_fetch(FpTable *t, Relation rel, ScanKey keys, int nkeys,
					 TupleTableSlot *slot);
extern void fp_scan(FpTable *t, Relation rel, FpIndex which, ScanKey keys,
					int nkeys, bool latest, FpRowCallback row, void *arg);
extern bool fp_insert_speculative(FpTable *t, Relation rel,
								  TupleTableSlot *slot);
extern void fp_insert(FpTable *t, Relation rel, TupleTableSlot *slot);
extern bool fp_lock(FpTable *t, Relation rel, TupleTableSlot *slot);
extern void fp_update(FpTable *t, Relation rel, TupleTableSlot *oldslot,
					  TupleTableSlot *newslot);
extern void fp_delete(FpTable *t, Relation rel, TupleTableSlot *slot);

#endif							/* PAYMENTS_FASTPATH_H */
