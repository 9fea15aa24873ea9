/*-------------------------------------------------------------------------
 *
 * fraud_decide.h
 *	  The fraud decision: rules' verdicts in, approve/review/challenge/block
 *	  out.
 *
 * Pure C, no server: fraud_evaluate (fraud.c) feeds it the verdicts of the
 * rules it runs, in position order, and stops when it says so; the
 * backtest (fraud_backtest.c) replays recorded verdicts through it with a
 * candidate rule inserted.  The order of precedence:
 *	- the first enforcing block stops the evaluation and decides;
 *	- otherwise any enforcing challenge decides;
 *	- otherwise review, when an enforcing rule asked for it or the score
 *	  (the sum of enforcing hits' scores) reached the review threshold;
 *	- otherwise approve.
 * Shadow verdicts never change the decision or the score.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYMENTS_FRAUD_DECIDE_H
#define PAYMENTS_FRAUD_DECIDE_H

#include <stdbool.h>
#include <stdint.h>

/* What a rule asks for when it applies, weakest first. */
typedef enum FraudAction
{
	FA_SCORE,					/* only its score counts */
	FA_REVIEW,
	FA_CHALLENGE,
	FA_BLOCK
} FraudAction;

/* The decision, weakest first. */
typedef enum FraudDecision
{
	FD_APPROVE,
	FD_REVIEW,
	FD_CHALLENGE,
	FD_BLOCK
} FraudDecision;

/* One rule's verdict, as far as the decision is concerned. */
typedef struct FraudVerdict
{
	bool		applies;		/* it hit (or failed) and asks for action */
	bool		shadow;			/* recorded only, never decides */
	FraudAction action;
	int32_t		score;
} FraudVerdict;

/* The decision so far. */
typedef struct FraudOutcome
{
	int64_t		score;			/* sum of enforcing verdicts' scores */
	bool		review;			/* an enforcing verdict asked for review */
	bool		challenge;		/* ... for a challenge */
	int			blocked_by;		/* index of the blocking verdict, or -1 */
	FraudDecision decision;		/* set by fd_finish */
} FraudOutcome;

extern void fd_init(FraudOutcome *o);
extern bool fd_add(FraudOutcome *o, const FraudVerdict *v, int index);
extern void fd_finish(FraudOutcome *o, int64_t review_threshold);
extern int32_t fd_score(const FraudOutcome *o);
extern const char *fd_decision_name(FraudDecision d);
extern const char *fd_action_name(FraudAction a);
extern bool fd_action_from_name(const char *name, FraudAction *a);

#endif							/* PAYMENTS_FRAUD_DECIDE_H */
