/*-------------------------------------------------------------------------
 *
 * fastpath.c
 *	  Direct heap and index access to the extension's own tables.
 *
 * Three things make direct access safe here:
 *
 * - The table is found by name once and its OID cached until a relcache
 *   invalidation of it; every use locks it first and, if the lock brought
 *   an invalidation (ALTER, DROP), looks it up again, so a dropped table is
 *   a clear error, never an open of a stale OID.
 * - The table's shape is checked once per relcache entry against what the
 *   install script creates: every column's name, type, collation and NOT
 *   NULL, exactly our CHECK constraints, no triggers, rules or row
 *   security, only immediate indexes, a heap, and no Citus in the server.
 *   Anything else, and fp_exact() says no, so the caller takes its SPI
 *   path, which fires and checks everything a statement does.
 * - The speculative insertion names the primary key as its only arbiter,
 *   like INSERT ... ON CONFLICT (pk) DO NOTHING: a conflict in another
 *   unique index that a DBA added is that index's own error.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_index.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "storage/lmgr.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "fastpath.h"
#include "payments.h"
#include "stmt.h"

/* What fp_exact() found; reset by a relcache invalidation. */
typedef enum FpShape
{
	FP_SHAPE_UNKNOWN = 0,
	FP_SHAPE_EXACT,
	FP_SHAPE_CITUS,				/* in Citus's metadata: SPI only */
	FP_SHAPE_OTHER
} FpShape;

/* The tables whose cache the invalidation callback resets. */
#define FP_MAX_TABLES 8
static FpTable *FpTables[FP_MAX_TABLES];
static int	FpNTables = 0;

/*
 * FpInvalidate - relcache invalidation callback: forget what was cached
 * of the table (of every table when relid is InvalidOid).
 */
static void
FpInvalidate(Datum arg, Oid relid)
{
	for (int i = 0; i < FpNTables; i++)
	{
		FpTable    *t = FpTables[i];

		if (OidIsValid(relid) && relid != t->relid)
			continue;
		t->relid = InvalidOid;
		t->pkey = InvalidOid;
		t->second_index = InvalidOid;
		t->shape = FP_SHAPE_UNKNOWN;
	}
}

/*
 * FpRegister - put a table under the invalidation callback, once.
 */
static void
FpRegister(FpTable *t)
{
	for (int i = 0; i < FpNTables; i++)
	{
		if (FpTables[i] == t)
			return;
	}
	if (FpNTables == FP_MAX_TABLES)
		elog(ERROR, "too many payments tables with a fast path");
	if (FpNTables == 0)
		CacheRegisterRelcacheCallback(FpInvalidate, (Datum) 0);
	FpTables[FpNTables++] = t;
}

/*
 * FpLookup - the OID of payments.<relname>; ERROR 42P01 when it is gone.
 */
static Oid
FpLookup(const FpTable *t)
{
	Oid			nsp = get_namespace_oid(PAYMENTS_SCHEMA, true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid(t->relname, nsp) :
		InvalidOid;

	if (!OidIsValid(relid))
		ereport(ERROR,
				errcode(ERRCODE_UNDEFINED_TABLE),
				errmsg("table %s.%s does not exist", PAYMENTS_SCHEMA, t->relname),
				errhint("The payments extension is incomplete: restore the table from a backup, or drop and create the extension again."));
	return relid;
}

/*
 * fp_open - open the table, locked in mode.  The lock comes first and the
 * cached OID is trusted only if no invalidation arrived with it.
 */
Relation
fp_open(FpTable *t, LOCKMODE mode)
{
	FpRegister(t);
	for (;;)
	{
		Oid			relid;

		if (!OidIsValid(t->relid))
			t->relid = FpLookup(t);
		relid = t->relid;
		LockRelationOid(relid, mode);
		if (t->relid == relid)
			return table_open(relid, NoLock);
		/* invalidated while we waited (ALTER, DROP): look it up again */
		UnlockRelationOid(relid, mode);
	}
}

/*
 * FpColumnsExact - whether the columns are exactly t's.
 */
static bool
FpColumnsExact(const FpTable *t, TupleDesc desc)
{
	if (desc->natts != t->ncolumns)
		return false;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		const FpColumn *c = &t->columns[i];

		if (att->attisdropped || att->attgenerated != '\0' ||
			strcmp(NameStr(att->attname), c->name) != 0 ||
			att->atttypid != c->typid || att->attcollation != c->collid ||
			att->attnotnull != c->notnull)
			return false;
	}
	return true;
}

