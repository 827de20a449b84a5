/* What the device files share (server-devices.c: registration, logins at
 * the device, ID cards; server-pins.c: PIN rules, storage and routes).
 * Not for the rest of the server: server-private.h is the contract. */
#pragma once

#include "server-private.h"

G_BEGIN_DECLS

/* Login options of a device (white paper section 7), a bit set stored in
 * devices.login_options. */
#define KCPS_LOGIN_SIMPLE 1 /* email + password at the panel */
#define KCPS_LOGIN_CARD 2   /* ID card */
#define KCPS_LOGIN_PIN 4    /* PIN */
#define KCPS_LOGIN_ALL 7

/* Bounds of the device bodies. */
#define KCPS_SERVER_MAX_SERIAL 64
#define KCPS_SERVER_MAX_CARD_ID 64
#define KCPS_SERVER_MIN_CARD_ID 4
#define KCPS_SERVER_MAX_LABEL 64
#define KCPS_SERVER_MAX_PIN_FIELD 64 /* longer "pin" strings are refused as overlong */

/* Request bodies of the device routes: pure checks (no database), shared
 * with the fuzz target (tests/fuzz/fuzz-server-devices.c). Each refuses
 * unknown fields and answers false + BAD_REQUEST naming the field and the
 * rule. Strings point into obj. */
typedef struct kcps_server_device_req_s {
  const char *serial; /* registration only: 1-64 letters, digits, - . _ */
  const char *name;   /* NULL when a PATCH leaves it */
  gint64 options;     /* KCPS_LOGIN_* bits; all when a registration omits them */
  bool has_options;
} kcps_server_device_req_t;
/* POST /api/v1/orgs/{id}/devices (patch false) or PATCH /api/v1/devices/{id}
 * (patch true: no serial, at least one field). */
bool kcps__server_check_device(JsonObject *obj, bool patch, kcps_server_device_req_t *out,
                               GError **error);

typedef struct kcps_server_card_req_s {
  char card_id[KCPS_SERVER_MAX_CARD_ID + 1]; /* upper-cased copy: wipe after use */
  const char *label;                         /* "ID card" when absent; NULL at login */
} kcps_server_card_req_t;
/* A card registration {"card_id","label"} or (login true) a card login
 * {"card_id"}. */
bool kcps__server_check_card(JsonObject *obj, bool login, kcps_server_card_req_t *out,
                             GError **error);

typedef struct kcps_server_pin_set_req_s {
  const char *pin; /* digits only, 1-64 (the length rule needs the database); NULL
                      when generate */
  bool generate;
} kcps_server_pin_set_req_t;
/* PUT /api/v1/me/pin {"pin"} (admin false) or PUT /api/v1/users/{id}/pin
 * {"pin"} or {"generate":true} (admin true). */
bool kcps__server_check_pin_set(JsonObject *obj, bool admin, kcps_server_pin_set_req_t *out,
                                GError **error);


/* The user (row id, org) behind a public id, when the session may touch
 * its data of that kind (USERS read or write); answers 404/403 itself and
 * returns 0 otherwise. email_out (may be NULL) gets the email (g_free).
 * Takes the lock. */
gint64 kcps__server_user_for_admin(kcps_server_t *server, kcps_http_req_t *req,
                                   const kcps_server_session_t *session, const char *public_id,
                                   bool write, gint64 *org_out, char **email_out);

/* The lockout source of logins at a device: "device:<device public id>"
 * (so that failures at a device add up whoever tries). Caller holds the
 * lock. False when the device is gone. options_out gets its login options. */
bool kcps__server_device_source_locked(kcps_server_t *server, gint64 device_id, char *buf,
                                       size_t len, gint64 *options_out);

/* server-pins.c */
/* Is a PIN of this length one the organization's profile admits at login
 * (other: 4-12 digits, kda_g: 6-12)? Caller holds the lock. */
bool kcps__server_pin_length_fits_locked(kcps_server_t *server, gint64 org, size_t len);
/* After a PIN login: keeps a sealed copy of the PIN for its owner when
 * none exists yet (PINs set before sealing existed, the demo's). Caller
 * holds the lock; failures are logged only. */
void kcps__server_pin_backfill_locked(kcps_server_t *server, gint64 user_id, const char *pin);

void kcps__server_route_my_pin(kcps_server_t *server, kcps_http_req_t *req,
                               const kcps_server_session_t *session, const char *id);
void kcps__server_route_set_my_pin(kcps_server_t *server, kcps_http_req_t *req,
                                   const kcps_server_session_t *session, const char *id);
void kcps__server_route_generate_my_pin(kcps_server_t *server, kcps_http_req_t *req,
                                        const kcps_server_session_t *session, const char *id);
void kcps__server_route_user_pin(kcps_server_t *server, kcps_http_req_t *req,
                                 const kcps_server_session_t *session, const char *id);
void kcps__server_route_delete_my_pin(kcps_server_t *server, kcps_http_req_t *req,
                                      const kcps_server_session_t *session, const char *id);
void kcps__server_route_delete_user_pin(kcps_server_t *server, kcps_http_req_t *req,
                                        const kcps_server_session_t *session, const char *id);
void kcps__server_route_set_user_pin(kcps_server_t *server, kcps_http_req_t *req,
                                     const kcps_server_session_t *session, const char *id);

G_END_DECLS
