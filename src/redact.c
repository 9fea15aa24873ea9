/*-------------------------------------------------------------------------
 *
 * redact.c
 *	  PCI redaction: the SQL functions and the row trigger.
 *
 * Every path uses the one scanner of redact_scan.c: payments.redact(text),
 * payments.redact(jsonb), payments.contains_pan(text), payments.luhn_valid,
 * the BEFORE row trigger payments.redact_trigger() and the server-log
 * scrubber of redact_log.c.  Text without any digit costs one quick pass
 * and no allocation: the functions then return their argument.
 *
 * payments.pan_mask chooses the mask (last4, or first6_last4, the most PCI
 * DSS allows to display).  Each masked PAN (a track counts as one) adds one
 * to the counter redact_pans_masked, whichever path masked it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/jsonapi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"

#include "payments.h"
#include "redact.h"
#include "stats.h"

/* What replaces the value of a sensitive jsonb key. */
#define REDACT_KEY_TEXT "[REDACTED]"

int			payments_pan_mask = RS_MASK_LAST4;

static const struct config_enum_entry RedactMaskOptions[] = {
	{"last4", RS_MASK_LAST4, false},
	{"first6_last4", RS_MASK_FIRST6_LAST4, false},
	{NULL, 0, false}
};

/*
 * Keys of jsonb objects whose values are replaced whole, compared after
 * lower-casing and dropping '_', '-', '.' and spaces.
 */
static const char *const RedactSensitiveKeys[] = {
	"cvv", "cvv2", "cvc", "cvc2", "cid", "csc", "cvn", "cvd",
	"securitycode", "cardsecuritycode", "cardverificationvalue",
	"cardnumber", "ccnumber", "creditcardnumber", "pan",
	"primaryaccountnumber", "accountnumber", "track", "track1", "track2",
	"trackdata", "magstripe", "magneticstripe", "pin", "pinblock",
};

/* How the trigger scrubs one column. */
typedef enum RedactColumnKind
{
	REDACT_COL_NONE,
	REDACT_COL_TEXT,
	REDACT_COL_TEXT_LIMITED,	/* varchar(n), char(n): keep the length */
	REDACT_COL_JSONB,
	REDACT_COL_TEXT_ARRAY
} RedactColumnKind;

/*
 * RedactDefineGucs - payments.pan_mask.
 */
static void
RedactDefineGucs(void)
{
	DefineCustomEnumVariable("payments.pan_mask",
							 "How payments.redact masks a card number.",
							 "last4 keeps the last four digits; first6_last4 also the first six.",
							 &payments_pan_mask, RS_MASK_LAST4, RedactMaskOptions,
							 PGC_USERSET, 0, NULL, NULL, NULL);
}

const PaymentsModule PaymentsRedactModule = {
	.name = "redact",
	.define_gucs = RedactDefineGucs,
};

/*
 * redact_scan_options - scanner options of this database and session.
 * Reads only GUC variables and the encoding: the log hook calls it.
 */
void
redact_scan_options(RsOptions *opt, bool keep_length)
{
	opt->mask = (RsMaskStyle) payments_pan_mask;
	opt->keep_length = keep_length;
	opt->utf8 = (GetDatabaseEncoding() == PG_UTF8);
}

/*
 * RedactBytes - the scrubbed copy of s[0..len) as a palloc'd text, or NULL
 * when nothing in it needs scrubbing.  ERROR 54000 when the result would
 * be larger than a text value can be.
 */
static text *
RedactBytes(const char *s, size_t len, bool keep_length)
{
	RsOptions	opt;
	size_t		nspans,
				npans,
				olen;
	text	   *out;

	redact_scan_options(&opt, keep_length);
	olen = rs_redacted_len(s, len, &opt, &nspans, &npans);
	if (nspans == 0)
		return NULL;
	if (olen > MaxAllocSize - VARHDRSZ)
		ereport(ERROR,
				errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				errmsg("redacted text would exceed the maximum size of a text value"),
				errdetail("The scrubbed text would be %zu bytes long; at most %zu are allowed.",
						  olen, (size_t) (MaxAllocSize - VARHDRSZ)),
				errhint("Redact the text in smaller pieces."));
	out = (text *) palloc(olen + VARHDRSZ);
	SET_VARSIZE(out, olen + VARHDRSZ);
	rs_redact(s, len, &opt, VARDATA(out), &npans);
	payments_count(PM_STAT_REDACT_PANS_MASKED, npans);
	return out;
}

