/* Talking to the server: a worker thread registers spooled jobs (so IPP
 * answers never wait for the network), plus the login call and the cached
 * ticket key the pull port verifies with. */
#define G_LOG_DOMAIN "kcpsd"

#include "client/daemon-private.h"

#include <string.h>

#include "common/crypto.h"
#include "common/json-util.h"

/* Retries of a registration that met a network failure or a 5xx: delays
 * double from RETRY_FIRST_S up to RETRY_MAX_S, at most RETRY_ATTEMPTS times;
 * after that the job waits for the next rescan (or login). */
#define RETRY_FIRST_S 2
#define RETRY_MAX_S 120
#define RETRY_ATTEMPTS 8
/* Every so often the worker looks again at the spooled jobs of everyone
 * logged in, so nothing waits forever for a trigger that was lost. */
#define RESCAN_S 300
/* Pulled jobs wait for the MFP's job log on the server: the worker asks
 * which were printed this often (one GET per user that has pulled jobs). */
#define PRINTED_CHECK_S 30
/* A ticket key that does not verify a ticket is refetched at most this
 * often; with no key at all, at most every KEY_MISSING_REFETCH_S. */
#define KEY_REFETCH_S 60
#define KEY_MISSING_REFETCH_S 5
#define SERVER_TIMEOUT_S 20

typedef enum {
  SYNC_REGISTER_JOB,  /* job_id */
  SYNC_REGISTER_USER, /* uid: every spooled job of it */
  SYNC_WITHDRAW,      /* uid: its deleted jobs the server still lists */
  SYNC_LOGOUT,        /* token */
  SYNC_FETCH_KEY,
  SYNC_QUIT
} sync_kind_t;

typedef struct sync_item_s {
  sync_kind_t kind;
  char *job_id;
  uid_t uid;
  char *token;
} sync_item_t;

typedef struct retry_s {
  int attempts;
  gint64 due; /* monotonic us */
} retry_t;

static void sync_item_free(sync_item_t *item)
{
  g_free(item->job_id);
  kcps__secret_free(item->token);
  g_free(item);
}

static void push(kcps_daemon_t *daemon, sync_kind_t kind, const char *job_id, uid_t uid,
                 char *token)
{
  sync_item_t *item = g_new0(sync_item_t, 1);
  item->kind = kind;
  item->job_id = g_strdup(job_id);
  item->uid = uid;
  item->token = token;
  g_async_queue_push(daemon->sync_queue, item);
}

void kcps__sync_register_job(kcps_daemon_t *daemon, const char *job_id)
{
  push(daemon, SYNC_REGISTER_JOB, job_id, 0, NULL);
}

void kcps__sync_register_user(kcps_daemon_t *daemon, uid_t uid)
{
  push(daemon, SYNC_REGISTER_USER, NULL, uid, NULL);
}

void kcps__sync_withdraw(kcps_daemon_t *daemon, uid_t uid)
{
  push(daemon, SYNC_WITHDRAW, NULL, uid, NULL);
}

void kcps__sync_server_logout(kcps_daemon_t *daemon, char *token)
{
  push(daemon, SYNC_LOGOUT, NULL, 0, token);
}

static char *api_url(const kcps_daemon_t *daemon, const char *route)
{
  return g_strconcat(daemon->server_url, route, NULL);
}

static void set_no_server(GError **error)
{
  g_set_error_literal(error, KCPS_NET_ERROR, KCPS_NET_FATAL,
                      "no server is configured (start kcpsd with --server URL)");
}

/* --- login ------------------------------------------------------------- */

void kcps__auth_clear(kcps__auth_t *auth)
{
  g_free(auth->email);
  kcps__secret_free(auth->token);
  kcps__secret_free(auth->refresh_token);
  kcps__secret_free(auth->mfa_token);
  memset(auth, 0, sizeof(*auth));
}

/* The email of the account token belongs to (GET /api/v1/me). */
static char *fetch_email(kcps_daemon_t *daemon, const char *token, GError **error)
{
  kcps_http_opts_t opts;
  kcps__daemon_server_opts(daemon, &opts, token, SERVER_TIMEOUT_S);
  g_autofree char *url = api_url(daemon, "/api/v1/me");
  g_autoptr(JsonNode) response = NULL;
  long status = 0;
  if (kcps_http_call_json("GET", url, &opts, NULL, &status, &response, error) != KCPS_NET_OK)
    return NULL;
  const char *email = response != NULL && JSON_NODE_HOLDS_OBJECT(response)
                        ? kcps_json_string(json_node_get_object(response), "email") : NULL;
  if (email == NULL) {
    g_set_error_literal(error, KCPS_NET_ERROR, KCPS_NET_FATAL,
                        "the server's answer to /api/v1/me has no email");
    return NULL;
  }
  return g_strdup(email);
}

