/*-------------------------------------------------------------------------
 *
 * payments.h
 *	  Names shared by every module, and the module registry.
 *
 * Each module of the extension describes what it needs from the server in
 * one PaymentsModule: its GUCs, its shared memory, its LWLock tranche and
 * what it installs only when preloaded (hooks, background workers).
 * payments.c lists the modules once and _PG_init loops over them, so a new
 * module is one new entry there and nothing else.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYMENTS_H
#define PAYMENTS_H

/* The schema that owns every object of the extension. */
#define PAYMENTS_SCHEMA "payments"

/* What one module asks of the server; NULL/0 for what it does not need. */
typedef struct PaymentsModule
{
	const char *name;
	/* define the module's payments.* GUCs (preloaded or not) */
	void		(*define_gucs) (void);
	/* shared memory to reserve, and creating or attaching it */
	Size		(*shmem_size) (void);
	void		(*shmem_init) (void);	/* AddinShmemInitLock is held */
	/* LWLocks in the tranche named after the module */
	int			nlwlocks;
	/* hooks and background workers: only under shared_preload_libraries */
	void		(*preload) (void);
	/* in the postmaster once every preloaded library is in: checks */
	void		(*preload_done) (void);
} PaymentsModule;

extern const PaymentsModule PaymentsStatsModule;
extern const PaymentsModule PaymentsIdempotencyModule;
extern const PaymentsModule PaymentsRedactModule;
extern const PaymentsModule PaymentsRedactLogModule;
extern const PaymentsModule PaymentsWebhookModule;
extern const PaymentsModule PaymentsFraudModule;
extern const PaymentsModule PaymentsSagaModule;
extern const PaymentsModule PaymentsWorkerModule;

#endif							/* PAYMENTS_H */
