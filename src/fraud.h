/*-------------------------------------------------------------------------
 *
 * fraud.h
 *	  Fraud scoring: what the files of the module share.
 *
 *	  fraud.c			module, GUCs, the rule cache, the SQL entry points
 *	  fraud_rule.c		compiling (and so validating) one rule
 *	  fraud_run.c		running one compiled rule on a context
 *	  fraud_store.c		the module's SQL: lists, velocity, the audit trail
 *	  fraud_backtest.c	replaying recorded evaluations with a candidate rule
 *	  fraud_decide.c	the decision from verdicts (pure C)
 *	  fraud_expr.c		the expression language's parser (pure C)
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYMENTS_FRAUD_H
#define PAYMENTS_FRAUD_H

#include "datatype/timestamp.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "fraud_decide.h"
#include "fraud_expr.h"

/* Longest rule name, list name or field path accepted. */
#define FRAUD_NAME_MAX 128

/* Longest velocity key value stored as it is (longer ones: a digest). */
#define FRAUD_VELOCITY_KEY_MAX 256

typedef enum FraudKind
{
	FK_BLOCKLIST,
	FK_AVS_CVV,
	FK_VELOCITY,
	FK_COUNTRY_MISMATCH,
	FK_HIGH_AMOUNT,
	FK_EXPRESSION
} FraudKind;

/* A context field: a dotted path of object keys. */
typedef struct FraudField
{
	const char *path;			/* NULL: no field */
	int			len;
	bool		email;			/* compared case-insensitively */
} FraudField;

/* A number of an expression, converted once. */
typedef struct FraudNumber
{
	uint32		str;			/* the operand's offset in the strings */
	Numeric		value;
} FraudNumber;

/* A rule, compiled from its row. */
typedef struct FraudRule
{
	const char *name;
	FraudKind	kind;
	bool		action_set;		/* false: the kind's default per outcome */
	FraudAction action;
	bool		score_set;
	int32		score;
	bool		shadow;
	union
	{
		struct
		{
			FraudField	field;
			const char *list;
		}			blocklist;
		struct
		{
			FraudField	key;
			Interval	window;
			int64		max_count;	/* 0: none */
			FraudField	sum;	/* path NULL: none */
			Numeric		max_sum;
		}			velocity;
		struct
		{
			int			nfields;
			FraudField *fields;
		}			mismatch;
		struct
		{
			FraudField	amount;
			FraudField	currency;
			Numeric		threshold;
			const char *code;	/* NULL: any currency */
		}			high_amount;
		struct
		{
			FxExpr		expr;
			int			nnumbers;
			FraudNumber *numbers;
		}			expression;
	}			u;
} FraudRule;

/* A velocity key field and the sum fields recorded with it. */
typedef struct FraudVelocityKey
{
	FraudField	field;
	int			nsums;
	FraudField *sums;
} FraudVelocityKey;

/* The enabled rules of the database, in position order. */
typedef struct FraudRuleSet
{
	int			nrules;
	FraudRule  *rules;
	int			nkeys;			/* distinct velocity keys, sorted by path */
	FraudVelocityKey *keys;
} FraudRuleSet;

/* What running one rule found. */
typedef struct FraudRunResult
{
	bool		hit;
	FraudAction action;			/* when hit */
	int32		score;			/* when hit */
	const char *detail;			/* why it hit (or NULL) */
	const char *error;			/* it could not run: why (or NULL) */
} FraudRunResult;

/* One evaluation's inputs, as the rules see them. */
typedef struct FraudInput
{
	Jsonb	   *context;
	TimestampTz at;
	int64		before_id;		/* velocity counts evaluations with lower ids */
} FraudInput;

/* A value of a context field, as rules compare it. */
typedef enum FraudValueKind
{
	FV_MISSING,					/* absent or JSON null */
	FV_STRING,
	FV_NUMBER,
	FV_BOOL,
	FV_OTHER					/* object or array */
} FraudValueKind;

typedef struct FraudValue
{
	FraudValueKind kind;
	const char *str;			/* FV_STRING: not NUL-terminated */
	int			len;
	Numeric		num;			/* FV_NUMBER */
	bool		boolean;		/* FV_BOOL */
} FraudValue;

/* fraud.c */
extern int	payments_fraud_review_threshold;
extern int	payments_fraud_on_error;
extern Oid	fraud_owner(void);

/* fraud_rule.c */
extern void fraud_rule_compile(FraudRule *r, const char *name, const char *kind,
							   Jsonb *params, const char *action,
							   bool score_null, int32 score, const char *mode);
extern void fraud_ruleset_keys(FraudRuleSet *set);
extern bool fraud_field_compile(const char *path, FraudField *f);
extern bool fraud_field_is_email(const char *key, int len);
extern const char *fraud_kind_name(FraudKind kind);

/* fraud_run.c */
extern void fraud_value(Jsonb *context, const FraudField *f, FraudValue *v);
extern bool fraud_value_key(const FraudValue *v, bool email, char **out);
extern bool fraud_velocity_key(const FraudValue *v, bool email, char **out);
extern bool fraud_value_numeric(const FraudValue *v, Numeric *out);
extern void fraud_rule_run(const FraudRule *r, const FraudInput *in,
						   FraudRunResult *res);

/* fraud_store.c */
extern void fraud_store_load_rules(FraudRuleSet *set, MemoryContext cxt);
extern bool fraud_store_listed(const char *list, const char *value, bool email);
extern void fraud_store_velocity(const FraudField *key, const char *value,
								 TimestampTz from, const FraudInput *in,
								 const FraudField *sum, int64 *count,
								 Numeric *total);
extern int64 fraud_store_record(const FraudInput *in, FraudDecision decision,
								int32 score, const char *blocked_by,
								Jsonb *verdicts);
extern void fraud_store_record_velocity(const FraudVelocityKey *key,
										const char *value, TimestampTz at,
										int64 evaluation_id, Jsonb *amounts);
extern int64 fraud_store_purge(TimestampTz before, TimestampTz velocity_before,
							   int64 max_rows);

#endif							/* PAYMENTS_FRAUD_H */
