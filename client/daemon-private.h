/* What the files of client/ share: the daemon context and the functions
 * daemon.c, daemon-pull.c, daemon-local.c and daemon-sync.c call on each
 * other. Not for other modules (tests may use it). */
#pragma once

#include "client/daemon.h"
#include "client/release.h"
#include "common/http-client.h"
#include "common/http-server.h"
#include "common/ticket.h"
#include "ipp/ipp-server.h"
#include "spool/spool.h"

G_BEGIN_DECLS

/* What kcpsd holds for one OS account after a login: memory only, never
 * written anywhere, never logged. */
typedef struct kcps__session_s {
  char *email;  /* the server account (as the server spells it) */
  char *token;  /* the server's user session token */
} kcps__session_t;

/* The cloud spool's uploader (daemon-upload.c). */
typedef struct kcps__uploader_s kcps__uploader_t;
/* The push channel's subscribers (daemon-events.c). */
typedef struct kcps__events_s kcps__events_t;
#define KCPS_UPLOAD_CHUNK_DEFAULT (8 * 1024 * 1024) /* the server's chunk_max */

struct kcps_daemon_s {
  GMutex lock;             /* guards sessions */
  GHashTable *sessions;    /* GUINT_TO_POINTER(uid) -> kcps__session_t* */

  GMutex key_lock;         /* guards ticket_key, key_attempted, key_attempt_at */
  kcps_ticket_key_t *ticket_key; /* the server's public key, NULL until fetched */
  bool key_attempted;
  gint64 key_attempt_at;   /* monotonic us of the last fetch attempt */

  /* Configuration, owned copies; fixed after kcps_daemon_new(). */
  gint64 retention_s;      /* config->retention_s: for each job's "expires" */
  bool user_mode;
  uid_t user_uid;
  char *server_url;        /* without a trailing slash; NULL: no server */
  char *server_ca;
  char *spool_dir;
  char *state_dir;
  char *pull_listen;
  char *pull_host;
  char *pull_cert_path;
  char *pull_key_path;
  char *pull_pin;          /* "sha256//..." of pull.crt */

  kcps_spool_t *spool;
  kcps_ipp_server_t *ipp;
  kcps_http_server_t *pull;
  kcps_http_server_t *local4; /* 127.0.0.1 */
  kcps_http_server_t *local6; /* [::1], NULL where the host has no IPv6 loopback */
  int pull_port;
  int local_port;

  GAsyncQueue *sync_queue; /* of sync items (daemon-sync.c) */
  gint stopping;           /* atomic: the worker drops queued work */
  GThread *sync_thread;

  kcps_releaser_t *releaser; /* direct printing (release.c) */
  kcps_usage_outbox_t *usage_outbox; /* its usage records (release-server.c) */

  bool cloud_spool;             /* spool mode cloud: upload jobs (daemon-upload.c); in
                                   --user mode the served account's effective mode
                                   (daemon-settings.c writes it atomically) */
  kcps__uploader_t *uploader;   /* NULL when there is no server */

  /* Spool modes (daemon-settings.c). */
  bool default_cloud_spool;     /* kcpsd --spool-mode cloud; fixed */
  GMutex settings_lock;         /* guards user_modes, org_modes */
  GHashTable *user_modes;       /* GUINT_TO_POINTER(uid) -> GINT_TO_POINTER(mode), cache of
                                   STATE/users/<uid>.json */
  GHashTable *org_modes;        /* uid -> mode: the organization's, as read at login */

  kcps__events_t *events;       /* GET /v1/events (daemon-events.c) */
  GMutex quota_lock;            /* guards quotas */
  GHashTable *quotas;           /* uid -> the server's quota as last read (daemon-local.c) */
};

/* Sessions (daemon.c). set copies its strings and returns the token of the
 * session it replaced (kcps__secret_free) or NULL; get returns copies (g_free,
 * the token with kcps__secret_free) and false when uid has no session;
 * drop removes uid's session only when its token equals only_token (or
 * only_token is NULL) and returns the removed token (kcps__secret_free) or
 * NULL. */
char *kcps__daemon_session_set(kcps_daemon_t *daemon, uid_t uid, const char *email,
                               const char *token);
