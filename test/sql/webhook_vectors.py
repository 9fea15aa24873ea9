#!/usr/bin/env python3
# test/sql/webhook_vectors.py: prints the VALUES rows of test/sql/webhook.sql.
#
# Generates the webhook_verify vectors with Python's hmac module, an
# implementation independent of the extension's.
import hmac, hashlib, base64, json, sys

T = 1700000000          # 2023-11-14 22:13:20+00
rows = []

def hexsig(key, msg): return hmac.new(key, msg, hashlib.sha256).hexdigest()
def b64sig(key, msg): return base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()
def sqls(s): return "'" + s.replace("'", "''") + "'"
def sqlb(b): return "'\\x" + b.hex() + "'::bytea"
def arr(secrets):
    if secrets is None: return "NULL"
    return "ARRAY[" + ", ".join("NULL" if s is None else sqls(s) for s in secrets) + "]::text[]"
def hdrs(d):
    if isinstance(d, str): return sqls(d) + "::jsonb"
    return sqls(json.dumps(d, ensure_ascii=False)) + "::jsonb"

def add(scheme, label, secrets, headers, body, at, valid, reason, tol=300):
    rows.append("(%s, %s, %s, %s, %s, %s, %s, %s, %s)" % (
        sqls(scheme), sqls(label), arr(secrets), hdrs(headers), sqlb(body),
        "interval '%d seconds'" % tol, "to_timestamp(%d)" % at,
        "true" if valid else "false", sqls(reason)))

# ---- stripe: secret used as given, whsec_ prefix included
SK = "whsec_test_5e4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a"
SK2 = "whsec_test_rotated_0a1b2c3d4e5f6a7b8c9d0e1f"
sbody = b'{"id": "evt_1NG8Du2eZvKYlo2CUI79vXWy", "object": "event", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_3", "amount": 2000}}}'
def stripe_hdr(key, t, body, extra=""):
    return "t=%d,v1=%s%s" % (t, hexsig(key.encode(), b"%d." % t + body), extra)
