/* The local API (5572, HTTP on loopback) for the tray and the CLI. Any local
 * account and any web page can reach a loopback port, so the caller is
 * whoever the kernel says owns the other end of the connection, and
 * requests a browser was tricked into sending (foreign Host or Origin) are
 * refused before anything else. */
#define G_LOG_DOMAIN "kcpsd"

#include "client/daemon-private.h"

#include <string.h>

#include "common/json-util.h"
#include "platform/platform.h"

/* Bounds for what a login carries; longer is not a real account. */
#define EMAIL_MAX_LEN 320
#define PASSWORD_MAX_LEN 1024

/* "localhost", "127.0.0.1" or "[::1]" at the start of text; returns what
 * follows, or NULL. */
static const char *skip_loopback_name(const char *text)
{
  static const char *const names[] = {"localhost", "127.0.0.1", "[::1]"};
  for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
    size_t len = strlen(names[i]);
    if (g_ascii_strncasecmp(text, names[i], len) == 0)
      return text + len;
  }
  return NULL;
}

/* Nothing, or ":" and 1 to 5 digits. */
static bool is_port_or_empty(const char *text)
{
  if (*text == '\0')
    return true;
  if (*text != ':')
    return false;
  size_t digits = strspn(text + 1, "0123456789");
  return digits >= 1 && digits <= 5 && text[1 + digits] == '\0';
}

bool kcps__local_host_ok(const char *host)
{
  const char *rest = host != NULL ? skip_loopback_name(host) : NULL;
  return rest != NULL && is_port_or_empty(rest);
}

/* --- routes ---------------------------------------------------------------- */

static void add_string_or_null(JsonBuilder *builder, const char *name, const char *value)
{
  json_builder_set_member_name(builder, name);
  if (value != NULL)
    json_builder_add_string_value(builder, value);
  else
    json_builder_add_null_value(builder);
}

static void respond_built(kcps_http_req_t *req, unsigned status, JsonBuilder *builder)
{
  g_autoptr(JsonNode) node = json_builder_get_root(builder);
  kcps_http_respond_json(req, status, node);
}

/* --- the quota shown ------------------------------------------------------ */

/* How long to wait for the server's quota before answering without it. */
#define QUOTA_TIMEOUT_S 5
/* After a failed read, the next /v1/status tries again no sooner than this
 * (a login, a release or a "quota" event try at once). */
#define QUOTA_RETRY_US (60 * G_USEC_PER_SEC)

/* uid's quota as the server last said (daemon->quotas). */
typedef struct quota_s {
  bool known;       /* the last read succeeded */
  bool stale;       /* read again at the next /v1/status */
  bool unlimited;
  gint64 pages;     /* the month's limit (all pages) */
  gint64 left;      /* pages left this month */
  char month[8];    /* "YYYY-MM" */
  gint64 tried_at;  /* monotonic us of the last read */
  guint marks;      /* how often it was marked stale */
} quota_t;

void kcps__local_quota_stale(kcps_daemon_t *daemon, uid_t uid)
{
  g_mutex_lock(&daemon->quota_lock);
  quota_t *quota = g_hash_table_lookup(daemon->quotas, GUINT_TO_POINTER(uid));
  if (quota != NULL) {
    quota->stale = true;
    quota->marks++;
  }
  g_mutex_unlock(&daemon->quota_lock);
}

static void quota_forget(kcps_daemon_t *daemon, uid_t uid)
{
  g_mutex_lock(&daemon->quota_lock);
  g_hash_table_remove(daemon->quotas, GUINT_TO_POINTER(uid));
  g_mutex_unlock(&daemon->quota_lock);
}

/* Reads GET /api/v1/me/quota with token into *quota (blocking). */
static void quota_fetch(kcps_daemon_t *daemon, uid_t uid, const char *token, quota_t *quota)
{
  kcps_http_opts_t opts;
  kcps__daemon_server_opts(daemon, &opts, token, QUOTA_TIMEOUT_S);
  g_autofree char *url = g_strconcat(daemon->server_url, "/api/v1/me/quota", NULL);
  g_autoptr(JsonNode) response = NULL;
  g_autoptr(GError) error = NULL;
  long status = 0;
  quota->known = false;
  if (kcps_http_call_json("GET", url, &opts, NULL, &status, &response, &error) != KCPS_NET_OK) {
    g_message("cannot read the quota of uid %u: %s", (unsigned)uid, error->message);
    return;
  }
  JsonObject *obj = response != NULL && JSON_NODE_HOLDS_OBJECT(response)
                      ? json_node_get_object(response) : NULL;
  if (obj == NULL || !json_object_has_member(obj, "remaining_pages"))
    return;
  JsonNode *left = json_object_get_member(obj, "remaining_pages");
  JsonNode *pages = json_object_get_member(obj, "quota_pages");
  const char *month = kcps_json_string(obj, "month");
  quota->unlimited = JSON_NODE_HOLDS_NULL(left);
  if (!quota->unlimited) {
    if (json_node_get_value_type(left) != G_TYPE_INT64 || pages == NULL
        || json_node_get_value_type(pages) != G_TYPE_INT64)
      return;
    quota->left = MAX(json_node_get_int(left), 0);
    quota->pages = json_node_get_int(pages);
  }
  g_strlcpy(quota->month, month != NULL && strlen(month) == 7 ? month : "", sizeof quota->month);
  quota->known = true;
}

/* uid's quota for /v1/status: read from the server when stale (or never
 * read, or a failed read a while ago); false when unknown. */
