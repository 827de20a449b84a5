/* Direct printing and the server (issue 5): the quota check before a
 * release (POST /api/v1/me/quota/check; offline, the last signed statement
 * the server gave, GET /api/v1/me/quota) and the usage outbox's poster
 * (POST /api/v1/usage). Calls go through the daemon's session and server
 * helpers, as the sync worker's do. */
#define G_LOG_DOMAIN "kcpsd"

#include "client/daemon-private.h"

#include <string.h>

#include <glib/gstdio.h>

#include "common/crypto.h"
#include "common/json-util.h"
#include "common/quota-statement.h"

#define SERVER_TIMEOUT_S 20
/* A quota check must not hold a release up for long when the server is
 * slow: past this, the offline rule applies. */
#define CHECK_TIMEOUT_S 10
#define RETRY_FIRST_MS 2000
#define RETRY_MAX_MS 30000

static char *api_url(const kcps_daemon_t *daemon, const char *route)
{
  return g_strconcat(daemon->server_url, route, NULL);
}

/* STATE/quota-<sha256 of the lower-case account>.statement: one per server
 * user, 0600. */
static char *statement_path(const kcps_daemon_t *daemon, const char *email)
{
  g_autofree char *lower = g_ascii_strdown(email, -1);
  char hex[65];
  kcps_crypto_sha256_hex(lower, strlen(lower), hex);
  hex[32] = '\0';
  g_autofree char *name = g_strdup_printf("quota-%s.statement", hex);
  return g_build_filename(daemon->state_dir, name, NULL);
}

/* The server's key as base64url, or NULL when kcpsd has none yet. */
static char *ticket_key_b64(kcps_daemon_t *daemon)
{
  g_mutex_lock(&daemon->key_lock);
  char *b64 = daemon->ticket_key != NULL ? kcps_ticket_key_public_b64(daemon->ticket_key)
                                         : NULL;
  g_mutex_unlock(&daemon->key_lock);
  return b64;
}

/* Fetches and caches email's signed statement (best effort: the cache is
 * for when the server cannot be reached). */
static void refresh_statement(kcps_daemon_t *daemon, const char *email, const char *token)
{
  kcps_http_opts_t opts;
  kcps__daemon_server_opts(daemon, &opts, token, SERVER_TIMEOUT_S);
  g_autofree char *url = api_url(daemon, "/api/v1/me/quota");
  g_autoptr(JsonNode) response = NULL;
  g_autoptr(GError) error = NULL;
  long status = 0;
  if (kcps_http_call_json("GET", url, &opts, NULL, &status, &response, &error)
      != KCPS_NET_OK) {
    g_info("cannot fetch the quota statement of %s: %s", email, error->message);
    return;
  }
  JsonObject *obj = response != NULL && JSON_NODE_HOLDS_OBJECT(response)
                      ? json_node_get_object(response) : NULL;
  const char *statement = obj != NULL ? kcps_json_string(obj, "statement") : NULL;
  if (statement == NULL || strlen(statement) > KCPS_QUOTA_STATEMENT_MAX_LEN) {
    g_info("the server's quota answer for %s has no statement", email);
    return;
  }
  /* Kept only when it verifies now (so a broken one never replaces a good
   * one); without the key yet, kept as it is and verified when used. */
  g_autofree char *key = ticket_key_b64(daemon);
  kcps_quota_statement_t st;
  if (key != NULL
      && !kcps_quota_statement_verify(key, statement, g_get_real_time() / G_USEC_PER_SEC, &st,
                                      &error)) {
    g_warning("the server's quota statement for %s does not verify: %s", email,
              error->message);
    return;
  }
  g_autofree char *path = statement_path(daemon, email);
  if (!g_file_set_contents_full(path, statement, -1,
                                G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                0600, &error))
    g_warning("cannot keep the quota statement of %s: %s", email, error->message);
}

/* The offline rule: the cached statement, less what this kcpsd printed
 * since it was signed. An expired, missing or unverifiable statement
 * allows the release (the server reconciles when the records arrive). */
