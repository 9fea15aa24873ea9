/*-------------------------------------------------------------------------
 *
 * fraud_decide.c
 *	  The fraud decision from rules' verdicts (see fraud_decide.h).
 *
 *-------------------------------------------------------------------------
 */
#include <string.h>

#include "fraud_decide.h"

static const char *const FdDecisionNames[] = {
	"approve", "review", "challenge", "block"
};

static const char *const FdActionNames[] = {
	"score", "review", "challenge", "block"
};

/*
 * fd_init - an outcome before any verdict: approve, score 0.
 */
void
fd_init(FraudOutcome *o)
{
	memset(o, 0, sizeof(*o));
	o->blocked_by = -1;
	o->decision = FD_APPROVE;
}

/*
 * fd_add - take the verdict of the rule at index; false when evaluation
 * stops here (an enforcing block), true to go on with the next rule.
 */
bool
fd_add(FraudOutcome *o, const FraudVerdict *v, int index)
{
	if (!v->applies || v->shadow)
		return true;
	o->score += v->score;
	switch (v->action)
	{
		case FA_BLOCK:
			o->blocked_by = index;
			return false;
		case FA_CHALLENGE:
			o->challenge = true;
			break;
		case FA_REVIEW:
			o->review = true;
			break;
		case FA_SCORE:
			break;
	}
	return true;
}

/*
 * fd_finish - decide, once every verdict up to the stop is in.
 */
void
fd_finish(FraudOutcome *o, int64_t review_threshold)
{
	if (o->blocked_by >= 0)
		o->decision = FD_BLOCK;
	else if (o->challenge)
		o->decision = FD_CHALLENGE;
	else if (o->review || o->score >= review_threshold)
		o->decision = FD_REVIEW;
	else
		o->decision = FD_APPROVE;
}

/*
 * fd_score - the outcome's score, clamped to int32 (rules' scores are
 * bounded, but a sum over many rules need not be).
 */
int32_t
fd_score(const FraudOutcome *o)
{
	if (o->score > INT32_MAX)
		return INT32_MAX;
	if (o->score < INT32_MIN)
		return INT32_MIN;
	return (int32_t) o->score;
}

/*
 * fd_decision_name - the decision as the SQL API spells it.
 */
const char *
fd_decision_name(FraudDecision d)
{
	return FdDecisionNames[d];
}

/*
 * fd_action_name - the action as the rules table spells it.
 */
const char *
fd_action_name(FraudAction a)
{
	return FdActionNames[a];
}

/*
 * fd_action_from_name - the action spelled name; false if there is none.
 */
bool
fd_action_from_name(const char *name, FraudAction *a)
{
	for (int i = 0; i < (int) (sizeof(FdActionNames) / sizeof(FdActionNames[0])); i++)
	{
		if (strcmp(name, FdActionNames[i]) == 0)
		{
			*a = (FraudAction) i;
			return true;
		}
	}
	return false;
}