static bool quota_get(kcps_daemon_t *daemon, uid_t uid, quota_t *out)
{
  if (daemon->server_url == NULL)
    return false;
  g_autofree char *token = NULL;
  if (!kcps__daemon_session_get(daemon, uid, NULL, &token))
    return false;
  gint64 now = g_get_monotonic_time();
  g_mutex_lock(&daemon->quota_lock);
  quota_t *quota = g_hash_table_lookup(daemon->quotas, GUINT_TO_POINTER(uid));
  bool read = quota == NULL || quota->stale
              || (!quota->known && now - quota->tried_at >= QUOTA_RETRY_US);
  quota_t copy = quota != NULL ? *quota : (quota_t){0};
  g_mutex_unlock(&daemon->quota_lock);
  if (read) {
    /* Two status reads at once may both ask; the answers agree. */
    quota_fetch(daemon, uid, token, &copy);
    copy.stale = false;
    copy.tried_at = now;
    g_mutex_lock(&daemon->quota_lock);
    quota_t *stored = g_hash_table_lookup(daemon->quotas, GUINT_TO_POINTER(uid));
    /* Marked stale again while the server answered: the next read asks
     * again. */
    bool marked = stored != NULL && stored->marks != copy.marks;
    if (stored == NULL) {
      stored = g_new0(quota_t, 1);
      g_hash_table_insert(daemon->quotas, GUINT_TO_POINTER(uid), stored);
    }
    guint marks = stored->marks;
    *stored = copy;
    stored->marks = marks;
    stored->stale = marked;
    g_mutex_unlock(&daemon->quota_lock);
  }
  kcps__secret_free(g_steal_pointer(&token));
  *out = copy;
  return copy.known;
}

/* "quota": null (unknown: logged out, no server, offline) or
 * {"month","quota_pages","remaining_pages"}, both null when unlimited. */
static void add_quota(JsonBuilder *builder, kcps_daemon_t *daemon, uid_t uid)
{
  quota_t quota;
  json_builder_set_member_name(builder, "quota");
  if (!quota_get(daemon, uid, &quota)) {
    json_builder_add_null_value(builder);
    return;
  }
  json_builder_begin_object(builder);
  json_builder_set_member_name(builder, "month");
  json_builder_add_string_value(builder, quota.month);
  json_builder_set_member_name(builder, "quota_pages");
  if (quota.unlimited)
    json_builder_add_null_value(builder);
  else
    json_builder_add_int_value(builder, quota.pages);
  json_builder_set_member_name(builder, "remaining_pages");
  if (quota.unlimited)
    json_builder_add_null_value(builder);
  else
    json_builder_add_int_value(builder, quota.left);
  json_builder_end_object(builder);
}

static void get_status(kcps_daemon_t *daemon, kcps_http_req_t *req, uid_t uid)
{
  g_autofree char *user = kcps_platform_user_name(uid);
  if (user == NULL)
    user = g_strdup_printf("%u", (unsigned)uid);
  g_autofree char *email = NULL;
  bool logged_in = kcps__daemon_session_get(daemon, uid, &email, NULL);

  g_autoptr(JsonBuilder) builder = json_builder_new();
  json_builder_begin_object(builder);
  add_string_or_null(builder, "user", user);
  json_builder_set_member_name(builder, "logged_in");
  json_builder_add_boolean_value(builder, logged_in);
  add_string_or_null(builder, "email", email);
  add_string_or_null(builder, "server", daemon->server_url);
  kcps_spool_mode_source_t source;
  kcps_spool_mode_t mode = kcps__settings_effective(daemon, uid, &source);
  add_string_or_null(builder, "spool_mode", kcps__spool_mode_string(mode));
  add_string_or_null(builder, "spool_mode_source", kcps__spool_mode_source_string(source));
  add_quota(builder, daemon, uid);
  json_builder_end_object(builder);
  respond_built(req, 200, builder);
}

/* The caller's settings: her own choice (null: none), the organization's
 * default (null: not known), kcpsd's, and the effective mode with its
 * source. */
static void respond_settings(kcps_daemon_t *daemon, kcps_http_req_t *req, uid_t uid)
{
  kcps_spool_mode_source_t source;
  kcps_spool_mode_t mode = kcps__settings_effective(daemon, uid, &source);
  g_autoptr(JsonBuilder) builder = json_builder_new();
  json_builder_begin_object(builder);
  add_string_or_null(builder, "spool_mode",
                     kcps__spool_mode_string(kcps__settings_user_mode(daemon, uid)));
  add_string_or_null(builder, "effective_spool_mode", kcps__spool_mode_string(mode));
  add_string_or_null(builder, "spool_mode_source", kcps__spool_mode_source_string(source));
  add_string_or_null(builder, "organization_spool_mode",
                     kcps__spool_mode_string(kcps__settings_org_mode(daemon, uid)));
  add_string_or_null(builder, "kcpsd_spool_mode",
                     daemon->default_cloud_spool ? "cloud" : "local");
  json_builder_end_object(builder);
  respond_built(req, 200, builder);
}

static void get_settings(kcps_daemon_t *daemon, kcps_http_req_t *req, uid_t uid)
{
  respond_settings(daemon, req, uid);
}

/* PUT /v1/settings {"spool_mode": "local"|"cloud"|null}: the caller's own
 * choice (null: follow the organization). Jobs waiting here go the new way
 * at once: to the cloud, or registered for pulling. */