/*
 * RedactText - the scrubbed copy of a text datum, or NULL when unchanged.
 */
static text *
RedactText(text *t, bool keep_length)
{
	return RedactBytes(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), keep_length);
}

PG_FUNCTION_INFO_V1(payments_luhn_valid);

/*
 * payments_luhn_valid - whether a number passes the Luhn check; spaces and
 * dashes are ignored, anything else but digits makes it false.
 */
Datum
payments_luhn_valid(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);

	PG_RETURN_BOOL(rs_luhn_text(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)) == 1);
}

PG_FUNCTION_INFO_V1(payments_contains_pan);

/*
 * payments_contains_pan - whether the text holds a card number (alone or
 * in track data), by the rules of payments.redact.
 */
Datum
payments_contains_pan(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	RsOptions	opt;

	redact_scan_options(&opt, false);
	PG_RETURN_BOOL(rs_contains_pan(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &opt));
}

static bool RedactSensitiveKey(const char *key, int len);

/* Where RedactJsonText is in a JSON text: one level of nesting. */
typedef struct RjLevel
{
	bool		object;
	bool		expect_key;
} RjLevel;

/* The rewriting of one JSON text: what is copied, and the open levels. */
typedef struct RjState
{
	const char *s;
	StringInfoData out;
	size_t		copied;			/* s[0..copied) is in out already */
	bool		changed;
	RjLevel    *levels;
	int			depth;
	bool		sensitive;		/* the next value belongs to a sensitive key */
	int			hidden_depth;	/* > 0: inside a sensitive container */
	size_t		hidden_start;
} RjState;

/*
 * RjReplace - put repl in place of s[start..end).
 */
static void
RjReplace(RjState *st, size_t start, size_t end, const char *repl, size_t repl_len)
{
	appendBinaryStringInfo(&st->out, st->s + st->copied, start - st->copied);
	appendBinaryStringInfo(&st->out, repl, repl_len);
	st->copied = end;
	st->changed = true;
}

/*
 * RjScalar - scrub one string or number token s[start..end), or replace it
 * with "[REDACTED]" when it is a sensitive key's value.  A string is
 * scrubbed in its raw form (masks add no quote or backslash), or, when it
 * has escapes, decoded and written back escaped; a number whose digits
 * are a PAN becomes the masked string, as redact(jsonb) does.
 */
static void
RjScalar(RjState *st, JsonLexContext *lex, JsonTokenType tok, size_t start, size_t end)
{
	const char *raw = st->s + start;
	text	   *masked;
	StringInfoData q;

	if (st->sensitive)
	{
		RjReplace(st, start, end, "\"" REDACT_KEY_TEXT "\"", strlen(REDACT_KEY_TEXT) + 2);
		return;
	}
	if (tok == JSON_TOKEN_STRING && memchr(raw, '\\', end - start) == NULL)
	{
		masked = RedactBytes(raw + 1, end - start - 2, false);
		if (masked != NULL)
		{
			initStringInfo(&q);
			appendStringInfoChar(&q, '"');
			appendBinaryStringInfo(&q, VARDATA(masked), VARSIZE(masked) - VARHDRSZ);
			appendStringInfoChar(&q, '"');
			RjReplace(st, start, end, q.data, q.len);
		}
		return;
	}
	masked = tok == JSON_TOKEN_STRING ?
		RedactBytes(lex->strval->data, lex->strval->len, false) :
		RedactBytes(raw, end - start, false);
	if (masked == NULL)
		return;
	initStringInfo(&q);
	escape_json(&q, text_to_cstring(masked));
	RjReplace(st, start, end, q.data, q.len);
}

/*
 * RjToken - take one token of a JSON text already known to be valid.
 */