bool kcps__daemon_session_get(kcps_daemon_t *daemon, uid_t uid, char **email, char **token);
char *kcps__daemon_session_drop(kcps_daemon_t *daemon, uid_t uid, const char *only_token);

/* Wipes and frees a secret string. NULL is a no-op. */
void kcps__secret_free(char *secret);

/* Options for calls to the server (trusting server_ca), with an optional
 * bearer token. */
void kcps__daemon_server_opts(const kcps_daemon_t *daemon, kcps_http_opts_t *opts,
                              const char *bearer, long timeout_s);

/* https://PULL_HOST:PULL_PORT/jobs/<id>/document; caller g_frees. */
char *kcps__daemon_pull_url(const kcps_daemon_t *daemon, const char *job_id);

/* Sync with the server (daemon-sync.c). The queue calls never block on the
 * network: a worker thread does the talking. */
bool kcps__sync_start(kcps_daemon_t *daemon, GError **error);
void kcps__sync_stop(kcps_daemon_t *daemon);
void kcps__sync_register_job(kcps_daemon_t *daemon, const char *job_id);
void kcps__sync_register_user(kcps_daemon_t *daemon, uid_t uid);
/* Fetches the server's ticket key in the background when none is cached. */
void kcps__sync_prefetch_key(kcps_daemon_t *daemon);
/* Ends token's session on the server, in the background; token is taken. */
void kcps__sync_server_logout(kcps_daemon_t *daemon, char *token);
/* uid deleted a job the server knows: withdraw it there (now, or at the
 * next rescan or login when that fails). */
void kcps__sync_withdraw(kcps_daemon_t *daemon, uid_t uid);
/* What a login, an MFA step, a refresh or an SSO exchange gave: either a
 * session (email, token, refresh_token, refresh_expires_in) or an MFA step
 * (mfa_token, mfa_expires_in); on a refusal because the account is locked,
 * the server's retry_after (seconds) and retry_at (Unix time), else 0.
 * Secrets wiped by kcps__auth_clear. */
typedef struct {
  char *email;
  char *token;
  char *refresh_token;
  gint64 refresh_expires_in;
  char *mfa_token;
  gint64 mfa_expires_in;
  gint64 retry_after;
  gint64 retry_at;
} kcps__auth_t;
void kcps__auth_clear(kcps__auth_t *auth);
/* POSTs body to the server's route (/api/v1/login, /api/v1/login/mfa,
 * /api/v1/token/refresh, /api/v1/sso/exchange) and reads the session it
 * gives (blocking; call from a request thread). */
kcps_net_status_t kcps__sync_auth(kcps_daemon_t *daemon, const char *route, JsonNode *body,
                                  long *status, kcps__auth_t *out,
                                  GError **error);
/* Verifies a pull ticket with the server's key, fetching the key when it is
 * not known yet, and once more (at most once a minute) when a signature
 * does not verify, in case the server changed its key. Errors are
 * KCPS_CRYPTO_ERROR (from kcps_ticket_verify) or KCPS_NET_ERROR when no key
 * could be had. */
kcps_ticket_t *kcps__sync_verify_ticket(kcps_daemon_t *daemon, const char *text, gint64 now,
                                        GError **error);

/* For tests: use key (taken) as the server's ticket key, as if just fetched. */
void kcps__daemon_set_ticket_key(kcps_daemon_t *daemon, kcps_ticket_key_t *key);
/* For tests: the daemon's spool. */
kcps_spool_t *kcps__daemon_spool(kcps_daemon_t *daemon);

/* Cloud spool (daemon-upload.c). upload_job runs on the sync worker: it
 * uploads one spooled job (resuming at the offset the server has) and deletes
 * the local copy once the server confirmed the job with the same sha256.
 * RETRY: the network or the server failed, try again later; REFUSED: not
 * again until the owner logs in; AUTH is handled inside (session dropped). */
typedef enum {
  KCPS_UPLOAD_DONE,
  KCPS_UPLOAD_RETRY,
  KCPS_UPLOAD_REFUSED,
  KCPS_UPLOAD_AUTH
} kcps_upload_result_t;
kcps__uploader_t *kcps__uploader_new(gint64 chunk_size, gint64 max_rate);
void kcps__uploader_free(kcps__uploader_t *uploader);
kcps_upload_result_t kcps__upload_job(kcps_daemon_t *daemon, const char *job_id);
/* Progress of a job's upload as the server confirmed it (GET /v1/jobs):
 * false when the job is not being uploaded. */
