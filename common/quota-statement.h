/* Signed quota statements (docs/api.md 1.9): the server signs, with its
 * Ed25519 ticket key, what a user may still print this month; kcpsd keeps
 * the last one and enforces it while the server cannot be reached. One
 * implementation of the wire form for both sides.
 *
 * Wire form: base64url(payload JSON) "." base64url(Ed25519 signature over
 * KCPS_QUOTA_STATEMENT_CONTEXT followed by the first part). The context
 * keeps a statement from ever passing for a pull ticket (signed over the
 * payload alone) and the other way round. Payload: {"v":1,
 * "typ":"kcps-quota","user","user_id","month":"YYYY-MM","start","end",
 * "quota_pages","quota_color_pages" (null: unlimited),"used_pages",
 * "used_color_pages","iat","exp"}. */
#pragma once

#include <glib.h>
#include <stdbool.h>

G_BEGIN_DECLS

#define KCPS_QUOTA_STATEMENT_CONTEXT "kcps-quota-v1."
#define KCPS_QUOTA_STATEMENT_MAX_LEN 4096

/* A verified statement. Limits -1 when unlimited. */
typedef struct kcps_quota_statement_s {
  char user[256];
  char month[8];
  gint64 start, end;
  gint64 quota_pages, quota_color_pages;
  gint64 used_pages, used_color_pages;
  gint64 iat, exp;
} kcps_quota_statement_t;

/* Signs payload_json (a statement payload as above, not checked here) with
 * the Ed25519 private key in the PEM file key_path. Caller g_frees. NULL +
 * KCPS_CRYPTO_ERROR_MALFORMED when the key cannot be read or used. */
char *kcps_quota_statement_sign(const char *key_path, const char *payload_json,
                                GError **error);

/* Verifies text against the base64url raw 32-byte Ed25519 public key and
 * now (unix seconds): signature first (nothing unsigned is parsed), then
 * form, then expiry. False + KCPS_CRYPTO_ERROR_MALFORMED, _SIGNATURE or
 * _EXPIRED. On _EXPIRED *out is filled all the same (the caller may say
 * what the stale figure was); otherwise it is zeroed on failure. */
bool kcps_quota_statement_verify(const char *public_b64, const char *text, gint64 now,
                                 kcps_quota_statement_t *out, GError **error);

/* What a statement leaves for a job of need pages (colour or not), after
 * extra pages (extra_color of them colour) printed since it was signed:
 * -1 when unlimited. Colour pages are pages too, so colour's remainder is
 * bounded by the total's. */
gint64 kcps_quota_statement_left(const kcps_quota_statement_t *st, bool color, gint64 extra,
                                 gint64 extra_color);

G_END_DECLS
