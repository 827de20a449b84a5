/* Shared by the kcps-server test programs (tests/test-server-*.c): start
 * the real server in-process on a free loopback port with a fresh demo
 * data folder, and drive it over HTTPS trusting its own certificate. */
#pragma once

#include "server-stub/server-private.h"

#include <check.h>
#include <json-glib/json-glib.h>

typedef struct {
  char *tmp;      /* the test's temporary folder */
  char *data;     /* tmp/data: the server's data folder */
  kcps_server_t *server;
  kcps_server_config_t config; /* what sfx_start used (strings owned by the test) */
  char *ca;
  char *admin_pw; /* admin@a.test (customer admin of Customer A) */
  char *alice_pw; /* alice@a.test (customer user, PIN 4321) */
  char *secret;   /* MFP-1's device secret */
  char *creds;    /* the whole demo-credentials.txt */
} sfx_t;

extern sfx_t sfx;

/* Check fixture functions: a fresh demo server per test. */
void sfx_setup(void);
void sfx_teardown(void);
/* Stops and starts the server again on the same data folder (same config). */
void sfx_restart(void);

/* The value after "<prefix>" on its line of the demo credentials, or NULL;
 * g_free. */
char *sfx_credential(const char *prefix);

/* method path with an optional JSON body text (must parse); returns the
 * HTTP status, *out the answer (may be NULL; json_node_unref). */
long sfx_call(const char *method, const char *path, const char *bearer, const char *body,
              JsonNode **out);
/* Same with raw body bytes (len -1: strlen), a content type (NULL: JSON)
 * and an extra header line (or NULL); *out gets the answer parsed, or NULL. */
long sfx_call_raw(const char *method, const char *path, const char *bearer, const char *body,
                  gssize len, const char *content_type, const char *header, JsonNode **out);
/* Logs in with email and password, asserting 200; the token (g_free). */
char *sfx_login(const char *email, const char *password);
/* The MFP-1 device token, and alice's user-at-device token (PIN 4321). */
char *sfx_device_login(void);
char *sfx_pin_login(void);

/* Members of an answer (NULL / -1 / NULL when missing or mistyped). */
const char *sfx_str(JsonNode *node, const char *name);
gint64 sfx_int(JsonNode *node, const char *name);
JsonArray *sfx_array(JsonNode *node, const char *name);
JsonNode *sfx_member(JsonNode *node, const char *name);

/* Asserts status, error code and (when not NULL) a part of the message. */
void sfx_expect_error(long status, JsonNode *answer, long want_status, const char *code,
                      const char *in_message);

/* Removes a folder tree. */
void sfx_remove_tree(const char *path);

/* Direct inserts for test data (the API routes that do this are tested in
 * their own files). The organization's database id, 0 if none by that name. */
gint64 sfx_org_id(const char *name);
/* The organization's public id (for /api/v1/orgs/{id} routes); g_free. */
char *sfx_org_public_id(const char *name);
/* Creates an organization under the one named parent; its id. */
gint64 sfx_add_org(const char *parent, const char *name, const char *type);
/* Creates an active user with a password (Argon2id) in the organization
 * named org; the user's database id. */
gint64 sfx_add_user(const char *org, const char *email, const char *role,
                    const char *password);
/* Moves the server's clock (seconds; tests of expiries). */
void sfx_skew_clock(gint64 seconds);