H = stripe_hdr(SK, T, sbody)
add("stripe", "valid", [SK], {"Stripe-Signature": H}, sbody, T, True, "ok")
add("stripe", "valid, header name in upper case", [SK], {"STRIPE-SIGNATURE": H}, sbody, T, True, "ok")
add("stripe", "valid, header value as a one-string array", [SK], {"stripe-signature": [H]}, sbody, T, True, "ok")
add("stripe", "tampered body", [SK], {"Stripe-Signature": H}, sbody.replace(b"2000", b"9000"), T, False, "no_matching_signature")
add("stripe", "wrong secret", [SK2], {"Stripe-Signature": H}, sbody, T, False, "no_matching_signature")
add("stripe", "secret without its whsec_ prefix", [SK[6:]], {"Stripe-Signature": H}, sbody, T, False, "no_matching_signature")
add("stripe", "rotation: old and new secret, signed with the new", [SK2, SK], {"Stripe-Signature": H}, sbody, T, True, "ok")
H2 = "t=%d,v1=%s,v1=%s" % (T, hexsig(SK2.encode(), b"%d." % T + sbody), hexsig(SK.encode(), b"%d." % T + sbody))
add("stripe", "rotation: two v1 signatures, second matches", [SK], {"Stripe-Signature": H2}, sbody, T, True, "ok")
add("stripe", "v1 in upper-case hex", [SK], {"Stripe-Signature": H.upper().replace("T=", "t=").replace("V1=", "v1=")}, sbody, T, True, "ok")
add("stripe", "blanks after commas", [SK], {"Stripe-Signature": H.replace(",", ", ")}, sbody, T, True, "ok")
H0 = "t=%d,v0=%s" % (T, hexsig(SK.encode(), b"%d." % T + sbody))
add("stripe", "only a v0 entry (ignored), even if it would match", [SK], {"Stripe-Signature": H0}, sbody, T, False, "no_matching_signature")
add("stripe", "v0 entry before v1 is ignored", [SK], {"Stripe-Signature": H0 + ",v1=" + H.split("v1=")[1]}, sbody, T, True, "ok")
add("stripe", "expired: 301 s old, tolerance 300 s", [SK], {"Stripe-Signature": H}, sbody, T + 301, False, "timestamp_too_old")
add("stripe", "boundary: exactly 300 s old", [SK], {"Stripe-Signature": H}, sbody, T + 300, True, "ok")
add("stripe", "future: 301 s ahead", [SK], {"Stripe-Signature": H}, sbody, T - 301, False, "timestamp_in_future")
add("stripe", "boundary: exactly 300 s ahead", [SK], {"Stripe-Signature": H}, sbody, T - 300, True, "ok")
add("stripe", "forged and expired: authenticity first", [SK2], {"Stripe-Signature": H}, sbody, T + 3600, False, "no_matching_signature")
add("stripe", "timestamp changed after signing", [SK], {"Stripe-Signature": H.replace("t=%d" % T, "t=%d" % (T + 1))}, sbody, T, False, "no_matching_signature")
add("stripe", "missing header", [SK], {"Content-Type": "application/json"}, sbody, T, False, "missing_header")
add("stripe", "malformed: no timestamp", [SK], {"Stripe-Signature": "v1=" + H.split("v1=")[1]}, sbody, T, False, "malformed_header")
add("stripe", "malformed: timestamp not a number", [SK], {"Stripe-Signature": H.replace("t=%d" % T, "t=17e8")}, sbody, T, False, "malformed_header")
add("stripe", "malformed: negative timestamp", [SK], {"Stripe-Signature": H.replace("t=%d" % T, "t=-1")}, sbody, T, False, "malformed_header")
add("stripe", "malformed: timestamp overflows", [SK], {"Stripe-Signature": H.replace("t=%d" % T, "t=99999999999999999999999")}, sbody, T, False, "malformed_header")
add("stripe", "malformed: two timestamps", [SK], {"Stripe-Signature": "t=%d,%s" % (T, H)}, sbody, T, False, "malformed_header")
# As Stripe's libraries: a v1 that is not a signature matches nothing, and
# empty entries or entries without "=" are skipped.
add("stripe", "v1 of 63 hex digits matches nothing", [SK], {"Stripe-Signature": H[:-1]}, sbody, T, False, "no_matching_signature")
add("stripe", "v1 not hex matches nothing", [SK], {"Stripe-Signature": H[:-1] + "g"}, sbody, T, False, "no_matching_signature")
add("stripe", "empty entry is skipped", [SK], {"Stripe-Signature": H + ","}, sbody, T, True, "ok")
add("stripe", "a valid v1 and a garbage v1", [SK], {"Stripe-Signature": H + ",v1=bad_signature"}, sbody, T, True, "ok")
add("stripe", "a garbage v1, then a valid one", [SK], {"Stripe-Signature": "t=%d,v1=bad_signature,v1=%s" % (T, H.split("v1=")[1])}, sbody, T, True, "ok")
add("stripe", "an empty v1 and an entry without =", [SK], {"Stripe-Signature": H + ",v1=,junk,,"}, sbody, T, True, "ok")
add("stripe", "only garbage v1 entries", [SK], {"Stripe-Signature": "t=%d,v1=bad_signature,v1=" % T}, sbody, T, False, "no_matching_signature")
add("stripe", "malformed: header is a number", [SK], '{"Stripe-Signature": 1700000000}', sbody, T, False, "malformed_header")
add("stripe", "malformed: two headers differing in case", [SK], {"Stripe-Signature": H, "stripe-signature": H}, sbody, T, False, "malformed_header")
add("stripe", "malformed: array of two values", [SK], {"Stripe-Signature": [H, H]}, sbody, T, False, "malformed_header")
add("stripe", "malformed: non-ASCII in header", [SK], {"Stripe-Signature": H + ",x=\u00e9"}, sbody, T, False, "malformed_header")
add("stripe", "malformed: 17 v1 entries (limit 16)", [SK], {"Stripe-Signature": H + ("," + H.split(",")[1]) * 16}, sbody, T, False, "malformed_header")
add("stripe", "16 v1 entries (at the limit)", [SK], {"Stripe-Signature": H + ("," + H.split(",")[1]) * 15}, sbody, T, True, "ok")
add("stripe", "malformed: header over 8 KB", [SK], {"Stripe-Signature": H + ",x=" + "a" * 9000}, sbody, T, False, "malformed_header")
add("stripe", "1500 ignored entries within 8 KB", [SK], {"Stripe-Signature": H + ",v0=1" * 1500}, sbody, T, True, "ok")
add("stripe", "malformed: 2000 entries, over 8 KB", [SK], {"Stripe-Signature": H + ",v0=1" * 2000}, sbody, T, False, "malformed_header")
add("stripe", "unknown entries are ignored", [SK], {"Stripe-Signature": H + ",v9=abc,foo=bar"}, sbody, T, True, "ok")
eb = b""
add("stripe", "empty body", [SK], {"Stripe-Signature": stripe_hdr(SK, T, eb)}, eb, T, True, "ok")
nb = '{"id": "evt_\u00e9t\u00e9", "description": "caf\u00e9 \u2603 \u00fcber"}'.encode()
add("stripe", "non-ASCII body (UTF-8)", [SK], {"Stripe-Signature": stripe_hdr(SK, T, nb)}, nb, T, True, "ok")
bb = b'\xff\xfe\x00{"id": "evt_binary"}\x80'
add("stripe", "non-ASCII body (not UTF-8, not JSON)", [SK], {"Stripe-Signature": stripe_hdr(SK, T, bb)}, bb, T, True, "ok")
add("stripe", "non-ASCII body tampered", [SK], {"Stripe-Signature": stripe_hdr(SK, T, nb)}, nb.replace("\u2603".encode(), "\u2604".encode()), T, False, "no_matching_signature")
dup = b'{"id": "evt_a", "object": "event", "id": "evt_b"}'
add("stripe", "body with a repeated id: no event id", [SK], {"Stripe-Signature": stripe_hdr(SK, T, dup)}, dup, T, True, "ok")
esc = b'{"id": "evt_\\u0041", "object": "event"}'
add("stripe", "body id with an escape: no event id", [SK], {"Stripe-Signature": stripe_hdr(SK, T, esc)}, esc, T, True, "ok")
nested = b'{"data": {"object": {"id": "pi_inner"}}, "id": "evt_outer"}'
add("stripe", "nested ids are not the event id", [SK], {"Stripe-Signature": stripe_hdr(SK, T, nested)}, nested, T, True, "ok")
# Stripe docs' example header: well-formed, but its secret is not published
add("stripe", "Stripe docs' example header, unknown secret", [SK], {"Stripe-Signature": "t=1492774577,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"}, sbody, 1492774577, False, "no_matching_signature")
add("stripe", "no secret: NULL array", None, {"Stripe-Signature": H}, sbody, T, False, "no_secret")
add("stripe", "no secret: empty array", [], {"Stripe-Signature": H}, sbody, T, False, "no_secret")
add("stripe", "no secret: NULL and empty elements", [None, ""], {"Stripe-Signature": H}, sbody, T, False, "no_secret")
add("stripe", "no secret beats missing header", [None], {}, sbody, T, False, "no_secret")