bool kcps__upload_progress(kcps_daemon_t *daemon, const char *job_id, gint64 *done,
                           gint64 *total);
/* Chunk bytes sent since kcpsd started (tests). */
gint64 kcps__upload_bytes_sent(kcps_daemon_t *daemon);
/* The idempotency key of a spool job's upload (g_free). */
char *kcps__upload_key(const char *spool_job_id);

/* Spool modes (daemon-settings.c). Precedence for one OS user: her own
 * choice (STATE/users/<uid>.json), else her organization's
 * default_spool_mode (read from the server at login), else kcpsd
 * --spool-mode; always local without a server. */
typedef enum {
  KCPS_SPOOL_MODE_UNSET = 0, /* no choice: follow the next level */
  KCPS_SPOOL_MODE_LOCAL,
  KCPS_SPOOL_MODE_CLOUD
} kcps_spool_mode_t;
typedef enum {
  KCPS_SPOOL_MODE_FROM_USER,
  KCPS_SPOOL_MODE_FROM_ORGANIZATION,
  KCPS_SPOOL_MODE_FROM_KCPSD
} kcps_spool_mode_source_t;
/* "local", "cloud", or NULL for UNSET. */
const char *kcps__spool_mode_string(kcps_spool_mode_t mode);
/* "user", "organization" or "kcpsd". */
const char *kcps__spool_mode_source_string(kcps_spool_mode_source_t source);
/* The precedence itself (pure; tests): user, else org, else kcpsd. */
kcps_spool_mode_t kcps__settings_resolve(kcps_spool_mode_t user, kcps_spool_mode_t org,
                                         bool kcpsd_cloud, kcps_spool_mode_source_t *source);
/* uid's own choice (UNSET when none) and her organization's (UNSET when not
 * known), and the effective mode (source may be NULL). */
kcps_spool_mode_t kcps__settings_user_mode(kcps_daemon_t *daemon, uid_t uid);
kcps_spool_mode_t kcps__settings_org_mode(kcps_daemon_t *daemon, uid_t uid);
kcps_spool_mode_t kcps__settings_effective(kcps_daemon_t *daemon, uid_t uid,
                                           kcps_spool_mode_source_t *source);
/* Stores uid's choice (UNSET removes it) durably, 0600; false +
 * KCPS_DAEMON_ERROR_IO naming the file. */
bool kcps__settings_set_user_mode(kcps_daemon_t *daemon, uid_t uid, kcps_spool_mode_t mode,
                                  GError **error);
/* Records the organization's default for uid (UNSET: none). */
void kcps__settings_set_org_mode(kcps_daemon_t *daemon, uid_t uid, kcps_spool_mode_t mode);
/* Reads default_spool_mode from GET /api/v1/me/policy with token (blocking;
 * request threads only); on failure the last known value stays. */
void kcps__settings_fetch_org_mode(kcps_daemon_t *daemon, uid_t uid, const char *token);
/* --user mode: makes daemon->cloud_spool the served account's effective mode. */
void kcps__settings_apply(kcps_daemon_t *daemon);
/* Parses a PUT /v1/settings body {"spool_mode": "local"|"cloud"|null}
 * (UNSET for null); false + KCPS_DAEMON_ERROR_BAD_REQUEST naming the field. */
bool kcps__settings_parse_put(const char *body, size_t len, kcps_spool_mode_t *mode,
                              GError **error);

/* Uploads that ended with the server's confirmation since kcpsd started:
 * copies of uid's jobs (kcps_job_t*, server_id set; the array frees them). */
GPtrArray *kcps__upload_finished_jobs(kcps_daemon_t *daemon, uid_t uid);

/* Direct printing and the server (release-server.c): the quota check and
 * the usage outbox with its poster thread; kick after a login. */
bool kcps__usage_start(kcps_daemon_t *daemon, GError **error);
void kcps__usage_kick(kcps_daemon_t *daemon);
void kcps__usage_stop(kcps_daemon_t *daemon);

/* The pull port (daemon-pull.c) and the local API (daemon-local.c). */
bool kcps__pull_start(kcps_daemon_t *daemon, GError **error);
bool kcps__local_start(kcps_daemon_t *daemon, GError **error);
/* GET /v1/jobs/<id>/document (daemon-document.c): true when the path was
 * that route (answered), false to try the others. */
