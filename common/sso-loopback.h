/* Single sign-on for desktop clients, the tray and kcps (sso-loopback.c): PKCE
 * (RFC 7636, S256), the server's start address for a desktop client, and
 * the loopback redirect's request (RFC 8252 section 7.3), which any local
 * program or web page may send, so it is parsed as untrusted input (fuzzed:
 * tests/fuzz/fuzz-ui-sso.c). */
#pragma once

#include <glib.h>
#include <stdbool.h>

G_BEGIN_DECLS

/* Path the loopback listener answers on. */
#define KCPS_SSO_PATH "/kcps-sso"

/* A fresh code_verifier (and our own state): 32 random bytes, base64url
 * without padding (43 characters). NULL only if the kernel has no
 * randomness to give. Caller g_frees. */
char *kcps_sso_random(void);
/* code_challenge = base64url(SHA-256(verifier)) without padding. */
char *kcps_sso_challenge(const char *verifier);
/* server/api/v1/sso/{org}/start?redirect_uri=http://127.0.0.1:port/kcps-sso?state=S
 * &code_challenge=C&code_challenge_method=S256[&login_hint=H] (all escaped;
 * login_hint, the address the user typed, may be NULL). NULL when org is
 * empty or not a plain id (letters, digits, '-', '_', '.'). */
char *kcps_sso_start_url(const char *server, const char *org, guint16 port,
                              const char *state, const char *challenge,
                              const char *login_hint);
/* The provider buttons: does the organization's preset ("entra",
 * "google", "generic", from GET /v1/sso) fit the button pressed (wanted:
 * "entra" for Microsoft, "google" for Google, NULL for any single
 * sign-on)? */
bool kcps_sso_preset_fits(const char *wanted, const char *preset);

typedef enum {
  KCPS_SSO_INCOMPLETE, /* no whole request line yet: read on */
  KCPS_SSO_CODE,       /* *code: the one-time code for our state */
  KCPS_SSO_REFUSED,    /* the provider or the server said no (*error) */
  KCPS_SSO_BAD,        /* not for us: another path, another state, junk */
} kcps_sso_result_t;

/* Reads the request the browser sent to the loopback listener (data, len:
 * what came so far, at most 8 KiB are looked at): "GET /kcps-sso?state=S&
 * code=C HTTP/1.1". The state must equal state (constant time). *code or
 * *error (g_free) as the result says. */
kcps_sso_result_t kcps_sso_parse_request(const char *data, size_t len,
                                                   const char *state, char **code,
                                                   char **error);

/* The whole HTTP answer to the browser at the loopback listener: a short
 * page saying text (escaped), status 200 or 400, and the connection closes.
 * Caller g_frees. */
char *kcps_sso_answer(unsigned status, const char *text);

G_END_DECLS