static void put_settings(kcps_daemon_t *daemon, kcps_http_req_t *req, uid_t uid)
{
  size_t len = 0;
  const char *body = kcps_http_req_body(req, &len);
  kcps_spool_mode_t mode = KCPS_SPOOL_MODE_UNSET;
  g_autoptr(GError) error = NULL;
  if (!kcps__settings_parse_put(body, len, &mode, &error)) {
    kcps_http_respond_error(req, 400, "bad_request", "%s", error->message);
    return;
  }
  if (mode == KCPS_SPOOL_MODE_CLOUD && daemon->server_url == NULL) {
    kcps_http_respond_error(req, 409, "conflict",
                            "the cloud spool needs a server (kcpsd runs without --server)");
    return;
  }
  kcps_spool_mode_t before = kcps__settings_effective(daemon, uid, NULL);
  if (!kcps__settings_set_user_mode(daemon, uid, mode, &error)) {
    g_warning("cannot store the settings of uid %u: %s", (unsigned)uid, error->message);
    kcps_http_respond_error(req, 500, "internal", "the settings cannot be stored");
    return;
  }
  kcps_spool_mode_t after = kcps__settings_effective(daemon, uid, NULL);
  g_message("uid %u set the spool mode to %s (effective: %s)", (unsigned)uid,
            mode != KCPS_SPOOL_MODE_UNSET ? kcps__spool_mode_string(mode) : "the organization's",
            kcps__spool_mode_string(after));
  if (after != before)
    kcps__sync_register_user(daemon, uid);
  kcps__events_emit(daemon, uid, "settings", NULL);
  respond_settings(daemon, req, uid);
}

/* A required, non-empty string member no longer than max, or NULL with an
 * error naming it. */
static const char *required_string(JsonObject *obj, const char *name, size_t max,
                                   GError **error)
{
  const char *value = kcps_json_string(obj, name);
  if (value == NULL) {
    g_set_error(error, KCPS_DAEMON_ERROR, KCPS_DAEMON_ERROR_BAD_REQUEST,
                "missing or non-string field: %s", name);
    return NULL;
  }
  if (*value == '\0' || strlen(value) > max) {
    g_set_error(error, KCPS_DAEMON_ERROR, KCPS_DAEMON_ERROR_BAD_REQUEST,
                "field %s must be 1 to %zu characters", name, max);
    return NULL;
  }
  return value;
}

bool kcps__local_parse_fields(const char *body, size_t len, const char *const *names,
                              const size_t *max, char **values, GError **error)
{
  if (body == NULL || len == 0) {
    g_set_error_literal(error, KCPS_DAEMON_ERROR, KCPS_DAEMON_ERROR_BAD_REQUEST,
                        "body is empty, a JSON object was expected");
    return false;
  }
  GError *local = NULL;
  g_autoptr(JsonNode) node = kcps_json_parse_object(body, (gssize)len, &local);
  if (node == NULL) {
    g_set_error(error, KCPS_DAEMON_ERROR, KCPS_DAEMON_ERROR_BAD_REQUEST, "%s", local->message);
    g_error_free(local);
    return false;
  }
  JsonObject *obj = json_node_get_object(node);
  size_t n = 0;
  bool ok = true;
  for (; names[n] != NULL; n++)
    values[n] = NULL;
  for (size_t i = 0; ok && i < n; i++) {
    const char *value = required_string(obj, names[i], max[i], error);
    if (value == NULL)
      ok = false;
    else
      values[i] = g_strdup(value);
  }
  /* Unknown fields are refused: a typo must not pass silently. */
  g_autoptr(GList) members = json_object_get_members(obj);
  for (GList *m = members; ok && m != NULL; m = m->next) {
    bool known = false;
    for (size_t i = 0; i < n; i++)
      known = known || strcmp(m->data, names[i]) == 0;
    if (!known) {
      g_set_error(error, KCPS_DAEMON_ERROR, KCPS_DAEMON_ERROR_BAD_REQUEST, "unknown field: %s",
                  (const char *)m->data);
      ok = false;
    }
  }
  /* Do not leave the secrets in the parsed tree's freed memory. */
  for (size_t i = 0; i < n; i++) {
    const char *value = kcps_json_string(obj, names[i]);
    if (value != NULL)
      explicit_bzero((char *)value, strlen(value));
  }
  if (!ok) {
    for (size_t i = 0; i < n; i++)
      g_clear_pointer(&values[i], kcps__secret_free);
  }
  return ok;
}

bool kcps__local_parse_login(const char *body, size_t len, char **email, char **password,
                             GError **error)
{
  static const char *const names[] = {"email", "password", NULL};
  static const size_t max[] = {EMAIL_MAX_LEN, PASSWORD_MAX_LEN};
  char *values[2];
  if (!kcps__local_parse_fields(body, len, names, max, values, error))
    return false;
  *email = values[0];
  *password = values[1];
  return true;
}

/* Reads the request's fields and wipes the raw body (it holds secrets); on
 * a bad body answers 400 and returns false. */
static bool read_fields(kcps_http_req_t *req, const char *const *names, const size_t *max,
                        char **values)
{
  g_autoptr(GError) error = NULL;
  size_t len = 0;
  const char *body = kcps_http_req_body(req, &len);
  bool parsed = kcps__local_parse_fields(body, len, names, max, values, &error);
  /* The request's buffer is ours to wipe until the handler returns. */
  if (body != NULL)
    explicit_bzero((char *)body, len);
  if (!parsed)
    kcps_http_respond_error(req, 400, "bad_request", "%s", error->message);
  return parsed;
}

/* A JSON object of names[i] = values[i] for the server; the values are
 * wiped and freed. */