# ---- standard: the published Standard Webhooks example
WS = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WS2 = "whsec_" + base64.b64encode(b"another-secret-of-24-byte").decode()
T0 = 1614265330
wid = "msg_p5jXN8AQM9LWM0D4loKWxJek"
wbody = b'{"test": 2432232314}'
def std_sig(secret, mid, ts, body):
    key = base64.b64decode(secret[6:] if secret.startswith("whsec_") else secret)
    return "v1," + b64sig(key, mid.encode() + b"." + str(ts).encode() + b"." + body)
wsig = std_sig(WS, wid, T0, wbody)
assert wsig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", wsig
def wh(sig=None, mid=wid, ts=str(T0)):
    d = {}
    if mid is not None: d["webhook-id"] = mid
    if ts is not None: d["webhook-timestamp"] = ts
    if sig is not None: d["webhook-signature"] = sig
    return d
add("standard", "published example", [WS], wh(wsig), wbody, T0, True, "ok")
add("standard", "published example, secret without whsec_", [WS[6:]], wh(wsig), wbody, T0, True, "ok")
add("standard", "header names in mixed case", [WS], {"Webhook-Id": wid, "Webhook-Timestamp": str(T0), "Webhook-Signature": wsig}, wbody, T0, True, "ok")
add("standard", "tampered body", [WS], wh(wsig), b'{"test": 2432232315}', T0, False, "no_matching_signature")
add("standard", "wrong secret", [WS2], wh(wsig), wbody, T0, False, "no_matching_signature")
add("standard", "rotation: two secrets", [WS2, WS], wh(wsig), wbody, T0, True, "ok")
add("standard", "rotation: two signatures, second matches", [WS], wh(std_sig(WS2, wid, T0, wbody) + " " + wsig), wbody, T0, True, "ok")
add("standard", "v1a entries are skipped", [WS], wh("v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhWw_PcOzabcd " + wsig), wbody, T0, True, "ok")
add("standard", "only a v1a entry", [WS], wh("v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhWw_PcOzabcd"), wbody, T0, False, "no_matching_signature")
add("standard", "message id changed after signing", [WS], wh(wsig, mid="msg_other"), wbody, T0, False, "no_matching_signature")
add("standard", "timestamp changed after signing", [WS], wh(wsig, ts=str(T0 + 1)), wbody, T0, False, "no_matching_signature")
add("standard", "expired: 301 s old", [WS], wh(wsig), wbody, T0 + 301, False, "timestamp_too_old")
add("standard", "boundary: 300 s old", [WS], wh(wsig), wbody, T0 + 300, True, "ok")
add("standard", "future: 301 s ahead", [WS], wh(wsig), wbody, T0 - 301, False, "timestamp_in_future")
add("standard", "boundary: 300 s ahead", [WS], wh(wsig), wbody, T0 - 300, True, "ok")
add("standard", "tolerance 0: same second", [WS], wh(wsig), wbody, T0, True, "ok", tol=0)
add("standard", "tolerance 0: one second later", [WS], wh(wsig), wbody, T0 + 1, False, "timestamp_too_old", tol=0)
add("standard", "missing webhook-signature", [WS], wh(None), wbody, T0, False, "missing_header")
add("standard", "missing webhook-id", [WS], wh(wsig, mid=None), wbody, T0, False, "missing_header")
add("standard", "missing webhook-timestamp", [WS], wh(wsig, ts=None), wbody, T0, False, "missing_header")
add("standard", "malformed: timestamp not a number", [WS], wh(wsig, ts="1614265330.5"), wbody, T0, False, "malformed_header")
add("standard", "an entry without a comma is skipped", [WS], wh("v1" + wsig[3:]), wbody, T0, False, "no_matching_signature")
add("standard", "an entry without a comma, then a valid one", [WS], wh("junk " + wsig), wbody, T0, True, "ok")
add("standard", "base64 of 31 bytes matches nothing", [WS], wh("v1," + base64.b64encode(b"x" * 31).decode()), wbody, T0, False, "no_matching_signature")
add("standard", "a garbage v1, then a valid one", [WS], wh("v1,bad_signature " + wsig), wbody, T0, True, "ok")
add("standard", "odd base64 (non-zero padding bits) matches nothing", [WS], wh(wsig[:-2] + "F="), wbody, T0, False, "no_matching_signature")
add("standard", "base64 without padding matches nothing", [WS], wh(wsig[:-1]), wbody, T0, False, "no_matching_signature")
add("standard", "url-safe alphabet matches nothing", [WS], wh("v1," + base64.urlsafe_b64encode(base64.b64decode(wsig[3:]) ).decode().replace("+", "-")  if "+" in wsig else wsig.replace("+", "-")), wbody, T0, False, "no_matching_signature")
add("standard", "malformed: empty signature header", [WS], wh("   "), wbody, T0, False, "malformed_header")
add("standard", "malformed: empty webhook-id", [WS], wh(wsig, mid=""), wbody, T0, False, "malformed_header")
add("standard", "malformed: 200 signatures", [WS], wh(" ".join([wsig] * 200)), wbody, T0, False, "malformed_header")
e_sig = std_sig(WS, wid, T0, b"")
add("standard", "empty body", [WS], wh(e_sig), b"", T0, True, "ok")
u_body = "{\"text\": \"\u65e5\u672c\u8a9e \u00e9\"}".encode()
add("standard", "non-ASCII body", [WS], wh(std_sig(WS, wid, T0, u_body)), u_body, T0, True, "ok")
add("standard", "no secret", [None], wh(wsig), wbody, T0, False, "no_secret")

