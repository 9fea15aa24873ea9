/*-------------------------------------------------------------------------
 *
 * idem_decide.c
 *	  What idempotency_begin does with a key's stored row (see the header).
 *
 * Only standard C headers are included: the libFuzzer target links this
 * file without a server.
 *
 *-------------------------------------------------------------------------
 */
#include "idem_decide.h"

/*
 * idem_lease_running - whether an in_flight row's owner still holds it.
 */
bool
idem_lease_running(const IdemFacts *row, int64_t now)
{
	return row->state == IDEM_IN_FLIGHT && row->leased &&
		row->locked_until > now;
}

/*
 * idem_expired - whether the row behaves as absent.  An in_flight key
 * whose lease still runs never expires: reusing it would execute twice.
 */
bool
idem_expired(const IdemFacts *row, int64_t now)
{
	return row->expires_at <= now && !idem_lease_running(row, now);
}

/*
 * idem_decide - what begin does with a row; decisions that modify the row
 * are only taken when the caller holds it locked.
 */
IdemDecision
idem_decide(const IdemFacts *row, int64_t now, bool locked)
{
	if (idem_expired(row, now))
		return locked ? IDEM_OVERWRITE : IDEM_LOCK;
	if (!row->same_request)
		return IDEM_CONFLICT;
	if (row->state != IDEM_IN_FLIGHT)
		return IDEM_REPLAY;
	if (idem_lease_running(row, now))
		return IDEM_REFUSE;
	return locked ? IDEM_TAKEOVER : IDEM_LOCK;
}
