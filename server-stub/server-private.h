/* What kcps-server's own files share: the server struct, the database
 * helpers, sessions and the route handlers. Not for other modules. */
#pragma once

#include "server.h"
#include "server-validate.h"

#include "common/http-server.h"
#include "common/ticket.h"

#include <sqlite3.h>

G_BEGIN_DECLS

/* Lifetimes of the three session kinds (docs/api.md section 1). */
#define KCPS_SERVER_USER_TTL (12 * 3600)
#define KCPS_SERVER_DEVICE_TTL (24 * 3600)
#define KCPS_SERVER_USER_DEVICE_TTL (10 * 60)
#define KCPS_SERVER_TICKET_TTL 120

/* Argon2id cost (OWASP's minimum for Argon2id: 19 MiB, 2 passes, 1 lane). */
#define KCPS_SERVER_ARGON2_T 2
#define KCPS_SERVER_ARGON2_M 19456
#define KCPS_SERVER_ARGON2_P 1

/* server-policy.c: failure counts of unknown accounts (keyed on the
 * source address at a device, on the email's hash at a password login:
 * server-lockout.h), kept in memory so that guessing at accounts that do
 * not exist never writes to the database; fixed size, guarded by lock. */
#define KCPS_SERVER_LOCKOUT_SLOTS 1024
typedef struct kcps_server_lockout_slot_s {
  char source[64];
  unsigned failures;
  gint64 last;          /* time of the last failure (eviction: oldest first) */
  gint64 locked_until;
} kcps_server_lockout_slot_t;

struct kcps_server_s {
  GMutex lock;                   /* guards db (one connection) */
  sqlite3 *db;
  char *data_dir;
  char *cert_path;
  char *key_path;
  guchar pepper[32];             /* PIN HMAC key, from DATA/pin-pepper */
  char *dummy_hash;              /* verified against for unknown accounts */
  char *dummy_secret_hash;       /* compared against for unknown devices */
  kcps_ticket_key_t *ticket_key;
  char *ticket_public;           /* base64url public key */
  GMutex hash_lock;              /* bounds concurrent Argon2 runs: each takes */
  GCond hash_cond;               /* 19 MiB, and 512 connections could ask at once */
  unsigned hash_busy;
  unsigned hash_max;
  kcps_http_server_t *http;
  char *url;
  int port;
  char *demo_text;               /* demo credential lines of this start, or NULL */
  char *smtp_url;                /* config copies (NULL when not given) */
  char *smtp_from;
  char *smtp_ca_file;
  char *oidc_ca_file;
  kcps_server_lockout_slot_t lockout_slots[KCPS_SERVER_LOCKOUT_SLOTS]; /* server-policy.c */
};

typedef enum {
  KCPS_SESSION_USER,
  KCPS_SESSION_DEVICE,
  KCPS_SESSION_USER_DEVICE
} kcps_server_session_kind_t;

/* An authenticated caller, loaded from the sessions table with its user
 * and device. Strings are owned. */
typedef struct kcps_server_session_s {
  kcps_server_session_kind_t kind;
  char token_hash[65];
  gint64 user_id;        /* 0 for a device session */
  char *user_public_id;
  char *email;
  char *user_name;
  char *role;
  gint64 user_org_id;
  char *org_name;
  gint64 device_id;      /* 0 for a user session */
  char *device_name;
  gint64 device_org_id;
  char *org_type;        /* "root", "provider" or "customer" (the user's org) */
  char *client;          /* "web" or "desktop" (user sessions; idle limits differ) */
  char source[64];       /* the caller's address, for lockout and the audit log */
} kcps_server_session_t;

/* Routing: each feature file exports a table ending in {NULL}; server.c
 * walks them all in order (first match wins). "*" in a pattern stands for
 * one path segment, handed to the route as id. */
typedef enum {
  KCPS_NEED_NONE,        /* anyone: the route authenticates itself if at all */
  KCPS_NEED_ANY,         /* any live session */
  KCPS_NEED_USER,        /* a user session (portal, desktop, CLI) */
  KCPS_NEED_DEVICE,      /* a device session */
  KCPS_NEED_USER_DEVICE  /* a user-at-device session */
} kcps_server_need_t;

typedef void (*kcps_server_route_fn_t)(kcps_server_t *server, kcps_http_req_t *req,
                                       const kcps_server_session_t *session, const char *id);