static void
RjToken(RjState *st, JsonLexContext *lex, JsonTokenType tok)
{
	size_t		start = lex->token_start - st->s;
	size_t		end = lex->token_terminator - st->s;
	RjLevel    *top = st->depth > 0 ? &st->levels[st->depth - 1] : NULL;
	bool		value = top == NULL || !top->object || !top->expect_key;

	switch (tok)
	{
		case JSON_TOKEN_OBJECT_START:
		case JSON_TOKEN_ARRAY_START:
			if (st->hidden_depth == 0 && st->sensitive)
			{
				st->hidden_depth = st->depth + 1;
				st->hidden_start = start;
			}
			st->sensitive = false;
			st->levels[st->depth].object = tok == JSON_TOKEN_OBJECT_START;
			st->levels[st->depth++].expect_key = true;
			break;
		case JSON_TOKEN_OBJECT_END:
		case JSON_TOKEN_ARRAY_END:
			if (st->hidden_depth == st->depth)
			{
				st->hidden_depth = 0;
				RjReplace(st, st->hidden_start, end,
						  "\"" REDACT_KEY_TEXT "\"", strlen(REDACT_KEY_TEXT) + 2);
			}
			st->depth--;
			break;
		case JSON_TOKEN_COMMA:
			top->expect_key = true;
			break;
		case JSON_TOKEN_COLON:
			top->expect_key = false;
			break;
		case JSON_TOKEN_STRING:
		case JSON_TOKEN_NUMBER:
			if (st->hidden_depth == 0)
			{
				if (!value)
					st->sensitive = false;
				RjScalar(st, lex, tok, start, end);
				if (!value)
					st->sensitive = RedactSensitiveKey(lex->strval->data, lex->strval->len);
				else
					st->sensitive = false;
			}
			break;
		default:				/* true, false, null */
			st->sensitive = false;
			break;
	}
}

/*
 * RedactJsonText - a text that is a JSON object or array, scrubbed as
 * redact(jsonb) scrubs it (values of sensitive keys replaced, PAN numbers
 * become masked strings) but keeping its layout, so that the result is
 * valid JSON; NULL when it is not such a JSON text (*json false) or when
 * nothing changed.
 */
static text *
RedactJsonText(const char *s, size_t len, bool *json)
{
	JsonLexContext *lex;
	RjState		st = {0};
	size_t		i = 0;

	*json = false;
	while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	if (i == len || (s[i] != '{' && s[i] != '[') || len > (size_t) PG_INT32_MAX)
		return NULL;
	lex = makeJsonLexContextCstringLen((char *) s, (int) len, GetDatabaseEncoding(), true);
	if (pg_parse_json(lex, &nullSemAction) != JSON_SUCCESS)
		return NULL;
	*json = true;
	lex = makeJsonLexContextCstringLen((char *) s, (int) len, GetDatabaseEncoding(), true);
	st.s = s;
	st.levels = palloc(sizeof(RjLevel) * (len / 2 + 1));
	initStringInfo(&st.out);
	for (;;)
	{
		JsonTokenType tok;

		if (json_lex(lex) != JSON_SUCCESS)
			elog(ERROR, "could not re-read a JSON text that parsed");
		tok = lex->token_type;
		if (tok == JSON_TOKEN_END)
			break;
		RjToken(&st, lex, tok);
	}
	if (!st.changed)
		return NULL;
	appendBinaryStringInfo(&st.out, s + st.copied, len - st.copied);
	return cstring_to_text_with_len(st.out.data, st.out.len);
}

/*
 * RedactTextOrJson - redact(text): a JSON object or array is scrubbed as
 * JSON (the text a driver sends for a JSON document without a cast), any
 * other text by the scanner; NULL when unchanged.
 */
static text *
RedactTextOrJson(text *t)
{
	bool		json;
	text	   *out = RedactJsonText(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &json);

	return json ? out : RedactText(t, false);
}

PG_FUNCTION_INFO_V1(payments_redact_text);

/*
 * payments_redact_text - the text with card numbers masked and CVVs and
 * tracks replaced; a JSON object or array scrubbed as JSON, so that it
 * stays valid JSON; the argument itself when there is nothing to scrub.
 */
Datum
payments_redact_text(PG_FUNCTION_ARGS)
{
	text	   *out = RedactTextOrJson(PG_GETARG_TEXT_PP(0));

	if (out == NULL)
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	PG_RETURN_TEXT_P(out);
}

/*
 * RedactSensitiveKey - whether a jsonb key names card data.
 */
static bool
RedactSensitiveKey(const char *key, int len)
{
	char		norm[32];
	int			n = 0;

	for (int i = 0; i < len; i++)
	{
		char		c = key[i];

		if (c == '_' || c == '-' || c == '.' || c == ' ')
			continue;
		if (n == (int) sizeof(norm) - 1)
			return false;
		norm[n++] = pg_ascii_tolower((unsigned char) c);
	}
	norm[n] = '\0';
	for (size_t k = 0; k < lengthof(RedactSensitiveKeys); k++)
	{
		if (strcmp(norm, RedactSensitiveKeys[k]) == 0)
			return true;
	}
	return false;
}

