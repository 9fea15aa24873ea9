/*-------------------------------------------------------------------------
 *
 * idem_decide.h
 *	  What idempotency_begin does with a key's stored row: a pure function.
 *
 * Plain C over the facts of one row and the time of the call: no server,
 * no allocation, no errors, so that a test can drive it directly
 * (test/fuzz/fuzz_idem_decide.c checks its invariants over any input).
 * Times are microseconds on any one clock.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYMENTS_IDEM_DECIDE_H
#define PAYMENTS_IDEM_DECIDE_H

#include <stdbool.h>
#include <stdint.h>

/* The states of a key, in the order of their names in the table. */
typedef enum IdemState
{
	IDEM_IN_FLIGHT,
	IDEM_COMPLETED,
	IDEM_FAILED
} IdemState;

/* What begin does with the row it found. */
typedef enum IdemDecision
{
	IDEM_LOCK,					/* decide again on the row locked */
	IDEM_OVERWRITE,				/* expired: reuse the key as new */
	IDEM_CONFLICT,				/* PM001 */
	IDEM_REFUSE,				/* PM002 */
	IDEM_REPLAY,				/* completed or failed: return it */
	IDEM_TAKEOVER				/* lease ran out: resume */
} IdemDecision;

/* The facts of a stored row that a decision depends on. */
typedef struct IdemFacts
{
	IdemState	state;
	bool		same_request;	/* the fingerprints are equal */
	bool		leased;			/* locked_until is set */
	int64_t		locked_until;
	int64_t		expires_at;
} IdemFacts;

extern bool idem_lease_running(const IdemFacts *row, int64_t now);
extern bool idem_expired(const IdemFacts *row, int64_t now);
extern IdemDecision idem_decide(const IdemFacts *row, int64_t now,
								bool locked);

#endif							/* PAYMENTS_IDEM_DECIDE_H */
