// sources: src/fraud_decide.c
/*
 * fuzz_fraud_decide.c
 *	  libFuzzer target of fraud_decide, the decision from rules' verdicts.
 *
 * The input is a list of verdicts (applies, shadow, action, score) and a
 * review threshold.  Invariants, the contract of fraud_evaluate:
 *	- evaluation stops exactly at the first enforcing block, which decides;
 *	- shadow verdicts change neither the decision nor the score: the same
 *	  list without them decides the same;
 *	- the score is the sum of the enforcing verdicts' scores up to the stop;
 *	- without a block, any enforcing challenge decides challenge, else an
 *	  enforcing review or a score at the threshold decides review;
 *	- an extra enforcing block at the end never lowers the decision.
 */
#include <stdlib.h>
#include <string.h>

#include "fraud_decide.h"

#define MAX_VERDICTS 64

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decide - run the verdicts through fraud_decide, as fraud_evaluate does. */
static FraudOutcome
Decide(const FraudVerdict *v, int n, int64_t threshold, int *stopped_at)
{
	FraudOutcome o;
	int			i;

	fd_init(&o);
	for (i = 0; i < n; i++)
		if (!fd_add(&o, &v[i], i))
			break;
	*stopped_at = i;
	fd_finish(&o, threshold);
	return o;
}

/* Expected - the decision computed the long way, from the contract. */
static FraudDecision
Expected(const FraudVerdict *v, int n, int64_t threshold, int64_t *score)
{
	bool		challenge = false,
				review = false;

	*score = 0;
	for (int i = 0; i < n; i++)
	{
		if (!v[i].applies || v[i].shadow)
			continue;
		*score += v[i].score;
		if (v[i].action == FA_BLOCK)
			return FD_BLOCK;
		challenge |= v[i].action == FA_CHALLENGE;
		review |= v[i].action == FA_REVIEW;
	}
	if (challenge)
		return FD_CHALLENGE;
	return (review || *score >= threshold) ? FD_REVIEW : FD_APPROVE;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FraudVerdict v[MAX_VERDICTS + 1],
				enforcing[MAX_VERDICTS];
	int			n = 0,
				ne = 0,
				stop,
				stop2;
	int64_t		threshold,
				score;
	FraudOutcome o,
				o2;

	if (size < 2)
		return 0;
	threshold = (int8_t) data[0] * 4;
	for (size_t i = 1; i + 1 < size && n < MAX_VERDICTS; i += 2, n++)
	{
		v[n].applies = data[i] & 1;
		v[n].shadow = (data[i] & 2) != 0;
		v[n].action = (FraudAction) ((data[i] >> 2) & 3);
		v[n].score = (int8_t) data[i + 1] * 8;
		if (!v[n].shadow)
			enforcing[ne++] = v[n];
	}
	o = Decide(v, n, threshold, &stop);
	if (o.decision != Expected(v, n, threshold, &score) || o.score != score)
		abort();
	if ((o.blocked_by >= 0) != (o.decision == FD_BLOCK) ||
		(o.blocked_by >= 0 && (o.blocked_by != stop || stop >= n ||
							   v[stop].shadow || !v[stop].applies ||
							   v[stop].action != FA_BLOCK)))
		abort();				/* stopped elsewhere than at the first block */
	o2 = Decide(enforcing, ne, threshold, &stop2);
	if (o2.decision != o.decision || o2.score != o.score)
		abort();				/* shadow verdicts decided something */
	v[n] = (FraudVerdict)
	{
		true, false, FA_BLOCK, 0
	};
	o2 = Decide(v, n + 1, threshold, &stop2);
	if (o2.decision < o.decision || o2.decision != FD_BLOCK)
		abort();				/* a later block lowered the decision */
	return 0;
}