/* A refusal 401/403 {"error":"account_locked","retry_after":N,
 * "retry_at":"<RFC 3339>"}: its times into out (left 0 when the answer is
 * another or its times are missing or make no sense). */
static void read_lock(JsonNode *response, kcps__auth_t *out)
{
  gint64 after = -1;
  gint64 until = kcps_json_locked_until(response, &after);
  if (until <= 0 || after < 0)
    return;
  out->retry_after = after;
  out->retry_at = until;
}

kcps_net_status_t kcps__sync_auth(kcps_daemon_t *daemon, const char *route, JsonNode *body,
                                  long *status, kcps__auth_t *out,
                                  GError **error)
{
  *status = 0;
  memset(out, 0, sizeof(*out));
  if (daemon->server_url == NULL) {
    set_no_server(error);
    return KCPS_NET_FATAL;
  }
  kcps_http_opts_t opts;
  kcps__daemon_server_opts(daemon, &opts, NULL, SERVER_TIMEOUT_S);
  g_autofree char *url = api_url(daemon, route);
  g_autoptr(JsonNode) response = NULL;
  kcps_net_status_t net = kcps_http_call_json("POST", url, &opts, body, status, &response, error);
  if (net == KCPS_NET_AUTH)
    read_lock(response, out);
  if (net != KCPS_NET_OK)
    return net;

  JsonObject *obj = response != NULL && JSON_NODE_HOLDS_OBJECT(response)
                      ? json_node_get_object(response) : NULL;
  if (obj != NULL && json_object_has_member(obj, "mfa_required")
      && JSON_NODE_HOLDS_VALUE(json_object_get_member(obj, "mfa_required"))
      && json_object_get_boolean_member(obj, "mfa_required")) {
    const char *mfa = kcps_json_string(obj, "mfa_token");
    if (mfa == NULL || *mfa == '\0') {
      g_set_error_literal(error, KCPS_NET_ERROR, KCPS_NET_FATAL,
                          "the server asked for a code but sent no mfa_token");
      return KCPS_NET_FATAL;
    }
    out->mfa_token = g_strdup(mfa);
    out->mfa_expires_in = json_object_has_member(obj, "expires_in")
                            ? json_object_get_int_member(obj, "expires_in") : 300;
    return KCPS_NET_OK;
  }
  const char *token = obj != NULL ? kcps_json_string(obj, "token") : NULL;
  const char *refresh = obj != NULL ? kcps_json_string(obj, "refresh_token") : NULL;
  if (token == NULL || *token == '\0' || refresh == NULL || *refresh == '\0') {
    g_set_error_literal(error, KCPS_NET_ERROR, KCPS_NET_FATAL,
                        "the server's login answer has no token or refresh token");
    return KCPS_NET_FATAL;
  }
  out->token = g_strdup(token);
  out->refresh_token = g_strdup(refresh);
  out->refresh_expires_in = json_object_has_member(obj, "refresh_expires_in")
                              ? json_object_get_int_member(obj, "refresh_expires_in") : 0;
  /* Tickets name the owner as the server spells the account. */
  const char *server_email = NULL;
  if (json_object_has_member(obj, "user")
      && JSON_NODE_HOLDS_OBJECT(json_object_get_member(obj, "user")))
    server_email = kcps_json_string(json_object_get_object_member(obj, "user"), "email");
  if (server_email != NULL) {
    out->email = g_strdup(server_email);
  } else {
    /* A refresh answer names nobody: ask whose session it is. */
    out->email = fetch_email(daemon, out->token, error);
    if (out->email == NULL) {
      kcps__auth_clear(out);
      return KCPS_NET_RETRY;
    }
  }
  return KCPS_NET_OK;
}

/* --- the ticket key ------------------------------------------------------- */

