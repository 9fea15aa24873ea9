/*-------------------------------------------------------------------------
 *
 * payments.c
 *	  Module entry point: GUCs, shared memory and hooks.
 *
 * Every SQL function of the extension works when the library is merely
 * loaded by a session.  With shared_preload_libraries = 'payments' the
 * library also asks for shared memory (the counters of payments.stats) in
 * the PG15 shmem_request_hook and attaches it in shmem_startup_hook; both
 * hooks chain to whatever was installed before.
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
#include "redact.h"
#include "stats.h"
#include "webhook.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/*
 * payments_shmem_request - reserve the shared memory of every module.
 */
static void
payments_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(PaymentsStatsShmemSize());
}

/*
 * payments_shmem_startup - create or attach the shared structs.
 */
static void
payments_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	PaymentsStatsShmemInit();
	LWLockRelease(AddinShmemInitLock);
}

/*
 * _PG_init - define the GUCs and, when preloaded, install the hooks.
 */
void
_PG_init(void)
{
	PaymentsWebhookInit();
	PaymentsRedactInit();
	MarkGUCPrefixReserved("payments");

	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = payments_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = payments_shmem_startup;
}
