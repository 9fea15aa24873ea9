/*-------------------------------------------------------------------------
 *
 * payments.c
 *	  Module entry point: the module registry, GUCs, shared memory, hooks.
 *
 * Every SQL function of the extension works when the library is merely
 * loaded by a session.  With shared_preload_libraries = 'payments' the
 * library also reserves shared memory and LWLocks in the PG15
 * shmem_request_hook, attaches them in shmem_startup_hook (both chain to
 * whatever was installed before) and lets each module install its hooks
 * and background workers.  What each module needs is in its
 * PaymentsModule; this file only loops over the list below.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"

#include "payments.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* Every module of the extension, in the order they are initialised. */
static const PaymentsModule *const PaymentsModules[] = {
	&PaymentsStatsModule,
	&PaymentsIdempotencyModule,
	&PaymentsRedactModule,
	&PaymentsRedactLogModule,
	&PaymentsWebhookModule,
	&PaymentsFraudModule,
	&PaymentsSagaModule,
	&PaymentsWorkerModule,
};

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/*
 * PaymentsTrancheName - the LWLock tranche of a module: "payments <name>".
 */
static const char *
PaymentsTrancheName(const PaymentsModule *m)
{
	return psprintf("payments %s", m->name);
}

/*
 * payments_shmem_request - reserve the shared memory and LWLocks of every
 * module.
 */
static void
payments_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	for (int i = 0; i < (int) lengthof(PaymentsModules); i++)
	{
		const PaymentsModule *m = PaymentsModules[i];

		if (m->shmem_size)
			RequestAddinShmemSpace(m->shmem_size());
		if (m->nlwlocks > 0)
			RequestNamedLWLockTranche(PaymentsTrancheName(m), m->nlwlocks);
	}
}

/*
 * payments_shmem_startup - create or attach every module's shared structs;
 * in the postmaster, once, run the modules' checks of the other preloaded
 * libraries (they have all been loaded by now).
 */
static void
payments_shmem_startup(void)
{
	static bool checked = false;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	for (int i = 0; i < (int) lengthof(PaymentsModules); i++)
	{
		if (PaymentsModules[i]->shmem_init)
			PaymentsModules[i]->shmem_init();
	}
	LWLockRelease(AddinShmemInitLock);
	if (IsUnderPostmaster || checked)
		return;
	checked = true;
	for (int i = 0; i < (int) lengthof(PaymentsModules); i++)
	{
		if (PaymentsModules[i]->preload_done)
			PaymentsModules[i]->preload_done();
	}
}

/*
 * _PG_init - define every module's GUCs and, when preloaded, install the
 * shared-memory hooks and each module's own hooks and workers.
 */
void
_PG_init(void)
{
	for (int i = 0; i < (int) lengthof(PaymentsModules); i++)
	{
		if (PaymentsModules[i]->define_gucs)
			PaymentsModules[i]->define_gucs();
	}
	MarkGUCPrefixReserved("payments");

	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = payments_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = payments_shmem_startup;
	for (int i = 0; i < (int) lengthof(PaymentsModules); i++)
	{
		if (PaymentsModules[i]->preload)
			PaymentsModules[i]->preload();
	}
}