static kcps_ticket_key_t *fetch_ticket_key(kcps_daemon_t *daemon, GError **error)
{
  if (daemon->server_url == NULL) {
    set_no_server(error);
    return NULL;
  }
  kcps_http_opts_t opts;
  kcps__daemon_server_opts(daemon, &opts, NULL, SERVER_TIMEOUT_S);
  g_autofree char *url = api_url(daemon, "/api/v1/ticket-key");
  g_autoptr(JsonNode) response = NULL;
  long status = 0;
  if (kcps_http_call_json("GET", url, &opts, NULL, &status, &response, error) != KCPS_NET_OK)
    return NULL;
  JsonObject *obj = response != NULL && JSON_NODE_HOLDS_OBJECT(response)
                      ? json_node_get_object(response) : NULL;
  const char *alg = obj != NULL ? kcps_json_string(obj, "alg") : NULL;
  const char *key = obj != NULL ? kcps_json_string(obj, "public_key") : NULL;
  if (g_strcmp0(alg, "Ed25519") != 0 || key == NULL) {
    g_set_error_literal(error, KCPS_NET_ERROR, KCPS_NET_FATAL,
                        "the server's ticket-key answer lacks an Ed25519 public_key");
    return NULL;
  }
  return kcps_ticket_key_from_public(key, error);
}

static void install_key(kcps_daemon_t *daemon, kcps_ticket_key_t *key)
{
  g_mutex_lock(&daemon->key_lock);
  kcps_ticket_key_free(daemon->ticket_key);
  daemon->ticket_key = key;
  daemon->key_attempted = true;
  daemon->key_attempt_at = g_get_monotonic_time();
  g_mutex_unlock(&daemon->key_lock);
}

void kcps__daemon_set_ticket_key(kcps_daemon_t *daemon, kcps_ticket_key_t *key)
{
  install_key(daemon, key);
}

/* Fetches the key when the cache is empty (worker, at start and after a
 * login). */
static void prefetch_key(kcps_daemon_t *daemon)
{
  g_mutex_lock(&daemon->key_lock);
  bool have = daemon->ticket_key != NULL;
  if (!have) {
    daemon->key_attempted = true;
    daemon->key_attempt_at = g_get_monotonic_time();
  }
  g_mutex_unlock(&daemon->key_lock);
  if (have || daemon->server_url == NULL)
    return;
  g_autoptr(GError) error = NULL;
  kcps_ticket_key_t *key = fetch_ticket_key(daemon, &error);
  if (key == NULL) {
    g_message("cannot fetch the server's ticket key: %s", error->message);
    return;
  }
  install_key(daemon, key);
}

kcps_ticket_t *kcps__sync_verify_ticket(kcps_daemon_t *daemon, const char *text, gint64 now,
                                        GError **error)
{
  g_autoptr(GError) local = NULL;
  kcps_ticket_t *ticket = NULL;
  gint64 mono = g_get_monotonic_time();

  /* Verify under the lock (it is quick), but never hold it across a fetch. */
  g_mutex_lock(&daemon->key_lock);
  bool have = daemon->ticket_key != NULL;
  if (have)
    ticket = kcps_ticket_verify(daemon->ticket_key, text, now, &local);
  bool refetch = false;
  if (!have)
    refetch = !daemon->key_attempted
              || mono - daemon->key_attempt_at >= KEY_MISSING_REFETCH_S * G_USEC_PER_SEC;
  else if (ticket == NULL
           && g_error_matches(local, KCPS_CRYPTO_ERROR, KCPS_CRYPTO_ERROR_SIGNATURE))
    /* The server may have a new key; ask, but not for every forged ticket. */
    refetch = mono - daemon->key_attempt_at >= KEY_REFETCH_S * G_USEC_PER_SEC;
  if (refetch) {
    daemon->key_attempted = true;
    daemon->key_attempt_at = mono;
  }
  g_mutex_unlock(&daemon->key_lock);

  if (ticket != NULL)
    return ticket;
  if (!refetch || daemon->server_url == NULL) {
    if (local != NULL)
      g_propagate_error(error, g_steal_pointer(&local));
    else
      g_set_error_literal(error, KCPS_NET_ERROR, KCPS_NET_RETRY,
                          "the server's ticket key is not known yet");
    return NULL;
  }

  g_autoptr(GError) fetch_error = NULL;
  kcps_ticket_key_t *key = fetch_ticket_key(daemon, &fetch_error);
  if (key == NULL) {
    g_message("cannot fetch the server's ticket key: %s", fetch_error->message);
    if (local != NULL)
      g_propagate_error(error, g_steal_pointer(&local));
    else
      g_set_error(error, KCPS_NET_ERROR, KCPS_NET_RETRY,
                  "the server's ticket key could not be fetched");
    return NULL;
  }
  g_mutex_lock(&daemon->key_lock);
  kcps_ticket_key_free(daemon->ticket_key);
  daemon->ticket_key = key;
  ticket = kcps_ticket_verify(daemon->ticket_key, text, now, error);
  g_mutex_unlock(&daemon->key_lock);
  return ticket;
}

