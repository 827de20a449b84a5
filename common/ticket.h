/* Pull tickets: the server signs (Ed25519) a short-lived, single-use
 * permission for one device and user to pull one job from a desktop's 5571;
 * kcpsd verifies it with the server's public key.
 *
 * Wire form: base64url(payload JSON) "." base64url(signature over the first
 * part's ASCII). Payload: {"v":1,"tid":..,"job":..,"cjob":..,"user":..,
 * "device":..,"exp":unix-seconds}. Single use is enforced by the verifier
 * remembering tid until exp. */
#pragma once

#include <glib.h>
#include <stdbool.h>

G_BEGIN_DECLS

typedef struct kcps_ticket_key_s kcps_ticket_key_t;

typedef struct kcps_ticket_s {
  char *tid;        /* random ticket id (single-use key) */
  char *job;        /* server job id */
  char *cjob;       /* client (spool) job id, the one in the pull URL */
  char *user;       /* job owner's server account (email) */
  char *device;     /* device name the ticket was issued to */
  gint64 exp;       /* expiry, unix seconds */
} kcps_ticket_t;

/* Loads an Ed25519 private key from path (PEM), or creates one (0600). */
kcps_ticket_key_t *kcps_ticket_key_load_or_create(const char *path, GError **error);

/* A verify-only key from the base64url raw 32-byte public key. */
kcps_ticket_key_t *kcps_ticket_key_from_public(const char *public_b64, GError **error);

/* base64url of the raw 32-byte public key; caller g_frees. */
char *kcps_ticket_key_public_b64(const kcps_ticket_key_t *key);

void kcps_ticket_key_free(kcps_ticket_key_t *key);

/* Signs a ticket (needs a private key). Caller g_frees the result. */
char *kcps_ticket_sign(const kcps_ticket_key_t *key, const kcps_ticket_t *ticket,
                       GError **error);

/* Verifies signature, form and expiry against now (unix seconds). Returns a
 * new ticket (kcps_ticket_free) or NULL with KCPS_CRYPTO_ERROR_MALFORMED,
 * _SIGNATURE or _EXPIRED. Single use is the caller's to enforce. */
kcps_ticket_t *kcps_ticket_verify(const kcps_ticket_key_t *key, const char *text,
                                  gint64 now, GError **error);

void kcps_ticket_free(kcps_ticket_t *ticket);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(kcps_ticket_t, kcps_ticket_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(kcps_ticket_key_t, kcps_ticket_key_free)

G_END_DECLS
