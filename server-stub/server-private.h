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
} kcps_server_session_t;

void kcps__server_session_free(kcps_server_session_t *session);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(kcps_server_session_t, kcps__server_session_free)

/* server.c */
gint64 kcps__server_now(void);
/* Writes data to path atomically (temporary file, fsync, rename), mode 0600. */
bool kcps__server_write_private_file(const char *path, const void *data, size_t len,
                                     GError **error);
/* The request body as a JSON object, or answers 400 itself and returns NULL. */
JsonObject *kcps__server_req_object(kcps_http_req_t *req);
/* Answers 400 bad_request with error's message. */
void kcps__server_respond_bad(kcps_http_req_t *req, const GError *error);
void kcps__server_respond_internal(kcps_http_req_t *req, const GError *error);

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
void kcps__server_route_device_login(kcps_server_t *server, kcps_http_req_t *req,
                                     const kcps_server_session_t *session, const char *id);
void kcps__server_route_pin_login(kcps_server_t *server, kcps_http_req_t *req,
                                  const kcps_server_session_t *session, const char *id);

/* server-jobs.c */
void kcps__server_route_register_job(kcps_server_t *server, kcps_http_req_t *req,
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

/* server-demo.c: creates the demo tree when the database holds no
 * organization; sets server->demo_text. True when nothing was to be done. */
bool kcps__server_demo_create(kcps_server_t *server, GError **error);

G_END_DECLS