/*
 * FpChecksExact - whether the CHECK constraints are exactly t's, by name.
 */
static bool
FpChecksExact(const FpTable *t, TupleDesc desc)
{
	int			n = desc->constr ? desc->constr->num_check : 0;

	if (n != t->nchecks)
		return false;
	for (int i = 0; i < n; i++)
	{
		bool		known = false;

		for (int j = 0; j < t->nchecks; j++)
			known |= strcmp(desc->constr->check[i].ccname, t->checks[j]) == 0;
		if (!known)
			return false;
	}
	return true;
}

/*
 * FpIndexesImmediate - whether every index is checked at insertion: a
 * deferrable unique or exclusion constraint needs the executor's
 * after-trigger recheck, which direct insertion does not queue.
 */
static bool
FpIndexesImmediate(Relation rel)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	bool		ok = true;

	foreach(lc, indexes)
	{
		HeapTuple	tup = SearchSysCache1(INDEXRELID,
										  ObjectIdGetDatum(lfirst_oid(lc)));

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for index %u", lfirst_oid(lc));
		ok &= ((Form_pg_index) GETSTRUCT(tup))->indimmediate;
		ReleaseSysCache(tup);
	}
	list_free(indexes);
	return ok;
}

/*
 * FpShapeExact - the whole shape check of one relcache entry.
 */
static bool
FpShapeExact(const FpTable *t, Relation rel)
{
	return rel->rd_rel->relkind == RELKIND_RELATION &&
		rel->rd_rel->relam == HEAP_TABLE_AM_OID &&
		!rel->rd_rel->relrowsecurity &&
		(rel->trigdesc == NULL || t->read_only) && rel->rd_rules == NULL &&
		FpColumnsExact(t, RelationGetDescr(rel)) &&
		FpChecksExact(t, RelationGetDescr(rel)) &&
		OidIsValid(RelationGetPrimaryKeyIndex(rel)) &&
		FpIndexesImmediate(rel);
}

/*
 * FpSecondIndex - the OID of t's second index when it is an index of rel
 * in schema payments; InvalidOid otherwise.
 */
static Oid
FpSecondIndex(const FpTable *t, Relation rel)
{
	Oid			index = get_relname_relid(t->second, RelationGetNamespace(rel));
	List	   *indexes = RelationGetIndexList(rel);
	bool		ours = OidIsValid(index) && list_member_oid(indexes, index);

	list_free(indexes);
	return ours ? index : InvalidOid;
}

/*
 * fp_exact - whether direct access to the open table is allowed; checked
 * once per relcache entry of the table.
 */
bool
fp_exact(FpTable *t, Relation rel)
{
	if (t->shape == FP_SHAPE_UNKNOWN)
	{
		bool		exact = FpShapeExact(t, rel);

		t->second_index = (exact && t->second) ? FpSecondIndex(t, rel) : InvalidOid;
		exact &= t->second == NULL || OidIsValid(t->second_index);
		t->pkey = exact ? RelationGetPrimaryKeyIndex(rel) : InvalidOid;
		t->shape = pm_citus_table(RelationGetRelid(rel)) ? FP_SHAPE_CITUS :
			exact ? FP_SHAPE_EXACT : FP_SHAPE_OTHER;
	}
	return t->shape == FP_SHAPE_EXACT;
}

/*
 * fp_citus - whether the open table is in Citus's metadata, so that its
 * rows are in shards: statements that Citus cannot route (a stable
 * function of a column in UPDATE, FOR UPDATE across shards) must then
 * take another form.
 */
bool
fp_citus(FpTable *t, Relation rel)
{
	(void) fp_exact(t, rel);
	return t->shape == FP_SHAPE_CITUS;
}