/*
 * RedactJsonbScalar - scrub a string in place; a number whose digits are a
 * PAN becomes the masked string.  Sets *changed when it did anything.
 */
static void
RedactJsonbScalar(JsonbValue *v, bool *changed)
{
	text	   *out = NULL;

	if (v->type == jbvString)
		out = RedactBytes(v->val.string.val, v->val.string.len, false);
	else if (v->type == jbvNumeric)
	{
		char	   *num = DatumGetCString(DirectFunctionCall1(numeric_out,
															  NumericGetDatum(v->val.numeric)));

		out = RedactBytes(num, strlen(num), false);
	}
	if (out == NULL)
		return;
	v->type = jbvString;
	v->val.string.val = VARDATA(out);
	v->val.string.len = VARSIZE(out) - VARHDRSZ;
	*changed = true;
}

/*
 * RedactJsonbKeyValue - after a key, push its value: "[REDACTED]" for a
 * sensitive key (unless null), else let the main loop scrub it.  Returns
 * true when the value was consumed here.
 */
static bool
RedactJsonbKeyValue(JsonbIterator **it, JsonbParseState **state,
					JsonbValue *key, bool *changed)
{
	JsonbValue	v;

	if (!RedactSensitiveKey(key->val.string.val, key->val.string.len))
		return false;
	(void) JsonbIteratorNext(it, &v, true);
	if (v.type != jbvNull)
	{
		v.type = jbvString;
		v.val.string.val = REDACT_KEY_TEXT;
		v.val.string.len = strlen(REDACT_KEY_TEXT);
		*changed = true;
	}
	pushJsonbValue(state, WJB_VALUE, &v);
	return true;
}

/*
 * redact_jsonb - the scrubbed copy of a jsonb, or NULL when unchanged.
 * Keys are scrubbed like strings; values of sensitive keys are replaced
 * at any depth.
 */
Jsonb *
redact_jsonb(Jsonb *jb)
{
	JsonbIterator *it = JsonbIteratorInit(&jb->root);
	JsonbParseState *state = NULL;
	JsonbValue	v,
			   *res = NULL;
	JsonbIteratorToken tok;
	bool		changed = false;

	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			JsonbValue	key = v;

			RedactJsonbScalar(&v, &changed);
			res = pushJsonbValue(&state, tok, &v);
			/* a sensitive key's value is consumed and replaced there */
			(void) RedactJsonbKeyValue(&it, &state, &key, &changed);
		}
		else if (tok == WJB_VALUE || tok == WJB_ELEM)
		{
			RedactJsonbScalar(&v, &changed);
			res = pushJsonbValue(&state, tok, &v);
		}
		else
			res = pushJsonbValue(&state, tok,
								 (tok == WJB_BEGIN_ARRAY && v.val.array.rawScalar) ? &v : NULL);
	}
	return changed ? JsonbValueToJsonb(res) : NULL;
}

PG_FUNCTION_INFO_V1(payments_redact_jsonb);

/*
 * payments_redact_jsonb - the jsonb with every string scrubbed, numbers
 * that are PANs masked and values of sensitive keys replaced.
 */
Datum
payments_redact_jsonb(PG_FUNCTION_ARGS)
{
	Jsonb	   *out = redact_jsonb(PG_GETARG_JSONB_P(0));

	if (out == NULL)
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	PG_RETURN_JSONB_P(out);
}

/*
 * RedactTextArray - the scrubbed copy of a text[], or NULL when unchanged.
 */
static ArrayType *
RedactTextArray(ArrayType *arr)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	bool		changed = false;

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		text	   *out;

		if (nulls[i])
			continue;
		out = RedactText(DatumGetTextPP(elems[i]), false);
		if (out != NULL)
		{
			elems[i] = PointerGetDatum(out);
			changed = true;
		}
	}
	if (!changed)
		return NULL;
	return construct_md_array(elems, nulls, ARR_NDIM(arr), ARR_DIMS(arr),
							  ARR_LBOUND(arr), TEXTOID, -1, false, TYPALIGN_INT);
}

/*
 * RedactColumnKindOf - how the trigger scrubs a column of this type.
 */