static JsonNode *server_body(const char *const *names, char **values, bool desktop)
{
  g_autoptr(JsonBuilder) builder = json_builder_new();
  json_builder_begin_object(builder);
  for (size_t i = 0; names[i] != NULL; i++) {
    json_builder_set_member_name(builder, names[i]);
    json_builder_add_string_value(builder, values[i]);
    g_clear_pointer(&values[i], kcps__secret_free);
  }
  if (desktop) {
    json_builder_set_member_name(builder, "client");
    json_builder_add_string_value(builder, "desktop");
  }
  json_builder_end_object(builder);
  return json_builder_get_root(builder);
}

/* Wipes the string members of a body sent to the server. */
static void wipe_body(JsonNode *body)
{
  JsonObject *obj = json_node_get_object(body);
  g_autoptr(GList) members = json_object_get_members(obj);
  for (GList *m = members; m != NULL; m = m->next) {
    const char *value = kcps_json_string(obj, m->data);
    if (value != NULL)
      explicit_bzero((char *)value, strlen(value));
  }
}

typedef enum {
  AUTH_LOGIN,   /* password or code: 401 invalid_credentials / invalid_code */
  AUTH_REFRESH, /* 401 invalid_grant: the caller forgets its refresh token */
  AUTH_SSO,     /* 400 from the exchange names the step */
} auth_kind_t;

/* The organization's desktop idle limit (GET /api/v1/me/policy), for the
 * tray's automatic logout; -1 when the server did not say. */
static gint64 desktop_idle_minutes(kcps_daemon_t *daemon, const char *token)
{
  kcps_http_opts_t opts;
  kcps__daemon_server_opts(daemon, &opts, token, QUOTA_TIMEOUT_S);
  g_autofree char *url = g_strconcat(daemon->server_url, "/api/v1/me/policy", NULL);
  g_autoptr(JsonNode) response = NULL;
  g_autoptr(GError) error = NULL;
  long status = 0;
  if (kcps_http_call_json("GET", url, &opts, NULL, &status, &response, &error) != KCPS_NET_OK)
    return -1;
  JsonObject *obj = response != NULL && JSON_NODE_HOLDS_OBJECT(response)
                      ? json_node_get_object(response) : NULL;
  JsonNode *value = obj != NULL ? json_object_get_member(obj, "desktop_idle_logout_minutes")
                                : NULL;
  if (value == NULL || json_node_get_value_type(value) != G_TYPE_INT64)
    return -1;
  gint64 minutes = json_node_get_int(value);
  return minutes > 0 ? minutes : -1;
}

/* Passes the server's lock on: status {"error":"account_locked","message",
 * "retry_after","retry_at"} and Retry-After, as the server said them. */
static void respond_locked(kcps_http_req_t *req, unsigned status, const kcps__auth_t *auth)
{
  g_autoptr(GDateTime) when = g_date_time_new_from_unix_utc(auth->retry_at);
  g_autofree char *at = when != NULL ? g_date_time_format(when, "%Y-%m-%dT%H:%M:%SZ") : NULL;
  g_autofree char *message = g_strdup_printf("too many failed attempts; try again after %s",
                                             at != NULL ? at : "?");
  g_autoptr(JsonBuilder) builder = json_builder_new();
  json_builder_begin_object(builder);
  json_builder_set_member_name(builder, "error");
  json_builder_add_string_value(builder, "account_locked");
  json_builder_set_member_name(builder, "message");
  json_builder_add_string_value(builder, message);
  json_builder_set_member_name(builder, "retry_after");
  json_builder_add_int_value(builder, auth->retry_after);
  add_string_or_null(builder, "retry_at", at);
  json_builder_end_object(builder);
  char seconds[24];
  g_snprintf(seconds, sizeof seconds, "%" G_GINT64_FORMAT, auth->retry_after);
  kcps_http_req_add_header(req, "Retry-After", seconds);
  respond_built(req, status, builder);
}

/* Sends body to the server's route and answers the caller: the MFA step,
 * or the session (kcpsd keeps the access token; the refresh token goes to
 * the caller, once, and is not kept here). */