/* --- registration ----------------------------------------------------------- */

typedef enum {
  REG_DONE,    /* registered, or nothing to do (gone, not spooled, nobody logged in) */
  REG_RETRY,   /* the network or the server failed: try again soon */
  REG_REFUSED  /* the server refused this job: not again until the owner logs in */
} reg_result_t;

static JsonNode *registration_body(kcps_daemon_t *daemon, const kcps_job_t *job)
{
  g_autofree char *pull_url = kcps__daemon_pull_url(daemon, job->id);
  g_autoptr(JsonBuilder) builder = json_builder_new();
  json_builder_begin_object(builder);
  json_builder_set_member_name(builder, "client_job_id");
  json_builder_add_string_value(builder, job->id);
  json_builder_set_member_name(builder, "name");
  json_builder_add_string_value(builder, job->name != NULL ? job->name : "");
  json_builder_set_member_name(builder, "pages");
  json_builder_add_int_value(builder, job->pages);
  json_builder_set_member_name(builder, "size");
  json_builder_add_int_value(builder, job->size);
  json_builder_set_member_name(builder, "sha256");
  json_builder_add_string_value(builder, job->sha256);
  json_builder_set_member_name(builder, "pull_url");
  json_builder_add_string_value(builder, pull_url);
  json_builder_set_member_name(builder, "pull_pin");
  json_builder_add_string_value(builder, daemon->pull_pin);
  json_builder_end_object(builder);
  return json_builder_get_root(builder);
}

/* Registers one job when it is still spooled and its owner is logged in.
 * Whatever is not registered stays spooled for a retry, a rescan or the
 * next login. */
static reg_result_t register_job(kcps_daemon_t *daemon, const char *job_id)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(kcps_job_t) job = kcps_spool_get_job(daemon->spool, job_id, &error);
  if (job == NULL) {
    if (!g_error_matches(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_NOT_FOUND))
      g_warning("job %s: cannot read it from the spool: %s", job_id, error->message);
    return REG_DONE;
  }
  if (job->state != KCPS_JOB_STATE_SPOOLED || daemon->server_url == NULL)
    return REG_DONE;
  g_autofree char *email = NULL;
  char *token = NULL;
  if (!kcps__daemon_session_get(daemon, job->owner_uid, &email, &token))
    return REG_DONE;

  g_autoptr(JsonNode) body = registration_body(daemon, job);
  kcps_http_opts_t opts;
  kcps__daemon_server_opts(daemon, &opts, token, SERVER_TIMEOUT_S);
  g_autofree char *url = api_url(daemon, "/api/v1/jobs");
  g_autoptr(JsonNode) response = NULL;
  long status = 0;
  kcps_net_status_t net = kcps_http_call_json("POST", url, &opts, body, &status, &response,
                                              &error);
  reg_result_t result = REG_DONE;
  switch (net) {
  case KCPS_NET_OK: {
    JsonObject *obj = response != NULL && JSON_NODE_HOLDS_OBJECT(response)
                        ? json_node_get_object(response) : NULL;
    g_autofree char *server_id = NULL;
    gint64 numeric = 0;
    if (obj != NULL && kcps_json_string(obj, "id") != NULL)
      server_id = g_strdup(kcps_json_string(obj, "id"));
    else if (obj != NULL && kcps_json_int(obj, "id", &numeric))
      server_id = g_strdup_printf("%" G_GINT64_FORMAT, numeric);
    if (server_id == NULL) {
      g_warning("job %s: the server's registration answer has no id", job->id);
      break;
    }
    if (!kcps_spool_set_registered(daemon->spool, job->id, server_id, email, &error))
      g_warning("job %s: registered as %s but cannot record it: %s", job->id, server_id,
                error->message);
    else {
      g_info("job %s registered with the server as %s", job->id, server_id);
      kcps__events_emit(daemon, job->owner_uid, "job", job->id);
    }
    break;
  }
  case KCPS_NET_RETRY:
    g_info("job %s: cannot register it now (%s); will retry", job->id, error->message);
    result = REG_RETRY;
    break;
  case KCPS_NET_AUTH:
    /* The session is over on the server: forget it; the user logs in
     * again and the jobs, still spooled, are registered then. */
    kcps__secret_free(kcps__daemon_session_drop(daemon, job->owner_uid, token));
    g_message("the server refused the session of uid %u; it must log in again",
              (unsigned)job->owner_uid);
    break;
  case KCPS_NET_FATAL:
    g_warning("job %s: the server refused the registration: %s", job->id, error->message);
    result = REG_REFUSED;
    break;
  }
  kcps__secret_free(token);
  return result;
}