# ---- github: the published GitHub docs example
GS = "It's a Secret to Everybody"
gbody = b"Hello, World!"
gsig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
assert gsig == "sha256=" + hexsig(GS.encode(), gbody)
GD = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
add("github", "published example with delivery id", [GS], {"X-Hub-Signature-256": gsig, "X-GitHub-Delivery": GD}, gbody, T, True, "ok")
add("github", "published example without delivery id", [GS], {"X-Hub-Signature-256": gsig}, gbody, T, True, "ok")
add("github", "no timestamp: any time is fine", [GS], {"X-Hub-Signature-256": gsig}, gbody, 4102444800, True, "ok")
add("github", "tampered body", [GS], {"X-Hub-Signature-256": gsig}, b"Hello, World?", T, False, "no_matching_signature")
add("github", "wrong secret", ["It's a Secret to Somebody"], {"X-Hub-Signature-256": gsig}, gbody, T, False, "no_matching_signature")
add("github", "rotation: two secrets", ["old", GS], {"x-hub-signature-256": gsig}, gbody, T, True, "ok")
add("github", "upper-case hex", [GS], {"X-Hub-Signature-256": "sha256=" + gsig[7:].upper()}, gbody, T, True, "ok")
add("github", "only the SHA-1 header", [GS], {"X-Hub-Signature": "sha1=" + hmac.new(GS.encode(), gbody, hashlib.sha1).hexdigest()}, gbody, T, False, "missing_header")
add("github", "malformed: sha1= prefix", [GS], {"X-Hub-Signature-256": "sha1=" + gsig[7:]}, gbody, T, False, "malformed_header")
add("github", "malformed: trailing blank", [GS], {"X-Hub-Signature-256": gsig + " "}, gbody, T, False, "malformed_header")
add("github", "malformed: bare hex", [GS], {"X-Hub-Signature-256": gsig[7:]}, gbody, T, False, "malformed_header")
add("github", "empty body", [GS], {"X-Hub-Signature-256": "sha256=" + hexsig(GS.encode(), b"")}, b"", T, True, "ok")
gu = '{"comment": "na\u00efve r\u00e9sum\u00e9 \U0001F600"}'.encode()
add("github", "non-ASCII body", [GS], {"X-Hub-Signature-256": "sha256=" + hexsig(GS.encode(), gu)}, gu, T, True, "ok")