typedef struct kcps_server_route_s {
  const char *method;
  const char *pattern;
  kcps_server_need_t need;
  kcps_server_route_fn_t fn;
} kcps_server_route_t;

/* One table per feature file. */
extern const kcps_server_route_t kcps__server_routes_core[];    /* server-auth.c, server-jobs.c */
extern const kcps_server_route_t kcps__server_routes_policy[];  /* server-policy.c */
extern const kcps_server_route_t kcps__server_routes_mfa[];     /* server-mfa.c */
extern const kcps_server_route_t kcps__server_routes_orgs[];    /* server-orgs.c */
extern const kcps_server_route_t kcps__server_routes_reports[]; /* server-reports.c */
extern const kcps_server_route_t kcps__server_routes_devices[]; /* server-devices.c */
extern const kcps_server_route_t kcps__server_routes_oidc[];    /* server-oidc.c */
extern const kcps_server_route_t kcps__server_routes_uploads[]; /* server-uploads.c */
extern const kcps_server_route_t kcps__server_routes_usage[];   /* server-usage.c */

/* Schema parts: each feature file may add tables and columns in one SQL
 * text, run once (in this order, after the numbered core steps) and
 * recorded by name in schema_parts. "" when a feature needs none. */
extern const char kcps__server_schema_policy[];
extern const char kcps__server_schema_mfa[];
extern const char kcps__server_schema_orgs[];
extern const char kcps__server_schema_reports[];
extern const char kcps__server_schema_devices[];
extern const char kcps__server_schema_oidc[];
extern const char kcps__server_schema_oidc_domain[];
extern const char kcps__server_schema_uploads[];
extern const char kcps__server_schema_usage[];
extern const char kcps__server_schema_groups[];

void kcps__server_session_free(kcps_server_session_t *session);
/* The caller's address as text ("127.0.0.1", "::1"), into buf. */
void kcps__server_req_source(kcps_http_req_t *req, char *buf, size_t len);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(kcps_server_session_t, kcps__server_session_free)

/* server-json.c: JSON members (a NULL string becomes null), RFC 3339 UTC
 * times (g_free), and a 400-class error naming the problem (returns false). */