static void server_logout(kcps_daemon_t *daemon, const char *token)
{
  if (daemon->server_url == NULL)
    return;
  kcps_http_opts_t opts;
  kcps__daemon_server_opts(daemon, &opts, token, SERVER_TIMEOUT_S);
  g_autofree char *url = api_url(daemon, "/api/v1/logout");
  g_autoptr(GError) error = NULL;
  long status = 0;
  g_autoptr(JsonNode) response = NULL;
  /* Best effort: the token is already forgotten here, and expires anyway. */
  if (kcps_http_call_json("POST", url, &opts, NULL, &status, &response, &error) != KCPS_NET_OK)
    g_info("server logout failed: %s", error->message);
}

/* --- withdrawals --------------------------------------------------------------- */

/* uid deleted jobs (or retention did) that the server still lists: DELETE
 * /api/v1/jobs/{id} for each, with uid's session when it is the account the
 * job was registered for. The server's last word (gone, withdrawn, or
 * printed and kept for the reports) clears the job's server_id here; a
 * failure leaves it for the next round (a rescan, the next login). */
static void withdraw_deleted(kcps_daemon_t *daemon, uid_t uid)
{
  if (daemon->server_url == NULL)
    return;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) jobs = kcps_spool_list_withdrawals(daemon->spool, uid, &error);
  if (jobs == NULL) {
    g_warning("cannot list the withdrawals of uid %u: %s", (unsigned)uid, error->message);
    return;
  }
  if (jobs->len == 0)
    return;
  g_autofree char *email = NULL;
  char *token = NULL;
  if (!kcps__daemon_session_get(daemon, uid, &email, &token))
    return;
  for (guint i = 0; i < jobs->len && !g_atomic_int_get(&daemon->stopping); i++) {
    const kcps_job_t *job = g_ptr_array_index(jobs, i);
    if (job->server_user != NULL && g_ascii_strcasecmp(job->server_user, email) != 0)
      continue; /* registered for another account: its own login withdraws it */
    kcps_http_opts_t opts;
    kcps__daemon_server_opts(daemon, &opts, token, SERVER_TIMEOUT_S);
    g_autofree char *escaped = g_uri_escape_string(job->server_id, NULL, FALSE);
    g_autofree char *route = g_strconcat("/api/v1/jobs/", escaped, NULL);
    g_autofree char *url = api_url(daemon, route);
    g_autoptr(JsonNode) response = NULL;
    g_autoptr(GError) call_error = NULL;
    long status = 0;
    kcps_net_status_t net =
      kcps_http_call_json("DELETE", url, &opts, NULL, &status, &response, &call_error);
    bool settled = net == KCPS_NET_OK || status == 404 || status == 409 || status == 410;
    if (!settled) {
      g_info("job %s: cannot withdraw it from the server now (%s)", job->id,
             call_error != NULL ? call_error->message : "?");
      if (net == KCPS_NET_AUTH || net == KCPS_NET_RETRY)
        break; /* the session or the server: the next round */
      continue;
    }
    g_autoptr(GError) clear_error = NULL;
    if (!kcps_spool_set_registered(daemon->spool, job->id, NULL, NULL, &clear_error))
      g_warning("job %s: withdrawn but cannot record it: %s", job->id, clear_error->message);
    else
      g_message("job %s: withdrawn from the server (HTTP %ld)", job->id, status);
  }
  kcps__secret_free(token);
}

/* --- printed jobs ------------------------------------------------------------ */

/* Asks the server (GET /api/v1/jobs) which of uid's registered or pulled
 * jobs (pulled_only: pulled jobs; none, no call) an MFP logged as printed,
 * and marks them printed here; retention then keeps or deletes them like
 * any other job. Best effort: a failure waits for the next sync. */