bool kcps__local_document(kcps_daemon_t *daemon, kcps_http_req_t *req, uid_t uid);

/* Whether a Host header value names loopback (localhost, 127.0.0.1 or
 * [::1], any port); exposed for tests. */
bool kcps__local_host_ok(const char *host);
/* Parses a POST /v1/login body: true with *email and *password (g_free;
 * the password with kcps__secret_free), or false with
 * KCPS_DAEMON_ERROR_BAD_REQUEST naming the problem. */
/* Reads a JSON object of exactly the string fields names (NULL-ended),
 * each 1 to max[i] bytes, into values (kcps__secret_free each); the parsed
 * copies are wiped. false with a message for anything else. */
bool kcps__local_parse_fields(const char *body, size_t len, const char *const *names,
                              const size_t *max, char **values, GError **error);
bool kcps__local_parse_login(const char *body, size_t len, char **email, char **password,
                             GError **error);
/* Push channel (daemon-events.c): tells uid's subscribers of GET /v1/events
 * that something changed. type: "job" (added, state, deleted), "upload"
 * (progress), "release", "session", "settings", "quota"; id: the job or
 * release id, or NULL. Cheap and non-blocking: call it from any thread,
 * with or without locks held. */
void kcps__events_emit(kcps_daemon_t *daemon, uid_t uid, const char *type, const char *id);
/* The same to the subscribers of every OS user ("printers": what DNS-SD
 * finds changed). */
void kcps__events_emit_all(kcps_daemon_t *daemon, const char *type, const char *id);
/* daemon is going: discovery's changes no longer reach its subscribers
 * (daemon-printers.c). */
void kcps__local_printers_forget(kcps_daemon_t *daemon);
/* The subscribers. Bounds (0: these defaults): events queued per stream
 * (more collapse into one "resync"), streams per OS user, streams in all. */
#define KCPS_EVENTS_QUEUE_CAP 32
#define KCPS_EVENTS_PER_USER_CAP 8
#define KCPS_EVENTS_TOTAL_CAP 256
typedef struct kcps__events_sub_s kcps__events_sub_t;
kcps__events_t *kcps__events_new(guint queue_cap, guint per_user_cap, guint total_cap);
/* Ends every stream (their readers return 0) and refuses new ones; call
 * before the local API's servers are freed. */
void kcps__events_stop(kcps__events_t *events);
void kcps__events_free(kcps__events_t *events);
/* A stream for uid watching sock (-1: none) for hang-up; NULL + G_IO_ERROR
 * BUSY over a cap, CLOSED while stopping. */
kcps__events_sub_t *kcps__events_subscribe(kcps__events_t *events, uid_t uid, int sock,
                                           GError **error);
void kcps__events_unsubscribe(kcps__events_sub_t *sub);
/* The stream's next bytes (a kcps_http_stream_fn): blocks until an event,
 * the peer's hang-up or stop (0). The first event is "ready". */
gssize kcps__events_read(void *sub, char *buf, size_t max);
/* What is queued, formatted, without blocking (g_free; NULL: nothing). */
char *kcps__events_next(kcps__events_sub_t *sub);
/* uid's streams now. */
guint kcps__events_count(kcps__events_t *events, uid_t uid);
/* The quota shown in /v1/status is to be read again (daemon-local.c). */
void kcps__local_quota_stale(kcps_daemon_t *daemon, uid_t uid);
/* GET /v1/printers (daemon-printers.c): discovered printers. */
void kcps__local_get_printers(kcps_daemon_t *daemon, kcps_http_req_t *req, uid_t uid);
/* GET /v1/sso?email= (daemon-sso.c): the organization that signs in users
 * of this email domain with single sign-on. */
void kcps__local_get_sso(kcps_daemon_t *daemon, kcps_http_req_t *req, uid_t uid);
/* The lower-case domain of "user@domain" or of a bare domain, or NULL when
 * it is not a valid domain name (g_free). */
char *kcps__sso_domain_of(const char *email_or_domain);
/* The job id of a pull path "/jobs/<id>/document" (g_free), or NULL. */
char *kcps__pull_job_id_from_path(const char *path);

G_END_DECLS
