/* What the OpenID Connect files of kcps-server share with their tests and
 * fuzz target: parsing a provider's discovery document and verifying an ID
 * token against its JWKS. Pure functions over text (no network, no
 * database); server-jwt.c holds them, server-oidc.c uses them. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>

G_BEGIN_DECLS

/* Upper bounds on what a provider may send. */
#define KCPS_OIDC_MAX_ID_TOKEN (16 * 1024)
#define KCPS_OIDC_MAX_DOCUMENT (256 * 1024) /* discovery, JWKS, token answers */
#define KCPS_OIDC_LEEWAY 60                 /* seconds of clock skew allowed */

#define KCPS_OIDC_ERROR (kcps_oidc_error_quark())
GQuark kcps_oidc_error_quark(void);

/* Each names the step that failed; the routes put the name in their answer. */
typedef enum {
  KCPS_OIDC_ERROR_DISCOVERY, /* the discovery document is unusable */
  KCPS_OIDC_ERROR_JWKS,      /* the key set is unusable */
  KCPS_OIDC_ERROR_MALFORMED, /* the ID token is not a well-formed JWS */
  KCPS_OIDC_ERROR_ALG,       /* an algorithm other than RS256/ES256 (none, HS*) */
  KCPS_OIDC_ERROR_KID,       /* no key in the set matches the token's kid */
  KCPS_OIDC_ERROR_SIGNATURE, /* the signature does not verify */
  KCPS_OIDC_ERROR_ISS,       /* iss is not the configured issuer */
  KCPS_OIDC_ERROR_AUD,       /* aud (or azp) is not our client_id */
  KCPS_OIDC_ERROR_EXP,       /* expired, issued in the future, or not yet valid */
  KCPS_OIDC_ERROR_NONCE,     /* nonce is not the one sent */
  KCPS_OIDC_ERROR_CLAIMS     /* sub or another needed claim is missing or bad */
} kcps_oidc_error_t;

/* The step name of an error code ("signature", "aud"...). */
const char *kcps__oidc_step_name(int code);

/* The three endpoints of a provider; strings owned (kcps__oidc_discovery_clear). */
typedef struct kcps_oidc_discovery_s {
  char *authorization_endpoint;
  char *token_endpoint;
  char *jwks_uri;
} kcps_oidc_discovery_t;

/* Parses /.well-known/openid-configuration. Its "issuer" must equal issuer
 * exactly; the three endpoints must be https URLs; "S256" must be among
 * code_challenge_methods_supported when that member is present. False +
 * KCPS_OIDC_ERROR_DISCOVERY naming the problem otherwise. */
bool kcps__oidc_parse_discovery(const char *text, size_t len, const char *issuer,
                                kcps_oidc_discovery_t *out, GError **error);
void kcps__oidc_discovery_clear(kcps_oidc_discovery_t *d);

/* What an ID token must say. */
typedef struct kcps_oidc_expect_s {
  const char *issuer;
  const char *client_id;
  const char *nonce;
  gint64 now;            /* unix seconds */
} kcps_oidc_expect_t;

/* Verifies a compact JWS ID token against a JWKS document: alg RS256 or
 * ES256 only (never none or HS*), the key of its kid (without kid: the one
 * key of that type), the signature, then iss, aud (azp when several
 * audiences or when present), exp / iat / nbf with KCPS_OIDC_LEEWAY, nonce
 * and a non-empty sub. Returns the claims (json_node_unref) or NULL +
 * KCPS_OIDC_ERROR with the failing step as code. */
JsonNode *kcps__oidc_verify_id_token(const char *token, const char *jwks, size_t jwks_len,
                                     const kcps_oidc_expect_t *expect, GError **error);

G_END_DECLS