static RedactColumnKind
RedactColumnKindOf(Oid typid, int32 typmod)
{
	if (typid != TEXTOID && typid != VARCHAROID && typid != BPCHAROID &&
		typid != JSONBOID && typid != TEXTARRAYOID)
		typid = getBaseTypeAndTypmod(typid, &typmod);
	switch (typid)
	{
		case TEXTOID:
			return REDACT_COL_TEXT;
		case VARCHAROID:
		case BPCHAROID:
			return typmod >= 0 ? REDACT_COL_TEXT_LIMITED : REDACT_COL_TEXT;
		case JSONBOID:
			return REDACT_COL_JSONB;
		case TEXTARRAYOID:
			return REDACT_COL_TEXT_ARRAY;
		default:
			return REDACT_COL_NONE;
	}
}

/*
 * RedactDatum - the scrubbed value of one column, or 0 when unchanged.
 */
static Datum
RedactDatum(Datum value, RedactColumnKind kind)
{
	void	   *out = NULL;

	switch (kind)
	{
		case REDACT_COL_TEXT:
			out = RedactTextOrJson(DatumGetTextPP(value));
			break;
		case REDACT_COL_TEXT_LIMITED:
			out = RedactText(DatumGetTextPP(value), true);
			break;
		case REDACT_COL_JSONB:
			out = redact_jsonb(DatumGetJsonbP(value));
			break;
		case REDACT_COL_TEXT_ARRAY:
			out = RedactTextArray(DatumGetArrayTypeP(value));
			break;
		case REDACT_COL_NONE:
			break;
	}
	return PointerGetDatum(out);
}

/*
 * RedactTriggerColumn - the attribute number and kind of a column the
 * trigger was told to scrub; ERROR 42703 or 42804 when it cannot.
 */
static int
RedactTriggerColumn(Relation rel, const char *name, RedactColumnKind *kind)
{
	TupleDesc	desc = RelationGetDescr(rel);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || strcmp(NameStr(att->attname), name) != 0)
			continue;
		*kind = RedactColumnKindOf(att->atttypid, att->atttypmod);
		if (*kind == REDACT_COL_NONE)
			ereport(ERROR,
					errcode(ERRCODE_DATATYPE_MISMATCH),
					errmsg("column \"%s\" of table \"%s\" cannot be redacted",
						   name, RelationGetRelationName(rel)),
					errdetail("Its type is %s; payments.redact_trigger scrubs text, varchar, char, jsonb and text[] columns.",
							  format_type_be(att->atttypid)));
		return i + 1;
	}
	ereport(ERROR,
			errcode(ERRCODE_UNDEFINED_COLUMN),
			errmsg("column \"%s\" of table \"%s\" does not exist",
				   name, RelationGetRelationName(rel)),
			errhint("Name the columns to scrub in the arguments of payments.redact_trigger()."));
	return 0;					/* keep the compiler quiet */
}

/*
 * RedactCheckTrigger - ERROR 39P01 unless fired BEFORE INSERT or UPDATE
 * FOR EACH ROW.
 */
static TriggerData *
RedactCheckTrigger(FunctionCallInfo fcinfo)
{
	TriggerData *td;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				errmsg("payments.redact_trigger() must be called as a trigger"));
	td = (TriggerData *) fcinfo->context;
	if (!TRIGGER_FIRED_BEFORE(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(td->tg_event) || TRIGGER_FIRED_BY_UPDATE(td->tg_event)))
		ereport(ERROR,
				errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				errmsg("payments.redact_trigger() must be fired BEFORE INSERT OR UPDATE FOR EACH ROW"),
				errhint("CREATE TRIGGER ... BEFORE INSERT OR UPDATE ON t FOR EACH ROW EXECUTE FUNCTION payments.redact_trigger();"));
	return td;
}

/*
 * The trigger's plan for one table: which columns it scrubs and how, kept
 * in fn_extra across rows.  Each use checks every planned column's type
 * (and name, for named columns) against the current descriptor, so that an
 * ALTER TABLE between two rows only costs a new plan.
 */
typedef struct RedactPlan
{
	Oid			relid;
	int			ncols;
	int		   *attnums;
	RedactColumnKind *kinds;
	Oid		   *typids;			/* InvalidOid for a dropped column */
	int32	   *typmods;
	/* scratch space of one row: the replaced columns */
	int		   *repl_cols;
	Datum	   *repl_vals;
	bool	   *repl_nulls;
} RedactPlan;

/*
 * RedactPlanValid - whether a cached plan still fits the table.
 */