void kcps__server_json_string(JsonBuilder *b, const char *name, const char *value);
void kcps__server_json_int(JsonBuilder *b, const char *name, gint64 value);
void kcps__server_json_bool(JsonBuilder *b, const char *name, bool value);
char *kcps__server_iso_time(gint64 t);
bool kcps__server_set_bad(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* Answers 200 {member: [row...]}: the rows of sql (its one parameter bound
 * to param), each added by add; 500 when the database fails. Takes the lock. */
typedef void (*kcps_server_row_fn_t)(JsonBuilder *b, sqlite3_stmt *stmt);
void kcps__server_respond_rows(kcps_server_t *server, kcps_http_req_t *req, const char *member,
                               const char *sql, gint64 param, kcps_server_row_fn_t add);

/* server.c: a key of 32 random bytes in DATA/name (0600), made on first
 * use (pin-pepper, pin-key, oidc-seal-key). Callers that may race on the
 * first use hold server->lock. */
#define KCPS_SERVER_KEY_LEN 32
bool kcps__server_key_file(kcps_server_t *server, const char *name,
                           guchar key[KCPS_SERVER_KEY_LEN], GError **error);
/* server-seal.c: AES-256-GCM of a secret the server must use again (a PIN
 * its owner may see, an SSO client secret): base64url(iv[12] || ciphertext
 * || tag[16]); aad binds it to its use. unseal: the plain text (wipe and
 * g_free) or NULL + error when it does not open. */
char *kcps__server_seal(const guchar key[KCPS_SERVER_KEY_LEN], const char *aad,
                        const char *plain, GError **error);
char *kcps__server_unseal(const guchar key[KCPS_SERVER_KEY_LEN], const char *aad,
                          const char *sealed, GError **error);

/* server.c */
/* Unix seconds. Tests move the clock forward with kcps__server_clock_skew
 * (seconds added; 0 in production) to check expiries without waiting. */
extern gint64 kcps__server_clock_skew; /* set with __atomic_store_n */
gint64 kcps__server_now(void);
/* Writes data to path atomically (temporary file, fsync, rename), mode 0600. */
bool kcps__server_write_private_file(const char *path, const void *data, size_t len,
                                     GError **error);
/* The request body as a JSON object, or answers 400 itself and returns NULL. */
JsonObject *kcps__server_req_object(kcps_http_req_t *req);
/* Routes that take no fields: an empty body or {} passes; anything else
 * is answered 4xx here (false). (server-devices.c) */
bool kcps__server_body_none(kcps_http_req_t *req);
/* Answers 400 bad_request with error's message. */
void kcps__server_respond_bad(kcps_http_req_t *req, const GError *error);
void kcps__server_respond_internal(kcps_http_req_t *req, const GError *error);
/* A read of one row answered: 500 for error, 404 not_found with
 * missing_text when node is NULL, else node with status. */
void kcps__server_respond_found(kcps_http_req_t *req, const GError *error, JsonNode *node,
                                unsigned status, const char *missing_text);

/* server-db.c; callers hold server->lock for these (open/close excepted:
 * they run before and after serving) */
bool kcps__server_db_open(kcps_server_t *server, const char *path, GError **error);
void kcps__server_db_close(kcps_server_t *server);
sqlite3_stmt *kcps__server_db_prepare(kcps_server_t *server, const char *sql, GError **error);
/* sqlite3_step; SQLITE_ROW / SQLITE_DONE, or -1 with error set. */
int kcps__server_db_step(kcps_server_t *server, sqlite3_stmt *stmt, GError **error);
bool kcps__server_db_exec(kcps_server_t *server, const char *sql, GError **error);
bool kcps__server_db_begin(kcps_server_t *server, GError **error);
bool kcps__server_db_commit(kcps_server_t *server, GError **error);
void kcps__server_db_rollback(kcps_server_t *server);
/* A column's text, copied (NULL for SQL NULL). */
char *kcps__server_db_dup_text(sqlite3_stmt *stmt, int col);
/* These two take the lock themselves (for tests).
 * Rows in one of the server's tables ("nothing stored"); -1 on error. */
gint64 kcps__server_db_count_rows(kcps_server_t *server, const char *table);
/* The stored password hash of an account (tests); caller g_frees. */
char *kcps__server_db_password_hash(kcps_server_t *server, const char *email);

/* server-auth.c */
/* Argon2id encoded hash of password with a fresh random salt; g_free. */
char *kcps__server_password_hash(const char *password, GError **error);
/* True when password matches the encoded Argon2id hash. */
bool kcps__server_password_verify(const char *encoded, const char *password);
/* HMAC-SHA256(pepper, org_id ":" pin) as hex into out. */
void kcps__server_pin_hmac(const kcps_server_t *server, gint64 org_id, const char *pin,
                           char out[65]);
/* The session of the request's bearer token (checked: present, known,
 * unexpired), or NULL after answering 401 itself. */
kcps_server_session_t *kcps__server_authenticate(kcps_server_t *server, kcps_http_req_t *req);
void kcps__server_route_login(kcps_server_t *server, kcps_http_req_t *req,
                              const kcps_server_session_t *session, const char *id);
void kcps__server_route_logout(kcps_server_t *server, kcps_http_req_t *req,
                               const kcps_server_session_t *session, const char *id);
void kcps__server_route_me(kcps_server_t *server, kcps_http_req_t *req,
                           const kcps_server_session_t *session, const char *id);
void kcps__server_route_ticket_key(kcps_server_t *server, kcps_http_req_t *req,
                                   const kcps_server_session_t *session, const char *id);
/* The live session with this token hash, NULL when unknown, expired, or
 * its user or device is disabled. Caller holds the lock. */
kcps_server_session_t *kcps__server_session_load_locked(kcps_server_t *server,
                                                        const char *token_hash, GError **error);
/* Creates a session; caller holds the lock. The token goes to the caller
 * (g_free) and only its SHA-256 is stored; hash_out gets that hash. */
char *kcps__server_session_create_locked(kcps_server_t *server, kcps_server_session_kind_t kind,
                                         gint64 user_id, gint64 device_id, gint64 ttl,
                                         char hash_out[65], GError **error);
/* Answers {"token","expires_in"} plus an optional "user" member (taken). */
void kcps__server_respond_token(kcps_http_req_t *req, unsigned status, const char *token,
                                gint64 ttl, JsonNode *user);

/* server-jobs.c */
void kcps__server_route_register_job(kcps_server_t *server, kcps_http_req_t *req,
                                     const kcps_server_session_t *session, const char *id);
void kcps__server_route_withdraw_job(kcps_server_t *server, kcps_http_req_t *req,
                                     const kcps_server_session_t *session, const char *id);
/* Where a cloud job's document is kept (server-uploads.c; g_free). */
char *kcps__server_cloud_document_path(kcps_server_t *server, const char *job_id);
void kcps__server_route_get_job(kcps_server_t *server, kcps_http_req_t *req,
                                const kcps_server_session_t *session, const char *id);
void kcps__server_route_list_jobs(kcps_server_t *server, kcps_http_req_t *req,
                                  const kcps_server_session_t *session, const char *id);
void kcps__server_route_usage(kcps_server_t *server, kcps_http_req_t *req,
                              const kcps_server_session_t *session, const char *id);
void kcps__server_route_device_jobs(kcps_server_t *server, kcps_http_req_t *req,
                                    const kcps_server_session_t *session, const char *id);
void kcps__server_route_ticket(kcps_server_t *server, kcps_http_req_t *req,
                               const kcps_server_session_t *session, const char *id);
void kcps__server_route_job_log(kcps_server_t *server, kcps_http_req_t *req,
                                const kcps_server_session_t *session, const char *id);

/* server-access.c: Table 2-1 of the white paper and the organization tree.
 * Every route that touches data of an organization asks here. */
typedef enum {
  KCPS_ROLE_NONE = 0,
  KCPS_ROLE_PROVIDER_ADMIN,
  KCPS_ROLE_PROVIDER_SUPPORT,
  KCPS_ROLE_CUSTOMER_ADMIN,
  KCPS_ROLE_PRINT_MANAGER,
  KCPS_ROLE_CUSTOMER_USER,
  KCPS_ROLE_GUEST_USER
} kcps_server_role_t;

/* The kinds of data of Table 2-1 (columns), plus the organization tree. */
typedef enum {
  KCPS_DATA_ORGS,        /* child organizations: create, list, rename, delete */
  KCPS_DATA_USERS,       /* users of a customer organization (all fields) */
  KCPS_DATA_USER_QUOTA,  /* users' print quota settings only */
  KCPS_DATA_DEVICES,     /* devices of a customer organization */
  KCPS_DATA_REPORTS,     /* jobs/pages printed and scanned of the organization */
  KCPS_DATA_CONTRACTS,   /* license/contract reports going upward (section 3) */
  KCPS_DATA_POLICY,      /* the organization's login policies and settings */
  KCPS_DATA_AUDIT,       /* the organization's security event log */
  KCPS_DATA_API          /* granting the external admin API */
} kcps_server_data_t;

kcps_server_role_t kcps__server_role_parse(const char *name);
const char *kcps__server_role_name(kcps_server_role_t role);
/* True when ancestor is org itself or above it in the tree; caller holds
 * the lock. */
bool kcps__server_org_within_locked(kcps_server_t *server, gint64 ancestor, gint64 org);
/* The organization's type ("root", "provider", "customer") or NULL when it
 * does not exist; caller holds the lock; g_free. */
char *kcps__server_org_type_locked(kcps_server_t *server, gint64 org);
/* May the session's user read (write false) or change (write true) data
 * of that kind in organization org? docs/access.md is this function in
 * words. (Own jobs are not asked here: a user only ever sees her own.)
 * No session and device sessions: never. Caller holds the lock. */
bool kcps__server_may_locked(kcps_server_t *server, const kcps_server_session_t *session,
                             kcps_server_data_t data, gint64 org, bool write);
/* Same, taking the lock. */
bool kcps__server_may(kcps_server_t *server, const kcps_server_session_t *session,
                      kcps_server_data_t data, gint64 org, bool write);
/* An organization's id from its public id (routes use "orgs/<public id>"),
 * 0 when unknown. Caller holds the lock. */
gint64 kcps__server_org_id_locked(kcps_server_t *server, const char *public_id);
/* Answers 404 (unknown org, or one the caller may not see: existence is not
 * revealed to strangers) or 403 (seen but not allowed) when the session may
 * not reach data of that kind in the org named by public_id; returns the org
 * id when it may. Takes the lock. */
gint64 kcps__server_require(kcps_server_t *server, kcps_http_req_t *req,
                            const kcps_server_session_t *session, kcps_server_data_t data,
                            bool write, const char *org_public_id);

/* server-settings.c: per-organization settings, each with the white
 * paper's value as default. A value set on an organization applies to it
 * and, unless set again below, to every organization under it. */
typedef enum { KCPS_SETTING_INT, KCPS_SETTING_BOOL, KCPS_SETTING_ENUM } kcps_server_setting_type_t;

typedef struct kcps_server_setting_s {
  const char *key;
  kcps_server_setting_type_t type;
  gint64 def;           /* default (int, bool as 0/1, enum as index) */
  gint64 min, max;      /* int bounds */
  const char *const *values; /* enum names, NULL-terminated */
  const char *doc;      /* one line for docs and errors */
} kcps_server_setting_t;

/* NULL-terminated by key. */
extern const kcps_server_setting_t kcps__server_settings[];
/* server-devices.c: the rules that tie PIN settings together (a KDA-G
 * profile allows lengths 6-12 only); called by setting_store for pin_*
 * keys with the value about to be stored. Caller holds the lock. */
bool kcps__server_pin_setting_check_locked(kcps_server_t *server, gint64 org, const char *key,
                                           gint64 value, GError **error);
const kcps_server_setting_t *kcps__server_setting_find(const char *key);
/* The effective value (own, inherited or default); caller holds the lock.
 * Enums give their index. An unknown key is a programming error (0). */
gint64 kcps__server_setting_locked(kcps_server_t *server, gint64 org, const char *key);
gint64 kcps__server_setting(kcps_server_t *server, gint64 org, const char *key);
/* Whether org or an organization above it set key (false: the default applies). */
bool kcps__server_setting_is_set_locked(kcps_server_t *server, gint64 org, const char *key);
/* Validates the JSON value for key and stores it on org (no access check;
 * the route does that). False + BAD_REQUEST naming key and rule. Caller
 * holds the lock. */
bool kcps__server_setting_store_locked(kcps_server_t *server, gint64 org, const char *key,
                                       JsonNode *value, GError **error);
/* The settings of org as a JSON object {key: value...} (effective values). */
JsonNode *kcps__server_settings_json_locked(kcps_server_t *server, gint64 org);

/* server-audit.c: the security event log of an organization (logins,
 * failures, locks, role and policy changes, API key use). Never holds a
 * secret. user_id 0 when unknown; subject is what was acted on (an email,
 * a device name) or NULL. Caller holds the lock; failures are logged, not
 * returned: an event that cannot be written must not fail the request. */
void kcps__server_audit_locked(kcps_server_t *server, gint64 org, gint64 user_id,
                               const char *event, const char *subject, const char *source,
                               const char *detail);
void kcps__server_audit(kcps_server_t *server, gint64 org, gint64 user_id, const char *event,
                        const char *subject, const char *source, const char *detail);

/* Cross-feature interfaces (each implemented by the file named) -------- */

/* server-policy.c: does password meet org's password policy (section 4.2
 * or the NIST preset)? False + BAD_REQUEST naming the rule broken. */
bool kcps__server_password_acceptable(kcps_server_t *server, gint64 org, const char *password,
                                      GError **error);
/* server-policy.c: the same, also refusing (NIST preset) a password equal to
 * the account's email or its local part; email may be NULL. Use this one
 * wherever the account's email is known (user creation, password change). */
bool kcps__server_password_acceptable_for(kcps_server_t *server, gint64 org, const char *email,
                                          const char *password, GError **error);
/* server-policy.c: the rules alone, no server (preset 0 "kcps", 1 "nist",
 * the order of the password_policy setting); for the fuzz target. */
bool kcps__server_password_check(int preset, const char *email, const char *password,
                                 GError **error);
/* server-auth.c: a slot for one Argon2 run (each takes 19 MiB; at most
 * server->hash_max at once, the rest wait). Never hold server->lock while
 * in one. */
void kcps__server_hash_enter(kcps_server_t *server);
void kcps__server_hash_leave(kcps_server_t *server);
/* server-auth.c: POST /api/v1/token/refresh (listed in the policy table). */
void kcps__server_route_token_refresh(kcps_server_t *server, kcps_http_req_t *req,
                                      const kcps_server_session_t *session, const char *id);
/* server-policy.c: lockout (section 4.1). locked: is the account (user_id;
 * 0 = unknown account, then keyed on source only: an address, or a login's
 * email key) locked now for this source? server-lockout.h says until when.
 * failed: count a failure (password, OTP, PIN); may lock and audits it.
 * succeeded: reset the count. Caller holds the lock. */
bool kcps__server_lockout_locked(kcps_server_t *server, gint64 user_id, const char *source);
void kcps__server_lockout_failed_locked(kcps_server_t *server, gint64 user_id,
                                        const char *source);
void kcps__server_lockout_succeeded_locked(kcps_server_t *server, gint64 user_id,
                                           const char *source);
/* server-policy.c / server-auth.c: issues a user session after every
 * factor was checked; answers the request itself (200 with token,
 * expires_in, user, and a refresh_token for client "desktop"). */
void kcps__server_session_respond(kcps_server_t *server, kcps_http_req_t *req, gint64 user_id,
                                  const char *client, const char *source);
/* server-policy.c: ends every session and refresh token of a user (password
 * change, lock, deletion). Caller holds the lock. */
bool kcps__server_sessions_end_user_locked(kcps_server_t *server, gint64 user_id,
                                           GError **error);
/* server-mfa.c: does the user's organization require the email code? */
bool kcps__server_mfa_required_locked(kcps_server_t *server, gint64 user_id);
/* server-mfa.c: starts the email step for a user whose password was right:
 * sends the code and answers the request (200 {"mfa_required":true,
 * "mfa_token", "expires_in"}). */
void kcps__server_mfa_begin(kcps_server_t *server, kcps_http_req_t *req, gint64 user_id,
                            const char *client, const char *source);

/* server-demo.c: creates the demo tree when the database holds no
 * organization; sets server->demo_text. True when nothing was to be done. */
bool kcps__server_demo_create(kcps_server_t *server, GError **error);

/* server-reports.c: pure parsers of untrusted query text (also the fuzz
 * target's). A month "YYYY-MM" (NULL: the month of now) as UTC [start, end)
 * and its text; a count in lo..hi (NULL: dflt), decimal digits only; the form
 * of an API key ("kcpsk_" + 43 base64url characters). False + BAD_REQUEST
 * naming the parameter. */
bool kcps__server_parse_month(const char *text, gint64 now, gint64 *start, gint64 *end,
                              char out[8], GError **error);
bool kcps__server_parse_count(const char *name, const char *text, gint64 lo, gint64 hi,
                              gint64 dflt, gint64 *out, GError **error);
bool kcps__server_api_key_form(const char *text);

/* server-uploads.c: the cloud spool. expire deletes the cloud documents and
 * unfinished uploads whose retention (setting cloud_retention_hours) is over
 * at now (the routes call it too). The pure parsers of untrusted input
 * (also the fuzz target's): the create body (unknown fields refused); a
 * chunk's offset from ?offset= and/or Content-Range (-1 when missing or
 * inconsistent with the body length and declared size); a Range header
 * against size (false: malformed or unsatisfiable). */
void kcps__server_uploads_expire(kcps_server_t *server, gint64 now);
bool kcps__server_check_upload(JsonObject *obj, const char **key, const char **name,
                               gint64 *pages, gint64 *size, char sha256[65], GError **error);
gint64 kcps__server_chunk_offset(const char *query, const char *range, gint64 len, gint64 size);
bool kcps__server_parse_range(const char *value, gint64 size, gint64 *start, gint64 *end);
/* The headers of PUT /api/v1/uploads/{id} (http-server's headers_fn, before
 * any body byte): authenticates, checks the chunk, and streams its body to
 * the upload's file, or answers at once. */
void kcps__server_upload_chunk_headers(kcps_server_t *server, kcps_http_req_t *req,
                                       const char *id);

/* server-usage.c: usage records and quotas. The pure parsers of untrusted
 * input (also the fuzz target's): a usage record's body (unknown fields
 * refused; time RFC 3339 with a zone, at most 300 s ahead of now and at most
 * 62 days old), its time alone, and the quota check's body. Strings of out
 * point into obj. False + BAD_REQUEST naming the field. */
typedef struct kcps_server_usage_req_s {
  const char *key;
  const char *printer;    /* a printer URI or a device name */
  gint64 time;            /* unix seconds */
  const char *job_type;   /* "print" (the only type so far) */
  gint64 pages, copies;
  bool color, duplex;
  const char *job_id;     /* a server job id or client_job_id, or NULL */
} kcps_server_usage_req_t;
bool kcps__server_check_usage(JsonObject *obj, gint64 now, kcps_server_usage_req_t *out,
                              GError **error);
bool kcps__server_parse_usage_time(const char *text, gint64 now, gint64 *out, GError **error);
bool kcps__server_check_quota_check(JsonObject *obj, gint64 *pages, gint64 *copies, bool *color,
                                    GError **error);
/* A quota statement (docs/api.md) checked against the server's base64url
 * Ed25519 public key (GET /api/v1/ticket-key) and now: signature first,
 * then form and expiry. False + KCPS_CRYPTO_ERROR_MALFORMED, _SIGNATURE or
 * _EXPIRED. Limits -1 when unlimited. */
typedef struct kcps_server_quota_statement_s {
  char user[256];
  char month[8];
  gint64 start, end;
  gint64 quota_pages, quota_color_pages;
  gint64 used_pages, used_color_pages;
  gint64 iat, exp;
} kcps_server_quota_statement_t;
bool kcps__server_quota_statement_verify(const char *public_b64, const char *text, gint64 now,
                                         kcps_server_quota_statement_t *out, GError **error);

/* server-groups.c: user groups of a customer organization (users data of
 * Table 2-1). The body check of a create or rename ({"name"}), pure; and
 * the route handlers, listed in server-usage.c's table. */
bool kcps__server_check_group(JsonObject *obj, const char **name, GError **error);
void kcps__server_route_list_groups(kcps_server_t *server, kcps_http_req_t *req,
                                    const kcps_server_session_t *session, const char *id);
void kcps__server_route_create_group(kcps_server_t *server, kcps_http_req_t *req,
                                     const kcps_server_session_t *session, const char *id);
void kcps__server_route_get_group(kcps_server_t *server, kcps_http_req_t *req,
                                  const kcps_server_session_t *session, const char *id);
void kcps__server_route_rename_group(kcps_server_t *server, kcps_http_req_t *req,
                                     const kcps_server_session_t *session, const char *id);
void kcps__server_route_delete_group(kcps_server_t *server, kcps_http_req_t *req,
                                     const kcps_server_session_t *session, const char *id);
void kcps__server_route_list_members(kcps_server_t *server, kcps_http_req_t *req,
                                     const kcps_server_session_t *session, const char *id);
void kcps__server_route_add_member(kcps_server_t *server, kcps_http_req_t *req,
                                   const kcps_server_session_t *session, const char *id);
void kcps__server_route_remove_member(kcps_server_t *server, kcps_http_req_t *req,
                                      const kcps_server_session_t *session, const char *id);

/* server-reports.c: the shared parts of the month's reports. */
/* The month of ?month= (default: now's), or answers 400 itself. */
bool kcps__server_month_of_req(kcps_http_req_t *req, gint64 *start, gint64 *end, char out[8]);
/* Adds the figures of one report row, from its columns at col on. */
typedef void (*kcps__server_figures_fn)(JsonBuilder *b, sqlite3_stmt *stmt, int col);
/* Adds member: [rows] of a grouped query bound to (?1 org, ?2 start, ?3 end):
 * each row's first ncols columns are members named by names (a name starting
 * with '#' is a limit: its integer, null when negative), then figures. */
/* A report's "totals": the one row of sql (bound like report_rows) as an
 * object of figures from column 0; nothing when sql gives no row. False
 * with error set when the query fails. */
bool kcps__server_report_totals_locked(kcps_server_t *server, JsonBuilder *b, const char *sql,
                                       gint64 org, gint64 start, gint64 end,
                                       kcps__server_figures_fn figures, GError **error);
bool kcps__server_report_rows_locked(kcps_server_t *server, JsonBuilder *b, const char *member,
                                     const char *sql, const char *const *names, int ncols,
                                     gint64 org, gint64 start, gint64 end,
                                     kcps__server_figures_fn figures, GError **error);

G_END_DECLS