static void authenticate(kcps_daemon_t *daemon, kcps_http_req_t *req, uid_t uid,
                         const char *route, JsonNode *body, auth_kind_t kind,
                         const char *auth_error)
{
  g_autoptr(GError) error = NULL;
  long status = 0;
  kcps__auth_t auth;
  kcps_net_status_t net = kcps__sync_auth(daemon, route, body, &status, &auth, &error);
  wipe_body(body);
  switch (net) {
  case KCPS_NET_OK:
    break;
  case KCPS_NET_AUTH:
    /* The server's words never say whether the account exists (nor do
     * ours). A lock says when to try again (an unknown address locks as
     * an account does, so that tells nothing either). */
    if (kind == AUTH_LOGIN && auth.retry_at > 0) {
      respond_locked(req, status == 403 ? 403 : 401, &auth);
      return;
    }
    if (kind == AUTH_REFRESH)
      kcps_http_respond_error(req, 401, "invalid_grant",
                              "the session has ended: log in again (%s)", error->message);
    else
      kcps_http_respond_error(req, status == 403 ? 403 : 401, auth_error, "%s", error->message);
    return;
  case KCPS_NET_FATAL:
    if (status >= 400 && status < 500) {
      kcps_http_respond_error(req, 400, "bad_request", "the server refused the login: %s",
                              error->message);
      return;
    }
    G_GNUC_FALLTHROUGH;
  case KCPS_NET_RETRY:
    if (status == 503 || status == 429) {
      /* e.g. mail_unavailable: the server's message says to try later. */
      kcps_http_respond_error(req, (unsigned)status,
                              status == 503 ? "unavailable" : "too_many_requests",
                              "the server cannot log you in now: %s", error->message);
      return;
    }
    kcps_http_respond_error(req, 502, "server_unreachable", "cannot log in to the server: %s",
                            error->message);
    return;
  }

  g_autoptr(JsonBuilder) builder = json_builder_new();
  json_builder_begin_object(builder);
  if (auth.mfa_token != NULL) {
    json_builder_set_member_name(builder, "mfa_required");
    json_builder_add_boolean_value(builder, TRUE);
    json_builder_set_member_name(builder, "mfa_token");
    json_builder_add_string_value(builder, auth.mfa_token);
    json_builder_set_member_name(builder, "expires_in");
    json_builder_add_int_value(builder, auth.mfa_expires_in);
    json_builder_end_object(builder);
    kcps__auth_clear(&auth);
    respond_built(req, 200, builder);
    return;
  }

  char *old_token = kcps__daemon_session_set(daemon, uid, auth.email, auth.token);
  /* A new login replaces the one before: end that one on the server. A
   * refresh continues the same login (ending the old access token would end
   * its whole family, the new one too): the old token just expires. */
  if (old_token != NULL && kind != AUTH_REFRESH)
    kcps__sync_server_logout(daemon, old_token);
  else
    kcps__secret_free(old_token);
  g_message("uid %u %s the server", (unsigned)uid,
            kind == AUTH_REFRESH ? "resumed its session with" : "logged in to");
  /* The organization's default spool mode, before any job goes anywhere. */
  kcps__settings_fetch_org_mode(daemon, uid, auth.token);
  /* Jobs spooled while logged out are registered now, in the background. */
  kcps__sync_prefetch_key(daemon);
  kcps__sync_register_user(daemon, uid);
  quota_forget(daemon, uid); /* read afresh for this account */
  kcps__events_emit(daemon, uid, "session", NULL);

  add_string_or_null(builder, "email", auth.email);
  gint64 idle = desktop_idle_minutes(daemon, auth.token);
  if (idle > 0) {
    json_builder_set_member_name(builder, "desktop_idle_logout_minutes");
    json_builder_add_int_value(builder, idle);
  }
  json_builder_set_member_name(builder, "refresh_token");
  json_builder_add_string_value(builder, auth.refresh_token);
  json_builder_set_member_name(builder, "refresh_expires_in");
  json_builder_add_int_value(builder, auth.refresh_expires_in);
  json_builder_end_object(builder);
  kcps__auth_clear(&auth);
  respond_built(req, 200, builder);
}

/* POST /v1/login {"email","password"}: a desktop login. */
static void post_login(kcps_daemon_t *daemon, kcps_http_req_t *req, uid_t uid)
{
  static const char *const names[] = {"email", "password", NULL};
  static const size_t max[] = {EMAIL_MAX_LEN, PASSWORD_MAX_LEN};
  char *values[2];
  if (!read_fields(req, names, max, values))
    return;
  g_autoptr(JsonNode) body = server_body(names, values, true);
  authenticate(daemon, req, uid, "/api/v1/login", body, AUTH_LOGIN, "invalid_credentials");
}

/* POST /v1/login/mfa {"mfa_token","code"}: the email code step. */
static void post_login_mfa(kcps_daemon_t *daemon, kcps_http_req_t *req, uid_t uid)
{
  static const char *const names[] = {"mfa_token", "code", NULL};
  static const size_t max[] = {128, 16};
  char *values[2];
  if (!read_fields(req, names, max, values))
    return;
  g_autoptr(JsonNode) body = server_body(names, values, false);
  authenticate(daemon, req, uid, "/api/v1/login/mfa", body, AUTH_LOGIN, "invalid_code");
}

/* POST /v1/session {"refresh_token"}: resumes a login kept in the caller's
 * keyring; answers the rotated refresh token. */
static void post_session(kcps_daemon_t *daemon, kcps_http_req_t *req, uid_t uid)
{
  static const char *const names[] = {"refresh_token", NULL};
  static const size_t max[] = {256};
  char *values[1];
  if (!read_fields(req, names, max, values))
    return;
  g_autoptr(JsonNode) body = server_body(names, values, false);
  authenticate(daemon, req, uid, "/api/v1/token/refresh", body, AUTH_REFRESH, "invalid_grant");
}

/* POST /v1/login/sso {"code","code_verifier"}: the one-time code the
 * server's SSO callback sent to the caller's loopback redirect. */
static void post_login_sso(kcps_daemon_t *daemon, kcps_http_req_t *req, uid_t uid)
{
  static const char *const names[] = {"code", "code_verifier", NULL};
  static const size_t max[] = {512, 128};
  char *values[2];
  if (!read_fields(req, names, max, values))
    return;
  g_autoptr(JsonNode) body = server_body(names, values, false);
  authenticate(daemon, req, uid, "/api/v1/sso/exchange", body, AUTH_SSO, "sso_failed");
}

static void post_logout(kcps_daemon_t *daemon, kcps_http_req_t *req, uid_t uid)
{
  char *token = kcps__daemon_session_drop(daemon, uid, NULL);
  if (token != NULL) {
    g_message("uid %u logged out", (unsigned)uid);
    kcps__sync_server_logout(daemon, token);
    quota_forget(daemon, uid);
    kcps__events_emit(daemon, uid, "session", NULL);
  }
  kcps_http_respond_empty(req, 204);
}