static void sync_printed(kcps_daemon_t *daemon, uid_t uid, bool pulled_only)
{
  /* Also in cloud mode: jobs registered for a pull before a switch to
   * cloud are still pulled from here. */
  if (daemon->server_url == NULL)
    return;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) jobs = kcps_spool_list_jobs(daemon->spool, uid, &error);
  if (jobs == NULL)
    return;
  g_autoptr(GHashTable) waiting = g_hash_table_new(g_str_hash, g_str_equal); /* server id -> job */
  for (guint i = 0; i < jobs->len; i++) {
    kcps_job_t *job = g_ptr_array_index(jobs, i);
    if (((job->state == KCPS_JOB_STATE_REGISTERED && !pulled_only)
         || job->state == KCPS_JOB_STATE_PULLED)
        && job->server_id != NULL)
      g_hash_table_insert(waiting, job->server_id, job);
  }
  if (g_hash_table_size(waiting) == 0)
    return;
  g_autofree char *email = NULL;
  char *token = NULL;
  if (!kcps__daemon_session_get(daemon, uid, &email, &token))
    return;
  kcps_http_opts_t opts;
  kcps__daemon_server_opts(daemon, &opts, token, SERVER_TIMEOUT_S);
  g_autofree char *url = api_url(daemon, "/api/v1/jobs");
  g_autoptr(JsonNode) response = NULL;
  long status = 0;
  kcps_net_status_t net = kcps_http_call_json("GET", url, &opts, NULL, &status, &response,
                                              &error);
  kcps__secret_free(token);
  if (net != KCPS_NET_OK) {
    g_info("cannot ask the server which jobs of uid %u were printed: %s", (unsigned)uid,
           error != NULL ? error->message : "?");
    return;
  }
  JsonObject *obj = response != NULL && JSON_NODE_HOLDS_OBJECT(response)
                      ? json_node_get_object(response) : NULL;
  JsonNode *list = obj != NULL ? json_object_get_member(obj, "jobs") : NULL;
  if (list == NULL || !JSON_NODE_HOLDS_ARRAY(list))
    return;
  JsonArray *array = json_node_get_array(list);
  for (guint i = 0; i < json_array_get_length(array); i++) {
    JsonNode *node = json_array_get_element(array, i);
    if (!JSON_NODE_HOLDS_OBJECT(node))
      continue;
    JsonObject *sj = json_node_get_object(node);
    const char *id = kcps_json_string(sj, "id");
    kcps_job_t *job = id != NULL ? g_hash_table_lookup(waiting, id) : NULL;
    /* The server's job must be this very spool job, and printed. */
    if (job == NULL || g_strcmp0(kcps_json_string(sj, "state"), "printed") != 0
        || g_strcmp0(kcps_json_string(sj, "client_job_id"), job->id) != 0)
      continue;
    g_autoptr(GError) set_error = NULL;
    if (kcps_spool_set_state(daemon->spool, job->id, KCPS_JOB_STATE_PRINTED, &set_error)) {
      g_info("job %s printed (the server has its job log)", job->id);
      kcps__events_emit(daemon, uid, "job", job->id);
    } else
      g_warning("job %s: printed, but cannot record it: %s", job->id, set_error->message);
  }
}

/* --- the worker ------------------------------------------------------------- */

typedef struct worker_s {
  kcps_daemon_t *daemon;
  GHashTable *retries; /* job id -> retry_t* */
  GHashTable *refused; /* job ids the server refused (a set) */
} worker_t;

/* Upload or registration: by the effective spool mode of the job's owner
 * (her choice, else her organization's default, else kcpsd's), so that two
 * users of one kcpsd may spool differently. A job that cannot be read is
 * left to register_job, which says why. */
static bool job_goes_to_cloud(kcps_daemon_t *daemon, const char *job_id)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(kcps_job_t) job = kcps_spool_get_job(daemon->spool, job_id, &error);
  if (job == NULL)
    return false;
  return kcps__settings_effective(daemon, job->owner_uid, NULL) == KCPS_SPOOL_MODE_CLOUD;
}