/*
 * FpResultRel - an executor state and result relation for a direct change
 * of rel, with its indexes open; FpEndResultRel frees them.
 */
static ResultRelInfo *
FpResultRel(Relation rel, bool speculative, EState **estate)
{
	ResultRelInfo *rri = makeNode(ResultRelInfo);

	*estate = CreateExecutorState();
	(*estate)->es_output_cid = GetCurrentCommandId(true);
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, speculative);
	return rri;
}

/*
 * FpEndResultRel - close what FpResultRel opened.
 */
static void
FpEndResultRel(ResultRelInfo *rri, EState *estate)
{
	ExecCloseIndices(rri);
	FreeExecutorState(estate);
}

/*
 * fp_fetch - find the row whose primary key equals keys (scan keys on the
 * index's columns) with the snapshot a new statement would take, so it
 * sees what this transaction wrote; the values are in slot, which the
 * caller made with table_slot_create() and drops.
 */
bool
fp_fetch(FpTable *t, Relation rel, ScanKey keys, int nkeys,
		 TupleTableSlot *slot)
{
	Relation	index;
	IndexScanDesc scan;
	bool		found;

	Assert(t->shape == FP_SHAPE_EXACT);
	index = index_open(t->pkey, AccessShareLock);
	PushActiveSnapshot(GetTransactionSnapshot());
	UpdateActiveSnapshotCommandId();
	scan = index_beginscan(rel, index, GetActiveSnapshot(), nkeys, 0);
	index_rescan(scan, keys, nkeys, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	if (found)
		slot_getallattrs(slot);
	index_endscan(scan);
	PopActiveSnapshot();
	/* keep the lock until the end of the transaction, as a query does */
	index_close(index, NoLock);
	return found;
}

/*
 * fp_scan - call row for each row of the table that index which finds for
 * keys (scan keys on its columns) and that a new statement would see:
 * with the transaction's snapshot, or with one taken now when latest
 * (what has committed since, too), so that a count under a lock sees the
 * work the lock waited for.  Stops when row answers false.
 */
void
fp_scan(FpTable *t, Relation rel, FpIndex which, ScanKey keys, int nkeys,
		bool latest, FpRowCallback row, void *arg)
{
	Relation	index;
	IndexScanDesc scan;
	TupleTableSlot *slot = table_slot_create(rel, NULL);

	Assert(t->shape == FP_SHAPE_EXACT);
	index = index_open(which == FP_INDEX_PKEY ? t->pkey : t->second_index,
					   AccessShareLock);
	PushActiveSnapshot(latest ? GetLatestSnapshot() : GetTransactionSnapshot());
	UpdateActiveSnapshotCommandId();
	scan = index_beginscan(rel, index, GetActiveSnapshot(), nkeys, 0);
	index_rescan(scan, keys, nkeys, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		CHECK_FOR_INTERRUPTS();
		if (!row(slot, arg))
			break;
	}
	index_endscan(scan);
	PopActiveSnapshot();
	index_close(index, NoLock);
	ExecDropSingleTupleTableSlot(slot);
}

/*
 * fp_lock - lock the row version that fp_fetch left in slot FOR NO KEY
 * UPDATE, as UPDATE does with a row its scan found: waiting for a
 * concurrent writer and, in READ COMMITTED, following its update to the
 * row's latest version (under REPEATABLE READ or SERIALIZABLE a concurrent
 * change is a serialization failure).  The locked version replaces the
 * one in slot; false if the row is gone.  The caller rechecks its
 * conditions on the locked version, as EvalPlanQual would.
 */
bool
fp_lock(FpTable *t, Relation rel, TupleTableSlot *slot)
{
	ItemPointerData tid = slot->tts_tid;
	TM_FailureData tmfd;
	TM_Result	result;
	int			flags = TUPLE_LOCK_FLAG_LOCK_UPDATE_IN_PROGRESS;

	if (!IsolationUsesXactSnapshot())
		flags |= TUPLE_LOCK_FLAG_FIND_LAST_VERSION;
	/* the slot receives the locked version; it holds nothing meanwhile */
	ExecClearTuple(slot);
	PushActiveSnapshot(GetTransactionSnapshot());
	UpdateActiveSnapshotCommandId();
	result = table_tuple_lock(rel, &tid, GetActiveSnapshot(), slot,
							  GetCurrentCommandId(true), LockTupleNoKeyExclusive,
							  LockWaitBlock, flags, &tmfd);
	PopActiveSnapshot();
	switch (result)
	{
		case TM_Ok:
			slot_getallattrs(slot);
			return true;
		case TM_SelfModified:
			/* changed by this very command: as for UPDATE, skip it */
			return false;
		case TM_Updated:
		case TM_Deleted:
			if (IsolationUsesXactSnapshot())
				ereport(ERROR,
						errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						errmsg("could not serialize access due to concurrent update"));
			if (result == TM_Deleted)
				return false;
			break;
		default:
			break;
	}
	elog(ERROR, "unexpected table_tuple_lock status %d on %s", (int) result,
		 t->relname);
	return false;				/* keep the compiler quiet */
}

/*
 * fp_update - replace the row version locked by fp_lock (oldslot) with the
 * values of newslot, maintaining the indexes when the update is not HOT.
 * The new values must satisfy the table's constraints: fp_exact() made
 * sure they are the ones the caller knows.
 */
void
fp_update(FpTable *t, Relation rel, TupleTableSlot *oldslot,
		  TupleTableSlot *newslot)
{
	EState	   *estate;
	ResultRelInfo *rri;
	TM_FailureData tmfd;
	LockTupleMode lockmode;
	bool		update_indexes;
	TM_Result	result;

	Assert(t->shape == FP_SHAPE_EXACT);
	Assert(!t->read_only);
	rri = FpResultRel(rel, false, &estate);
	result = table_tuple_update(rel, &oldslot->tts_tid, newslot,
								estate->es_output_cid, InvalidSnapshot,
								InvalidSnapshot, true, &tmfd, &lockmode,
								&update_indexes);
	/* we hold the row locked: nobody else can have changed it */
	if (result != TM_Ok)
		elog(ERROR, "unexpected table_tuple_update status %d on %s",
			 (int) result, t->relname);
	/*
	 * Not HOT: new entries in every index.  "update" is false because its
	 * only use, the hint that a key is unchanged, needs a range table.
	 */
	if (update_indexes)
		list_free(ExecInsertIndexTuples(rri, newslot, estate, false, false,
										NULL, NIL));
	FpEndResultRel(rri, estate);
	CommandCounterIncrement();
}

/*
 * fp_delete - delete the row version locked by fp_lock.
 */
void
fp_delete(FpTable *t, Relation rel, TupleTableSlot *slot)
{
	TM_FailureData tmfd;
	TM_Result	result;

	Assert(t->shape == FP_SHAPE_EXACT);
	Assert(!t->read_only);
	result = table_tuple_delete(rel, &slot->tts_tid, GetCurrentCommandId(true),
								InvalidSnapshot, InvalidSnapshot, true, &tmfd,
								false);
	if (result != TM_Ok)
		elog(ERROR, "unexpected table_tuple_delete status %d on %s",
			 (int) result, t->relname);
	CommandCounterIncrement();
}

/*
 * FpCheckConflictVisible - under REPEATABLE READ or SERIALIZABLE, a row
 * that a transaction our snapshot cannot see has inserted is a
 * serialization failure, as for INSERT ... ON CONFLICT: we cannot read it.
 */
static void
FpCheckConflictVisible(const FpTable *t, Relation rel, ItemPointer tid)
{
	TupleTableSlot *slot;
	bool		isnull;
	TransactionId xmin;

	if (!IsolationUsesXactSnapshot())
		return;
	slot = table_slot_create(rel, NULL);
	if (!table_tuple_fetch_row_version(rel, tid, SnapshotAny, slot))
		elog(ERROR, "failed to fetch the conflicting row of %s", t->relname);
	if (!table_tuple_satisfies_snapshot(rel, slot, GetTransactionSnapshot()))
	{
		xmin = DatumGetTransactionId(slot_getsysattr(slot,
													 MinTransactionIdAttributeNumber,
													 &isnull));
		if (!TransactionIdIsCurrentTransactionId(xmin))
			ereport(ERROR,
					errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					errmsg("could not serialize access due to concurrent insert of an %s",
						   t->what),
					errhint("Call it in a READ COMMITTED transaction, or retry."));
	}
	ExecDropSingleTupleTableSlot(slot);
}

/*
 * FpInsertOnce - one speculative insertion, the protocol of INSERT ... ON
 * CONFLICT (pk) DO NOTHING: check the arbiter (waiting for an uncommitted
 * insert of the key to end), insert, and back out if someone inserted the
 * key in between.  Returns false if the key exists; sets *retry when the
 * insertion lost a race and must be tried again.
 */
static bool
FpInsertOnce(const FpTable *t, ResultRelInfo *rri, TupleTableSlot *slot,
			 EState *estate, List *arbiters, bool *retry)
{
	Relation	rel = rri->ri_RelationDesc;
	ItemPointerData conflict_tid;
	bool		conflict = false;
	uint32		token;
	List	   *recheck;

	*retry = false;
	if (!ExecCheckIndexConstraints(rri, slot, estate, &conflict_tid, arbiters))
	{
		FpCheckConflictVisible(t, rel, &conflict_tid);
		return false;
	}
	token = SpeculativeInsertionLockAcquire(GetCurrentTransactionId());
	table_tuple_insert_speculative(rel, slot, estate->es_output_cid, 0, NULL,
								   token);
	/* every index is immediate (fp_exact), so nothing is left to recheck */
	recheck = ExecInsertIndexTuples(rri, slot, estate, false, true, &conflict,
									arbiters);
	table_tuple_complete_speculative(rel, slot, token, !conflict);
	SpeculativeInsertionLockRelease(GetCurrentTransactionId());
	list_free(recheck);
	*retry = conflict;
	return !conflict;
}

/*
 * fp_insert_speculative - insert the virtual tuple in slot (made with
 * table_slot_create()) unless its primary key exists; returns whether it
 * did.  Its values must satisfy the table's constraints: fp_exact() made
 * sure they are the ones the caller knows.
 */
bool
fp_insert_speculative(FpTable *t, Relation rel, TupleTableSlot *slot)
{
	EState	   *estate;
	ResultRelInfo *rri;
	List	   *arbiters = list_make1_oid(t->pkey);
	bool		inserted;
	bool		retry;

	Assert(t->shape == FP_SHAPE_EXACT);
	Assert(!t->read_only);
	rri = FpResultRel(rel, true, &estate);
	do
	{
		CHECK_FOR_INTERRUPTS();
		inserted = FpInsertOnce(t, rri, slot, estate, arbiters, &retry);
	} while (retry);
	FpEndResultRel(rri, estate);
	list_free(arbiters);
	/* later lookups, in this statement too, must see the new row */
	if (inserted)
		CommandCounterIncrement();
	return inserted;
}

/*
 * fp_insert - insert the virtual tuple in slot (made with
 * table_slot_create()) and its index entries; for a table without unique
 * indexes but its primary key, whose values the caller makes unique.  Its
 * values must satisfy the table's constraints: fp_exact() made sure they
 * are the ones the caller knows.
 */
void
fp_insert(FpTable *t, Relation rel, TupleTableSlot *slot)
{
	EState	   *estate;
	ResultRelInfo *rri;
	List	   *recheck;

	Assert(t->shape == FP_SHAPE_EXACT);
	Assert(!t->read_only);
	rri = FpResultRel(rel, false, &estate);
	table_tuple_insert(rel, slot, estate->es_output_cid, 0, NULL);
	/* every index is immediate (fp_exact), so nothing is left to recheck */
	recheck = ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL);
	list_free(recheck);
	FpEndResultRel(rri, estate);
	/* later scans, in this statement too, must see the new row */
	CommandCounterIncrement();
}