# ---- shopify
PS = "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"
pbody = b'{"id":820982911946154508,"email":"jon@example.com","total_price":"199.00"}'
psig = b64sig(PS.encode(), pbody)
PID = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
add("shopify", "valid with webhook id", [PS], {"X-Shopify-Hmac-Sha256": psig, "X-Shopify-Webhook-Id": PID, "X-Shopify-Topic": "orders/paid"}, pbody, T, True, "ok")
add("shopify", "valid, header as Shopify capitalises it", [PS], {"X-Shopify-Hmac-SHA256": psig}, pbody, T, True, "ok")
add("shopify", "tampered body", [PS], {"X-Shopify-Hmac-Sha256": psig}, pbody.replace(b"199.00", b"1.00"), T, False, "no_matching_signature")
add("shopify", "wrong secret", ["shpss_other"], {"X-Shopify-Hmac-Sha256": psig}, pbody, T, False, "no_matching_signature")
add("shopify", "rotation: two secrets", ["shpss_other", PS], {"X-Shopify-Hmac-Sha256": psig}, pbody, T, True, "ok")
add("shopify", "malformed: hex instead of base64", [PS], {"X-Shopify-Hmac-Sha256": hexsig(PS.encode(), pbody)}, pbody, T, False, "malformed_header")
add("shopify", "malformed: truncated base64", [PS], {"X-Shopify-Hmac-Sha256": psig[:40]}, pbody, T, False, "malformed_header")
add("shopify", "malformed: non-ASCII", [PS], {"X-Shopify-Hmac-Sha256": psig[:-2] + "\u00e9="}, pbody, T, False, "malformed_header")
add("shopify", "missing header", [PS], {"X-Shopify-Webhook-Id": PID}, pbody, T, False, "missing_header")
add("shopify", "empty body", [PS], {"X-Shopify-Hmac-Sha256": b64sig(PS.encode(), b"")}, b"", T, True, "ok")
pu = '{"note": "Gr\u00fc\u00dfe aus K\u00f6ln"}'.encode()
add("shopify", "non-ASCII body", [PS], {"X-Shopify-Hmac-Sha256": b64sig(PS.encode(), pu)}, pu, T, True, "ok")