static void get_jobs(kcps_daemon_t *daemon, kcps_http_req_t *req, uid_t uid)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) jobs = kcps_spool_list_jobs(daemon->spool, uid, &error);
  if (jobs == NULL) {
    g_warning("cannot list the jobs of uid %u: %s", (unsigned)uid, error->message);
    kcps_http_respond_error(req, 500, "internal", "the spool cannot be read");
    return;
  }
  kcps_spool_mode_t mode = kcps__settings_effective(daemon, uid, NULL);
  g_autoptr(JsonBuilder) builder = json_builder_new();
  json_builder_begin_object(builder);
  json_builder_set_member_name(builder, "jobs");
  json_builder_begin_array(builder);
  for (guint i = 0; i < jobs->len; i++) {
    const kcps_job_t *job = g_ptr_array_index(jobs, i);
    /* The spool answers by owner already; a second look costs nothing. */
    if (job->owner_uid != uid || job->state == KCPS_JOB_STATE_DELETED)
      continue;
    json_builder_begin_object(builder);
    add_string_or_null(builder, "id", job->id);
    add_string_or_null(builder, "name", job->name);
    json_builder_set_member_name(builder, "pages");
    json_builder_add_int_value(builder, job->pages);
    json_builder_set_member_name(builder, "size");
    json_builder_add_int_value(builder, job->size);
    add_string_or_null(builder, "state", kcps_job_state_string(job->state));
    json_builder_set_member_name(builder, "created");
    json_builder_add_int_value(builder, job->created);
    /* When retention deletes it here (unix seconds); null: kept. */
    json_builder_set_member_name(builder, "expires");
    if (daemon->retention_s > 0)
      json_builder_add_int_value(builder, job->created + daemon->retention_s);
    else
      json_builder_add_null_value(builder);
    add_string_or_null(builder, "server_id", job->server_id);
    /* Where the job goes: a job still waiting here follows its owner's mode;
     * one registered for pulling stays local. */
    bool cloud = job->state == KCPS_JOB_STATE_SPOOLED && mode == KCPS_SPOOL_MODE_CLOUD;
    gint64 done = 0, total = 0;
    bool uploading = kcps__upload_progress(daemon, job->id, &done, &total);
    add_string_or_null(builder, "spool", cloud || uploading ? "cloud" : "local");
    if (uploading) {
      json_builder_set_member_name(builder, "upload");
      json_builder_begin_object(builder);
      json_builder_set_member_name(builder, "done");
      json_builder_add_int_value(builder, done);
      json_builder_set_member_name(builder, "total");
      json_builder_add_int_value(builder, total);
      json_builder_end_object(builder);
    }
    /* The latest direct-print release of the job, if any (release.c). */
    JsonNode *release = kcps_releaser_latest_for_job(daemon->releaser, job->id);
    if (release != NULL) {
      json_builder_set_member_name(builder, "release");
      json_builder_add_value(builder, release);
    }
    json_builder_end_object(builder);
  }
  /* Jobs uploaded since kcpsd started: gone here, waiting on the server. */
  g_autoptr(GPtrArray) uploaded = kcps__upload_finished_jobs(daemon, uid);
  for (guint i = 0; i < uploaded->len; i++) {
    const kcps_job_t *job = g_ptr_array_index(uploaded, i);
    json_builder_begin_object(builder);
    add_string_or_null(builder, "id", job->id);
    add_string_or_null(builder, "name", job->name);
    json_builder_set_member_name(builder, "pages");
    json_builder_add_int_value(builder, job->pages);
    json_builder_set_member_name(builder, "size");
    json_builder_add_int_value(builder, job->size);
    add_string_or_null(builder, "state", "uploaded");
    json_builder_set_member_name(builder, "created");
    json_builder_add_int_value(builder, job->created);
    /* When retention deletes it here (unix seconds); null: kept. */
    json_builder_set_member_name(builder, "expires");
    if (daemon->retention_s > 0)
      json_builder_add_int_value(builder, job->created + daemon->retention_s);
    else
      json_builder_add_null_value(builder);
    add_string_or_null(builder, "server_id", job->server_id);
    add_string_or_null(builder, "spool", "cloud");
    json_builder_set_member_name(builder, "upload");
    json_builder_begin_object(builder);
    json_builder_set_member_name(builder, "done");
    json_builder_add_int_value(builder, job->size);
    json_builder_set_member_name(builder, "total");
    json_builder_add_int_value(builder, job->size);
    json_builder_end_object(builder);
    json_builder_end_object(builder);
  }
  json_builder_end_array(builder);
  json_builder_end_object(builder);
  respond_built(req, 200, builder);
}

