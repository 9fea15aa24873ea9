/*-------------------------------------------------------------------------
 *
 * idempotency.h
 *	  Idempotency keys: what the SQL entry points (idempotency.c) and the
 *	  storage (idem_store.c) share.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYMENTS_IDEMPOTENCY_H
#define PAYMENTS_IDEMPOTENCY_H

#include "datatype/timestamp.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "digest.h"
#include "idem_decide.h"

#define IDEM_FP_LEN PAYMENTS_SHA256_LEN

extern const char *const IdemStateNames[];

/* payments.idempotency_require_token */
extern bool payments_idempotency_require_token;

/* The key a call is about, when the call happened, and the caller's token. */
typedef struct IdemKey
{
	text	   *scope;
	text	   *key;
	TimestampTz now;
	MemoryContext cxt;			/* where results are copied (outlives SPI) */
	pg_uuid_t  *token;			/* checkpoint/complete/fail: NULL for none */
} IdemKey;

/* The arguments of begin. */
typedef struct IdemRequest
{
	IdemKey		k;
	uint8		fingerprint[IDEM_FP_LEN];
	Interval   *lease;
	Interval   *ttl;
	TimestampTz locked_until;
	TimestampTz expires_at;
	pg_uuid_t	new_token;		/* the owner token if this call owns the key */
} IdemRequest;

/* A stored row, as far as a decision and a replay need it. */
typedef struct IdemRow
{
	IdemFacts	facts;			/* same_request is filled by the caller */
	uint8		fingerprint[IDEM_FP_LEN];
	text	   *recovery_point;
	Jsonb	   *response;
	Jsonb	   *error;
	TimestampTz created_at;
	bool		has_owner;
	pg_uuid_t	owner_token;
} IdemRow;

/* What checkpoint, complete and fail change on a live in_flight key. */
typedef enum IdemFinishKind
{
	IDEM_FINISH_CHECKPOINT,		/* value: recovery_point text */
	IDEM_FINISH_COMPLETE,		/* value: response jsonb */
	IDEM_FINISH_FAIL,			/* value: error jsonb */
	IDEM_FINISH_FORGET			/* value: unused; deletes the key */
} IdemFinishKind;

extern bool idem_store_lookup(const IdemKey *k, IdemRow *row);
extern bool idem_store_insert(const IdemRequest *req);
extern bool idem_store_lock(const IdemRequest *req, IdemRow *row);
extern void idem_store_overwrite(const IdemRequest *req);
extern void idem_store_takeover(const IdemRequest *req);
extern bool idem_store_finish(const IdemKey *k, IdemFinishKind kind,
							  Datum value);
extern int64 idem_store_purge(TimestampTz before, int64 max_rows);

#endif							/* PAYMENTS_IDEMPOTENCY_H */