static bool check_offline(kcps_daemon_t *daemon, const char *email, gint64 need, bool color,
                          const char *why, char **message)
{
  g_autofree char *path = statement_path(daemon, email);
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *key = ticket_key_b64(daemon);
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  kcps_quota_statement_t st;
  if (!g_file_get_contents(path, &text, NULL, &error)) {
    g_message("quota of %s: the server cannot be reached (%s) and no quota statement is kept; "
              "release allowed, the server reconciles", email, why);
    return true;
  }
  g_strchomp(text);
  if (key == NULL) {
    g_message("quota of %s: the server cannot be reached (%s) and its key is not known; "
              "release allowed, the server reconciles", email, why);
    return true;
  }
  if (!kcps_quota_statement_verify(key, text, now, &st, &error)) {
    g_message("quota of %s: the server cannot be reached (%s) and the kept quota statement "
              "is unusable (%s); release allowed, the server reconciles", email, why,
              error->message);
    return true;
  }
  if (g_ascii_strcasecmp(st.user, email) != 0 || now < st.start || now >= st.end) {
    g_message("quota of %s: the server cannot be reached (%s) and the kept quota statement "
              "is for another account or month; release allowed, the server reconciles",
              email, why);
    return true;
  }
  gint64 extra_color = 0;
  gint64 extra = kcps_usage_outbox_pages_since(daemon->usage_outbox, email, st.iat,
                                               &extra_color);
  gint64 left = kcps_quota_statement_left(&st, color, extra, extra_color);
  /* "colour" only when the colour limit is the one that binds. */
  gint64 left_total = kcps_quota_statement_left(&st, false, extra, extra_color);
  const char *kind = color && left >= 0 && (left_total < 0 || left < left_total) ? "colour " : "";
  g_autoptr(GDateTime) signed_at = g_date_time_new_from_unix_utc(st.iat);
  g_autofree char *at = g_date_time_format(signed_at, "%Y-%m-%dT%H:%M:%SZ");
  if (left >= 0 && need > left) {
    *message = g_strdup_printf(
        "quota exceeded (offline figure: the server cannot be reached, so this is the quota "
        "it signed at %s less what was printed here since): this job needs %" G_GINT64_FORMAT
        " %spages and %" G_GINT64_FORMAT " %spages are left (%s)",
        at, need, kind, left, kind, st.month);
    return false;
  }
  g_message("quota of %s: the server cannot be reached (%s); the offline figure (statement "
            "of %s) leaves %" G_GINT64_FORMAT " pages for %" G_GINT64_FORMAT ": allowed",
            email, why, at, left, need);
  return true;
}

static bool quota_check(void *data, uid_t uid, const kcps_job_t *job, int copies, bool color,
                        char **message)
{
  kcps_daemon_t *daemon = data;
  g_autofree char *email = NULL;
  char *token = NULL;
  /* No server or nobody logged in: no quota is known to apply. */
  if (daemon->server_url == NULL || !kcps__daemon_session_get(daemon, uid, &email, &token))
    return true;
  gint64 need = (gint64)MAX(job->pages, 1) * copies;
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "pages");
  json_builder_add_int_value(b, MAX(job->pages, 1));
  json_builder_set_member_name(b, "copies");
  json_builder_add_int_value(b, copies);
  json_builder_set_member_name(b, "color");
  json_builder_add_boolean_value(b, color);
  json_builder_end_object(b);
  g_autoptr(JsonNode) body = json_builder_get_root(b);
  kcps_http_opts_t opts;
  kcps__daemon_server_opts(daemon, &opts, token, CHECK_TIMEOUT_S);
  g_autofree char *url = api_url(daemon, "/api/v1/me/quota/check");
  g_autoptr(JsonNode) response = NULL;
  g_autoptr(GError) error = NULL;
  long status = 0;
  kcps_net_status_t net = kcps_http_call_json("POST", url, &opts, body, &status, &response,
                                              &error);
  bool allowed = true;
  if (net == KCPS_NET_OK) {
    refresh_statement(daemon, email, token);
  } else if (status == 409) {
    JsonObject *obj = response != NULL && JSON_NODE_HOLDS_OBJECT(response)
                        ? json_node_get_object(response) : NULL;
    const char *text = obj != NULL ? kcps_json_string(obj, "message") : NULL;
    *message = g_strdup(text != NULL ? text : error->message);
    allowed = false;
    /* The statement too, so that the offline figure is as fresh as can be. */
    refresh_statement(daemon, email, token);
  } else if (net == KCPS_NET_RETRY || net == KCPS_NET_AUTH || status == 0) {
    allowed = check_offline(daemon, email, need, color, error->message, message);
  } else {
    g_warning("quota check of uid %u: the server refused the check (%s); release allowed",
              (unsigned)uid, error->message);
  }
  kcps__secret_free(token);
  return allowed;
}

/* --- usage -------------------------------------------------------------------- */