static void handle_job(worker_t *worker, const char *job_id, int attempts)
{
  if (g_atomic_int_get(&worker->daemon->stopping))
    return;
  reg_result_t result;
  if (job_goes_to_cloud(worker->daemon, job_id)) {
    /* Cloud spool: the document goes to the server (daemon-upload.c). */
    kcps_upload_result_t up = kcps__upload_job(worker->daemon, job_id);
    result = up == KCPS_UPLOAD_RETRY ? REG_RETRY : up == KCPS_UPLOAD_REFUSED ? REG_REFUSED
                                                                             : REG_DONE;
  } else {
    result = register_job(worker->daemon, job_id);
  }
  if (result != REG_RETRY) {
    g_hash_table_remove(worker->retries, job_id);
    if (result == REG_REFUSED)
      g_hash_table_add(worker->refused, g_strdup(job_id));
    return;
  }
  if (attempts + 1 >= RETRY_ATTEMPTS) {
    g_warning("job %s: giving up registering it for now; it stays spooled", job_id);
    g_hash_table_remove(worker->retries, job_id);
    return;
  }
  gint64 delay = RETRY_FIRST_S;
  for (int i = 0; i < attempts && delay < RETRY_MAX_S; i++)
    delay *= 2;
  retry_t *retry = g_new0(retry_t, 1);
  retry->attempts = attempts + 1;
  retry->due = g_get_monotonic_time() + MIN(delay, RETRY_MAX_S) * G_USEC_PER_SEC;
  g_hash_table_replace(worker->retries, g_strdup(job_id), retry);
}

/* Registers uid's spooled jobs. after_login: also those the server refused
 * before (the user may have fixed what was wrong, e.g. the account). */
static void handle_user(worker_t *worker, uid_t uid, bool after_login)
{
  kcps_daemon_t *daemon = worker->daemon;
  g_autoptr(GError) error = NULL;
  withdraw_deleted(daemon, uid);
  sync_printed(daemon, uid, false);
  g_autoptr(GPtrArray) jobs = kcps_spool_list_jobs(daemon->spool, uid, &error);
  if (jobs == NULL) {
    g_warning("cannot list the spooled jobs of uid %u: %s", (unsigned)uid, error->message);
    return;
  }
  for (guint i = 0; i < jobs->len; i++) {
    const kcps_job_t *job = g_ptr_array_index(jobs, i);
    if (job->state != KCPS_JOB_STATE_SPOOLED)
      continue;
    if (after_login)
      g_hash_table_remove(worker->refused, job->id);
    /* A job already waiting for its retry keeps its backoff. */
    if (!g_hash_table_contains(worker->retries, job->id)
        && !g_hash_table_contains(worker->refused, job->id))
      handle_job(worker, job->id, 0);
  }
}

/* The uids with a session (caller frees). */
static GArray *session_uids(kcps_daemon_t *daemon)
{
  GArray *uids = g_array_new(FALSE, FALSE, sizeof(uid_t));
  g_mutex_lock(&daemon->lock);
  GHashTableIter iter;
  void *key;
  g_hash_table_iter_init(&iter, daemon->sessions);
  while (g_hash_table_iter_next(&iter, &key, NULL)) {
    uid_t uid = GPOINTER_TO_UINT(key);
    g_array_append_val(uids, uid);
  }
  g_mutex_unlock(&daemon->lock);
  return uids;
}

static void check_pulled(worker_t *worker)
{
  g_autoptr(GArray) uids = session_uids(worker->daemon);
  for (guint i = 0; i < uids->len && !g_atomic_int_get(&worker->daemon->stopping); i++)
    sync_printed(worker->daemon, g_array_index(uids, uid_t, i), true);
}

static void rescan(worker_t *worker)
{
  kcps_daemon_t *daemon = worker->daemon;
  g_autoptr(GArray) uids = g_array_new(FALSE, FALSE, sizeof(uid_t));
  g_mutex_lock(&daemon->lock);
  GHashTableIter iter;
  void *key;
  g_hash_table_iter_init(&iter, daemon->sessions);
  while (g_hash_table_iter_next(&iter, &key, NULL)) {
    uid_t uid = GPOINTER_TO_UINT(key);
    g_array_append_val(uids, uid);
  }
  g_mutex_unlock(&daemon->lock);
  for (guint i = 0; i < uids->len; i++)
    handle_user(worker, g_array_index(uids, uid_t, i), false);
}

static void run_due_retries(worker_t *worker)
{
  gint64 now = g_get_monotonic_time();
  g_autoptr(GPtrArray) due = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GArray) attempts = g_array_new(FALSE, FALSE, sizeof(int));
  GHashTableIter iter;
  void *key, *value;
  g_hash_table_iter_init(&iter, worker->retries);
  while (g_hash_table_iter_next(&iter, &key, &value)) {
    retry_t *retry = value;
    if (retry->due <= now) {
      g_ptr_array_add(due, g_strdup(key));
      g_array_append_val(attempts, retry->attempts);
    }
  }
  for (guint i = 0; i < due->len; i++)
    handle_job(worker, g_ptr_array_index(due, i), g_array_index(attempts, int, i));
}

