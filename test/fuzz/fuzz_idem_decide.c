// sources: src/idem_decide.c
/*
 * fuzz_idem_decide.c
 *	  libFuzzer target of idem_decide, begin's decision on a stored row.
 *
 * The input is turned into a row's facts, a time and whether the row is
 * locked.  Invariants, the contract of idempotency_begin:
 *	- a row is only changed (overwrite, takeover) when it is locked;
 *	- an in_flight row whose lease runs is never overwritten or taken
 *	  over: its owner is still working, so that would execute twice;
 *	- a different request is never replayed or resumed: it is a conflict,
 *	  unless the row has expired and behaves as absent;
 *	- a replay is of a completed or failed row only;
 *	- unlocked, the decision needs the lock exactly when locked it would
 *	  change the row; locked, it never asks for the lock again.
 */
#include <stdlib.h>
#include <string.h>

#include "idem_decide.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* fuzz_time - a time near 0 from two bytes, so that comparisons tie often. */
static int64_t
fuzz_time(const uint8_t *p)
{
	return (int64_t) (int8_t) p[0] * 3 + (p[1] % 3);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	IdemFacts	row;
	int64_t		now;
	IdemDecision unlocked,
				locked;
	bool		running;

	if (size < 8)
		return 0;
	row.state = (IdemState) (data[0] % 3);
	row.same_request = data[1] & 1;
	row.leased = data[1] & 2;
	row.locked_until = fuzz_time(data + 2);
	row.expires_at = fuzz_time(data + 4);
	now = fuzz_time(data + 6);
	running = row.state == IDEM_IN_FLIGHT && row.leased && row.locked_until > now;

	unlocked = idem_decide(&row, now, false);
	locked = idem_decide(&row, now, true);
	if (unlocked == IDEM_OVERWRITE || unlocked == IDEM_TAKEOVER)
		abort();				/* changed without the lock */
	if (locked == IDEM_LOCK)
		abort();				/* asked for the lock it holds */
	if (running && (locked == IDEM_OVERWRITE || locked == IDEM_TAKEOVER))
		abort();				/* a running owner is never replaced */
	if (running != idem_lease_running(&row, now))
		abort();
	if (!row.same_request && (locked == IDEM_REPLAY || locked == IDEM_TAKEOVER ||
							  locked == IDEM_REFUSE))
		abort();				/* a different request never gets the key's answer */
	if (locked == IDEM_REPLAY && row.state == IDEM_IN_FLIGHT)
		abort();
	if (locked == IDEM_OVERWRITE && !idem_expired(&row, now))
		abort();
	if ((unlocked == IDEM_LOCK) !=
		(locked == IDEM_OVERWRITE || locked == IDEM_TAKEOVER))
		abort();
	if (unlocked != IDEM_LOCK && unlocked != locked)
		abort();				/* the lock changes nothing else */
	return 0;
}