/* The status and error code of a release error. */
static void respond_release_error(kcps_http_req_t *req, const GError *error)
{
  static const struct {
    int code;
    unsigned status;
    const char *name;
  } map[] = {
    {KCPS_RELEASE_ERROR_BAD_REQUEST, 400, "bad_request"},
    {KCPS_RELEASE_ERROR_NOT_FOUND, 404, "not_found"},
    {KCPS_RELEASE_ERROR_CONFLICT, 409, "conflict"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(map); i++) {
    if (g_error_matches(error, KCPS_RELEASE_ERROR, map[i].code)) {
      kcps_http_respond_error(req, map[i].status, map[i].name, "%s", error->message);
      return;
    }
  }
  kcps_http_respond_error(req, 500, "internal", "%s", error->message);
}

/* POST /v1/jobs/<id>/release: starts a direct print; 202 with the release. */
static void post_release(kcps_daemon_t *daemon, kcps_http_req_t *req, uid_t uid,
                         const char *job_id)
{
  size_t len = 0;
  const char *body = kcps_http_req_body(req, &len);
  kcps_release_opts_t opts;
  g_autoptr(JsonNode) keep = NULL;
  g_autoptr(GError) error = NULL;
  if (!kcps_release_parse_request(body, len, &opts, &keep, &error)) {
    respond_release_error(req, error);
    return;
  }
  g_autoptr(JsonNode) release = kcps_releaser_start(daemon->releaser, uid, job_id, &opts,
                                                    &error);
  if (release == NULL) {
    respond_release_error(req, error);
    return;
  }
  kcps_http_respond_json(req, 202, release);
}

static void get_release(kcps_daemon_t *daemon, kcps_http_req_t *req, uid_t uid,
                        const char *release_id)
{
  g_autoptr(JsonNode) release = kcps_releaser_get(daemon->releaser, uid, release_id);
  if (release == NULL) {
    kcps_http_respond_error(req, 404, "not_found", "no such release");
    return;
  }
  kcps_http_respond_json(req, 200, release);
}

/* DELETE /v1/jobs/<id>: the caller's job goes from the spool (document
 * removed, row marked deleted) and, when the server knows it (registered
 * for a pull, or uploaded), the sync worker withdraws it there: no MFP
 * lists it any more, and a cloud copy is deleted. */
static void delete_job(kcps_daemon_t *daemon, kcps_http_req_t *req, uid_t uid,
                       const char *job_id)
{
  g_autoptr(GError) error = NULL;
  kcps_job_t *job = kcps_spool_get_job(daemon->spool, job_id, NULL);
  bool mine = job != NULL && job->owner_uid == uid && job->state != KCPS_JOB_STATE_DELETED;
  bool known = job != NULL && job->server_id != NULL;
  kcps_job_free(job);
  if (!mine) {
    kcps_http_respond_error(req, 404, "not_found", "no such job");
    return;
  }
  g_autoptr(JsonNode) release = kcps_releaser_latest_for_job(daemon->releaser, job_id);
  const char *state = release != NULL && JSON_NODE_HOLDS_OBJECT(release)
                        ? kcps_json_string(json_node_get_object(release), "state") : NULL;
  static const char *const running[] = {"pending", "retrying", "sending", "printing"};
  for (size_t i = 0; state != NULL && i < G_N_ELEMENTS(running); i++) {
    if (strcmp(state, running[i]) == 0) {
      kcps_http_respond_error(req, 409, "conflict", "a release of job %s is running (%s)",
                              job_id, state);
      return;
    }
  }
  if (!kcps_spool_set_state(daemon->spool, job_id, KCPS_JOB_STATE_DELETED, &error)) {
    g_warning("cannot delete job %s of uid %u: %s", job_id, (unsigned)uid, error->message);
    kcps_http_respond_error(req, 500, "internal", "the job cannot be deleted");
    return;
  }
  g_message("uid %u deleted job %s", (unsigned)uid, job_id);
  if (known)
    kcps__sync_withdraw(daemon, uid);
  kcps__events_emit(daemon, uid, "job", job_id);
  kcps_http_respond_empty(req, 204);
}

/* GET /v1/events: the caller's change events as server-sent events, until
 * she hangs up or kcpsd stops (daemon-events.c). */
static void get_events(kcps_daemon_t *daemon, kcps_http_req_t *req, uid_t uid)
{
  g_autoptr(GError) error = NULL;
  kcps__events_sub_t *sub = kcps__events_subscribe(daemon->events, uid,
                                                   kcps_http_req_socket(req), &error);
  if (sub == NULL) {
    kcps_http_respond_error(req, 503, "unavailable", "%s", error->message);
    return;
  }
  kcps_http_respond_stream(req, 200, "text/event-stream", kcps__events_read, sub,
                           (GDestroyNotify)kcps__events_unsubscribe);
}

/* POST /v1/printers/forget {"printer": URI}: drops the pinned certificate. */
static void post_printer_forget(kcps_daemon_t *daemon, kcps_http_req_t *req, uid_t uid)
{
  (void)uid;
  g_autoptr(GError) error = NULL;
  size_t len = 0;
  const char *body = kcps_http_req_body(req, &len);
  g_autoptr(JsonNode) node = body != NULL && len > 0
                               ? kcps_json_parse_object(body, (gssize)len, &error) : NULL;
  const char *printer = node != NULL ? kcps_json_string(json_node_get_object(node), "printer")
                                     : NULL;
  if (printer == NULL) {
    kcps_http_respond_error(req, 400, "bad_request", "%s",
                            error != NULL ? error->message
                                          : "missing or non-string field: printer");
    return;
  }
  bool removed = false;
  if (!kcps_releaser_forget_printer(daemon->releaser, printer, &removed, &error)) {
    respond_release_error(req, error);
    return;
  }
  g_autoptr(JsonBuilder) builder = json_builder_new();
  json_builder_begin_object(builder);
  json_builder_set_member_name(builder, "forgotten");
  json_builder_add_boolean_value(builder, removed);
  json_builder_end_object(builder);
  respond_built(req, 200, builder);
}

/* A path "/PREFIX<id>SUFFIX" with one id segment (no '/', not empty, at
 * most 64 bytes): the id (g_free), or NULL. */
static char *path_id(const char *path, const char *prefix, const char *suffix)
{
  if (path == NULL || !g_str_has_prefix(path, prefix))
    return NULL;
  const char *start = path + strlen(prefix);
  size_t seg = strcspn(start, "/");
  if (seg == 0 || seg > 64 || strcmp(start + seg, suffix) != 0)
    return NULL;
  return g_strndup(start, seg);
}

typedef void (*route_fn_t)(kcps_daemon_t *daemon, kcps_http_req_t *req, uid_t uid);

static const struct {
  const char *method;
  const char *path;
  route_fn_t fn;
} routes[] = {
  {"GET", "/v1/status", get_status},
  {"POST", "/v1/login", post_login},
  {"POST", "/v1/logout", post_logout},
  {"POST", "/v1/login/mfa", post_login_mfa},
  {"POST", "/v1/login/sso", post_login_sso},
  {"GET", "/v1/sso", kcps__local_get_sso},
  {"POST", "/v1/session", post_session},
  {"GET", "/v1/jobs", get_jobs},
  {"GET", "/v1/settings", get_settings},
  {"PUT", "/v1/settings", put_settings},
  {"POST", "/v1/printers/forget", post_printer_forget},
  {"GET", "/v1/printers", kcps__local_get_printers},
  {"GET", "/v1/events", get_events},
};

static void handle_local(kcps_http_req_t *req, void *data)
{
  kcps_daemon_t *daemon = data;

  /* 1. Only requests addressed to loopback (stops DNS rebinding), and none
   * a web page sent: browsers put an Origin on every cross-origin fetch and
   * form POST, while the tray and the CLI never do — so even a page served
   * from another loopback port is refused. */
  const char *host = kcps_http_req_header(req, "Host");
  if (!kcps__local_host_ok(host)) {
    kcps_http_respond_error(req, 403, "forbidden_origin",
                            host != NULL ? "the Host header does not name loopback"
                                         : "the request has no Host header");
    return;
  }
  const char *origin = kcps_http_req_header(req, "Origin");
  if (origin != NULL) {
    kcps_http_respond_error(req, 403, "forbidden_origin",
                            "requests from web pages (with an Origin header) are refused");
    return;
  }

  /* 2. Who is calling, in the kernel's words. */
  uid_t uid = 0;
  g_autoptr(GError) error = NULL;
  if (!kcps_platform_socket_peer_uid(kcps_http_req_socket(req), &uid, &error)) {
    g_warning("local API: cannot tell who is calling: %s", error->message);
    kcps_http_respond_error(req, 403, "forbidden_user", "the calling account cannot be identified");
    return;
  }
  if (daemon->user_mode && uid != daemon->user_uid) {
    kcps_http_respond_error(req, 403, "forbidden_user",
                            "this kcpsd runs for one account (--user) and serves only it");
    return;
  }

  /* 3. The route. */
  const char *method = kcps_http_req_method(req);
  const char *path = kcps_http_req_path(req);
  if (kcps__local_document(daemon, req, uid))
    return;
  g_autofree char *job_id = path_id(path, "/v1/jobs/", "/release");
  g_autofree char *release_id = path_id(path, "/v1/releases/", "");
  g_autofree char *job_only = path_id(path, "/v1/jobs/", "");
  if (job_only != NULL) {
    if (g_strcmp0(method, "DELETE") != 0)
      kcps_http_respond_error(req, 405, "method_not_allowed", "%s is not allowed on %s", method,
                              path);
    else
      delete_job(daemon, req, uid, job_only);
    return;
  }
  if (job_id != NULL || release_id != NULL) {
    bool post = job_id != NULL;
    if (g_strcmp0(method, post ? "POST" : "GET") != 0)
      kcps_http_respond_error(req, 405, "method_not_allowed", "%s is not allowed on %s", method,
                              path);
    else if (post)
      post_release(daemon, req, uid, job_id);
    else
      get_release(daemon, req, uid, release_id);
    return;
  }
  bool path_known = false;
  for (size_t i = 0; i < G_N_ELEMENTS(routes); i++) {
    if (g_strcmp0(path, routes[i].path) != 0)
      continue;
    path_known = true;
    if (g_strcmp0(method, routes[i].method) == 0) {
      routes[i].fn(daemon, req, uid);
      return;
    }
  }
  if (path_known)
    kcps_http_respond_error(req, 405, "method_not_allowed", "%s is not allowed on %s", method,
                            path);
  else
    kcps_http_respond_error(req, 404, "not_found", "no such route: %s", path);
}

/* A release changed (release.c, on its worker): its job and the release
 * itself. (The quota follows when the server took the usage record:
 * release-server.c.) */
static void on_release_changed(uid_t uid, const char *job_id, const char *release_id,
                               const char *state, void *data)
{
  kcps_daemon_t *daemon = data;
  kcps__events_emit(daemon, uid, "release", release_id);
  kcps__events_emit(daemon, uid, "job", job_id);
  (void)state;
}

bool kcps__local_start(kcps_daemon_t *daemon, GError **error)
{
  if (daemon->releaser != NULL)
    kcps_releaser_set_changed(daemon->releaser, on_release_changed, daemon);
  /* Two servers rather than two listen entries of one: with port 0 both
   * families must end up on the same port, which is only known after the
   * first bind. */
  g_autofree char *listen4 = g_strdup_printf("127.0.0.1:%d", daemon->local_port);
  const char *listens4[] = {listen4, NULL};
  kcps_http_config_t config = {.listen = listens4, .max_body = 64 * 1024};
  daemon->local4 = kcps_http_server_new(&config, handle_local, daemon, error);
  if (daemon->local4 == NULL)
    return false;
  daemon->local_port = kcps_http_server_port(daemon->local4, 0);

  g_autofree char *listen6 = g_strdup_printf("[::1]:%d", daemon->local_port);
  const char *listens6[] = {listen6, NULL};
  config.listen = listens6;
  g_autoptr(GError) error6 = NULL;
  daemon->local6 = kcps_http_server_new(&config, handle_local, daemon, &error6);
  if (daemon->local6 == NULL)
    g_warning("local API on IPv4 loopback only: %s", error6->message);
  return true;
}