/* How long the worker may sleep: until the next retry or rescan. */
static gint64 next_wakeup(worker_t *worker, gint64 next_rescan)
{
  gint64 wake = next_rescan;
  GHashTableIter iter;
  void *value;
  g_hash_table_iter_init(&iter, worker->retries);
  while (g_hash_table_iter_next(&iter, NULL, &value))
    wake = MIN(wake, ((retry_t *)value)->due);
  return wake;
}

static void *worker_main(void *data)
{
  worker_t worker = {
    .daemon = data,
    .retries = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free),
    .refused = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL),
  };
  kcps_daemon_t *daemon = worker.daemon;
  gint64 next_rescan = g_get_monotonic_time() + RESCAN_S * G_USEC_PER_SEC;
  gint64 next_printed = g_get_monotonic_time() + PRINTED_CHECK_S * G_USEC_PER_SEC;
  for (;;) {
    gint64 wait = next_wakeup(&worker, MIN(next_rescan, next_printed)) - g_get_monotonic_time();
    sync_item_t *item = wait > 0
                          ? g_async_queue_timeout_pop(daemon->sync_queue, (guint64)wait)
                          : g_async_queue_try_pop(daemon->sync_queue);
    if (g_atomic_int_get(&daemon->stopping) && item != NULL && item->kind != SYNC_QUIT) {
      sync_item_free(item);
      continue;
    }
    if (item != NULL) {
      sync_kind_t kind = item->kind;
      switch (kind) {
      case SYNC_REGISTER_JOB:
        if (!g_hash_table_contains(worker.retries, item->job_id)
            && !g_hash_table_contains(worker.refused, item->job_id))
          handle_job(&worker, item->job_id, 0);
        break;
      case SYNC_REGISTER_USER:
        handle_user(&worker, item->uid, true);
        break;
      case SYNC_WITHDRAW:
        withdraw_deleted(daemon, item->uid);
        break;
      case SYNC_LOGOUT:
        server_logout(daemon, item->token);
        break;
      case SYNC_FETCH_KEY:
        prefetch_key(daemon);
        break;
      case SYNC_QUIT:
        break;
      }
      sync_item_free(item);
      if (kind == SYNC_QUIT)
        break;
    }
    run_due_retries(&worker);
    if (g_get_monotonic_time() >= next_rescan) {
      rescan(&worker);
      next_rescan = g_get_monotonic_time() + RESCAN_S * G_USEC_PER_SEC;
      next_printed = g_get_monotonic_time() + PRINTED_CHECK_S * G_USEC_PER_SEC;
    }
    if (g_get_monotonic_time() >= next_printed) {
      check_pulled(&worker);
      next_printed = g_get_monotonic_time() + PRINTED_CHECK_S * G_USEC_PER_SEC;
    }
  }
  g_hash_table_destroy(worker.retries);
  g_hash_table_destroy(worker.refused);
  return NULL;
}

bool kcps__sync_start(kcps_daemon_t *daemon, GError **error)
{
  daemon->sync_queue = g_async_queue_new_full((GDestroyNotify)sync_item_free);
  daemon->sync_thread = g_thread_try_new("kcpsd-sync", worker_main, daemon, error);
  if (daemon->sync_thread == NULL)
    return false;
  if (daemon->server_url != NULL)
    push(daemon, SYNC_FETCH_KEY, NULL, 0, NULL);
  return true;
}

void kcps__sync_stop(kcps_daemon_t *daemon)
{
  if (daemon->sync_thread != NULL) {
    /* Queued work is dropped (jobs stay spooled and are registered after
     * the next start and login); a call in flight ends by its timeout. */
    g_atomic_int_set(&daemon->stopping, 1);
    sync_item_t *quit = g_new0(sync_item_t, 1);
    quit->kind = SYNC_QUIT;
    g_async_queue_push_front(daemon->sync_queue, quit);
    g_thread_join(daemon->sync_thread);
    daemon->sync_thread = NULL;
  }
  if (daemon->sync_queue != NULL) {
    g_async_queue_unref(daemon->sync_queue);
    daemon->sync_queue = NULL;
  }
}

void kcps__sync_prefetch_key(kcps_daemon_t *daemon)
{
  push(daemon, SYNC_FETCH_KEY, NULL, 0, NULL);
}