# ---- slack: the published Slack docs example
LS = "8f742231b10e8888abcd99yyyzzz85a5"
LT = 1531420618
lbody = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
lsig = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
assert lsig == "v0=" + hexsig(LS.encode(), b"v0:%d:" % LT + lbody)
def sl(sig=lsig, ts=str(LT)):
    d = {}
    if sig is not None: d["X-Slack-Signature"] = sig
    if ts is not None: d["X-Slack-Request-Timestamp"] = ts
    return d
add("slack", "published example", [LS], sl(), lbody, LT, True, "ok")
add("slack", "tampered body", [LS], sl(), lbody.replace(b"foobar", b"foobaz"), LT, False, "no_matching_signature")
add("slack", "wrong secret", [LS[:-1] + "6"], sl(), lbody, LT, False, "no_matching_signature")
add("slack", "rotation: two secrets", ["old-signing-secret", LS], sl(), lbody, LT, True, "ok")
add("slack", "timestamp header changed", [LS], sl(ts=str(LT + 1)), lbody, LT, False, "no_matching_signature")
add("slack", "expired: 301 s old", [LS], sl(), lbody, LT + 301, False, "timestamp_too_old")
add("slack", "boundary: 300 s old", [LS], sl(), lbody, LT + 300, True, "ok")
add("slack", "future: 301 s ahead", [LS], sl(), lbody, LT - 301, False, "timestamp_in_future")
add("slack", "missing timestamp header", [LS], sl(ts=None), lbody, LT, False, "missing_header")
add("slack", "missing signature header", [LS], sl(sig=None), lbody, LT, False, "missing_header")
add("slack", "malformed: v1= prefix", [LS], sl(sig="v1=" + lsig[3:]), lbody, LT, False, "malformed_header")
add("slack", "malformed: timestamp with a sign", [LS], sl(ts="+" + str(LT)), lbody, LT, False, "malformed_header")
add("slack", "malformed: timestamp past year 9999", [LS], sl(ts="253402300800"), lbody, LT, False, "malformed_header")
jb = b'{"token": "x", "team_id": "T1", "event": {"type": "app_mention", "event_id": "inner"}, "type": "event_callback", "event_id": "Ev08MFMKH6", "event_time": 1531420618}'
add("slack", "Events API body: event_id taken", [LS], sl(sig="v0=" + hexsig(LS.encode(), b"v0:%d:" % LT + jb)), jb, LT, True, "ok")
add("slack", "empty body", [LS], sl(sig="v0=" + hexsig(LS.encode(), b"v0:%d:" % LT)), b"", LT, True, "ok")
ub = "text=\u00e7a+va+\u2713".encode()
add("slack", "non-ASCII body", [LS], sl(sig="v0=" + hexsig(LS.encode(), b"v0:%d:" % LT + ub)), ub, LT, True, "ok")

print(",\n".join(rows))
# The deeply nested body of test/sql/webhook.sql is built in SQL; its signature:
deep = b'{"data": ' + b"[" * 100000 + b"]" * 100000 + b', "id": "evt_deep"}'
print("deep body:", stripe_hdr(SK, T, deep), file=sys.stderr)
import sys
from collections import Counter
print(Counter(r.split(",")[0] for r in rows), file=sys.stderr)