static bool
RedactPlanValid(RedactPlan *plan, TriggerData *td)
{
	Relation	rel = td->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	int			nargs = td->tg_trigger->tgnargs;

	if (plan == NULL || plan->relid != RelationGetRelid(rel))
		return false;
	for (int i = 0; i < plan->ncols; i++)
	{
		Form_pg_attribute att;

		if (plan->attnums[i] > desc->natts)
			return false;
		att = TupleDescAttr(desc, plan->attnums[i] - 1);
		if ((att->attisdropped ? InvalidOid : att->atttypid) != plan->typids[i] ||
			att->atttypmod != plan->typmods[i] ||
			(nargs > 0 && strcmp(NameStr(att->attname), td->tg_trigger->tgargs[i]) != 0))
			return false;
	}
	/* with no arguments, a column added since must be planned too */
	return nargs > 0 || plan->ncols == desc->natts;
}

/*
 * RedactMakePlan - plan the columns of the trigger's table, in the
 * function's memory context.
 */
static RedactPlan *
RedactMakePlan(FunctionCallInfo fcinfo, TriggerData *td)
{
	Relation	rel = td->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	int			nargs = td->tg_trigger->tgnargs;
	int			max = nargs > 0 ? nargs : desc->natts;
	RedactPlan *plan;
	MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

	plan = palloc0(sizeof(RedactPlan));
	plan->relid = RelationGetRelid(rel);
	plan->ncols = max;
	plan->attnums = palloc0(sizeof(int) * max);
	plan->kinds = palloc0(sizeof(RedactColumnKind) * max);
	plan->typids = palloc0(sizeof(Oid) * max);
	plan->typmods = palloc0(sizeof(int32) * max);
	plan->repl_cols = palloc0(sizeof(int) * max);
	plan->repl_vals = palloc0(sizeof(Datum) * max);
	plan->repl_nulls = palloc0(sizeof(bool) * max);
	MemoryContextSwitchTo(old);
	for (int n = 0; n < max; n++)
	{
		Form_pg_attribute att;
		RedactColumnKind kind;
		int			attnum;

		if (nargs > 0)
			attnum = RedactTriggerColumn(rel, td->tg_trigger->tgargs[n], &kind);
		else
		{
			attnum = n + 1;
			att = TupleDescAttr(desc, n);
			kind = att->attisdropped ? REDACT_COL_NONE :
				RedactColumnKindOf(att->atttypid, att->atttypmod);
		}
		att = TupleDescAttr(desc, attnum - 1);
		plan->attnums[n] = attnum;
		plan->kinds[n] = kind;
		plan->typids[n] = att->attisdropped ? InvalidOid : att->atttypid;
		plan->typmods[n] = att->atttypmod;
	}
	return plan;
}

PG_FUNCTION_INFO_V1(payments_redact_trigger);

/*
 * payments_redact_trigger - scrub the named columns (every text, varchar,
 * char, jsonb and text[] column when none is named) of the new row.
 * Columns with a length limit get the length-keeping mask, so that the
 * row never fails because of the trigger.
 */
Datum
payments_redact_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = RedactCheckTrigger(fcinfo);
	TupleDesc	desc = RelationGetDescr(td->tg_relation);
	HeapTuple	tuple = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ?
		td->tg_newtuple : td->tg_trigtuple;
	RedactPlan *plan = (RedactPlan *) fcinfo->flinfo->fn_extra;
	int			nrepl = 0;

	if (!RedactPlanValid(plan, td))
	{
		/* an old plan stays in fn_mcxt until the query ends: it is small */
		fcinfo->flinfo->fn_extra = NULL;
		plan = RedactMakePlan(fcinfo, td);
		fcinfo->flinfo->fn_extra = plan;
	}
	for (int i = 0; i < plan->ncols; i++)
	{
		bool		isnull;
		Datum		value,
					out;

		if (plan->kinds[i] == REDACT_COL_NONE)
			continue;
		value = heap_getattr(tuple, plan->attnums[i], desc, &isnull);
		if (isnull || (out = RedactDatum(value, plan->kinds[i])) == (Datum) 0)
			continue;
		plan->repl_cols[nrepl] = plan->attnums[i];
		plan->repl_vals[nrepl] = out;
		plan->repl_nulls[nrepl++] = false;
	}
	if (nrepl > 0)
		tuple = heap_modify_tuple_by_cols(tuple, desc, nrepl, plan->repl_cols,
										  plan->repl_vals, plan->repl_nulls);
	return PointerGetDatum(tuple);
}