static void usage_used(void *data, kcps_usage_record_t *rec)
{
  kcps_daemon_t *daemon = data;
  g_autofree char *email = NULL;
  /* No server, or nobody logged in to it now nor when the release started:
   * nobody to count it for (the record stays in usage.jsonl all the same).
   * A release resumed after a kcpsd restart may end before its user logs
   * in again: its record waits in the outbox for that account's login
   * (usage_post waits for a session of rec->user). */
  if (daemon->server_url == NULL)
    return;
  char *started_as = rec->user;
  if (!kcps__daemon_session_get(daemon, rec->uid, &email, NULL)) {
    if (started_as == NULL)
      return;
    email = g_strdup(started_as);
  }
  rec->user = email;
  g_autoptr(GError) error = NULL;
  if (!kcps_usage_outbox_add(daemon->usage_outbox, rec, &error))
    g_warning("release %s: %s", rec->key, error->message);
  rec->user = started_as;
}

/* The server account uid is logged in to (the releaser keeps it in its
 * journal for a release that outlives a kcpsd restart). */
static char *usage_account(void *data, uid_t uid)
{
  kcps_daemon_t *daemon = data;
  g_autofree char *email = NULL;
  if (daemon->server_url == NULL || !kcps__daemon_session_get(daemon, uid, &email, NULL))
    return NULL;
  return g_steal_pointer(&email);
}

static kcps_usage_post_t usage_post(void *data, const kcps_usage_record_t *rec)
{
  kcps_daemon_t *daemon = data;
  if (daemon->server_url == NULL)
    return KCPS_USAGE_POST_WAIT;
  if (rec->user == NULL) {
    /* Printed while not logged in to the server: nobody to count it for. */
    g_message("usage record %s: printed without a server login; not posted", rec->key);
    return KCPS_USAGE_POST_DROP;
  }
  g_autofree char *email = NULL;
  char *token = NULL;
  if (!kcps__daemon_session_get(daemon, rec->uid, &email, &token))
    return KCPS_USAGE_POST_WAIT;
  if (g_ascii_strcasecmp(email, rec->user) != 0) {
    kcps__secret_free(token);
    return KCPS_USAGE_POST_WAIT;
  }
  g_autoptr(JsonNode) body = kcps_usage_record_body(rec);
  kcps_http_opts_t opts;
  kcps__daemon_server_opts(daemon, &opts, token, SERVER_TIMEOUT_S);
  g_autofree char *url = api_url(daemon, "/api/v1/usage");
  g_autoptr(JsonNode) response = NULL;
  g_autoptr(GError) error = NULL;
  long status = 0;
  kcps_net_status_t net = kcps_http_call_json("POST", url, &opts, body, &status, &response,
                                              &error);
  kcps_usage_post_t result;
  if (status == 200 || status == 201) {
    g_info("usage record %s taken by the server (%ld)", rec->key, status);
    kcps__events_emit(daemon, rec->uid, "quota", NULL); /* the server counted it */
    result = KCPS_USAGE_POST_DONE;
  } else if (net == KCPS_NET_AUTH) {
    kcps__secret_free(kcps__daemon_session_drop(daemon, rec->uid, token));
    g_message("the server refused the session of uid %u; it must log in again",
              (unsigned)rec->uid);
    result = KCPS_USAGE_POST_WAIT;
  } else if (status == 409) {
    g_warning("usage record %s dropped: the server has its key for another record (%s)",
              rec->key, error->message);
    result = KCPS_USAGE_POST_DROP;
  } else if (status >= 400 && status < 500 && status != 429) {
    g_warning("usage record %s dropped: the server refused it (%ld: %s)", rec->key, status,
              error->message);
    result = KCPS_USAGE_POST_DROP;
  } else {
    g_message("usage record %s: cannot post it now (%s); kept, will retry", rec->key,
           error != NULL ? error->message : "no answer");
    result = KCPS_USAGE_POST_RETRY;
  }
  kcps__secret_free(token);
  return result;
}

bool kcps__usage_start(kcps_daemon_t *daemon, GError **error)
{
  g_autofree char *path = g_build_filename(daemon->state_dir, "usage-outbox.jsonl", NULL);
  daemon->usage_outbox = kcps_usage_outbox_open(path, error);
  if (daemon->usage_outbox == NULL)
    return false;
  kcps_release_hooks_t hooks = {.check = quota_check, .used = usage_used,
                                .account = usage_account, .data = daemon};
  kcps_releaser_set_hooks(daemon->releaser, &hooks);
  kcps_usage_outbox_start(daemon->usage_outbox, usage_post, daemon, RETRY_FIRST_MS,
                          RETRY_MAX_MS);
  return true;
}

void kcps__usage_kick(kcps_daemon_t *daemon)
{
  if (daemon->usage_outbox != NULL)
    kcps_usage_outbox_kick(daemon->usage_outbox);
}

void kcps__usage_stop(kcps_daemon_t *daemon)
{
  kcps_usage_outbox_free(daemon->usage_outbox);
  daemon->usage_outbox = NULL;
}
