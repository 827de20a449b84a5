/* Each OS user's spool mode (local or cloud) and where it comes from: her
 * own choice (kept in STATE/users/<uid>.json, 0600), else her
 * organization's default_spool_mode (from the server at login), else
 * kcpsd --spool-mode. */
#define G_LOG_DOMAIN "kcpsd"

#include "client/daemon-private.h"

#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>

#include "common/json-util.h"

#define SETTINGS_TIMEOUT_S 20

const char *kcps__spool_mode_string(kcps_spool_mode_t mode)
{
  switch (mode) {
  case KCPS_SPOOL_MODE_LOCAL: return "local";
  case KCPS_SPOOL_MODE_CLOUD: return "cloud";
  case KCPS_SPOOL_MODE_UNSET: break;
  }
  return NULL;
}

const char *kcps__spool_mode_source_string(kcps_spool_mode_source_t source)
{
  switch (source) {
  case KCPS_SPOOL_MODE_FROM_USER: return "user";
  case KCPS_SPOOL_MODE_FROM_ORGANIZATION: return "organization";
  case KCPS_SPOOL_MODE_FROM_KCPSD: break;
  }
  return "kcpsd";
}

static kcps_spool_mode_t mode_of(const char *text)
{
  if (g_strcmp0(text, "local") == 0)
    return KCPS_SPOOL_MODE_LOCAL;
  if (g_strcmp0(text, "cloud") == 0)
    return KCPS_SPOOL_MODE_CLOUD;
  return KCPS_SPOOL_MODE_UNSET;
}

static char *user_file(const kcps_daemon_t *daemon, uid_t uid)
{
  g_autofree char *name = g_strdup_printf("%u.json", (unsigned)uid);
  return g_build_filename(daemon->state_dir, "users", name, NULL);
}

/* The stored choice of uid (UNSET when none or unreadable); settings_lock held. */
static kcps_spool_mode_t load_locked(kcps_daemon_t *daemon, uid_t uid)
{
  void *cached = NULL;
  if (g_hash_table_lookup_extended(daemon->user_modes, GUINT_TO_POINTER(uid), NULL, &cached))
    return (kcps_spool_mode_t)GPOINTER_TO_INT(cached);
  kcps_spool_mode_t mode = KCPS_SPOOL_MODE_UNSET;
  g_autofree char *path = user_file(daemon, uid);
  g_autofree char *text = NULL;
  gsize len = 0;
  g_autoptr(GError) error = NULL;
  if (g_file_get_contents(path, &text, &len, &error)) {
    g_autoptr(JsonNode) node = kcps_json_parse_object(text, (gssize)len, &error);
    const char *value = node != NULL ? kcps_json_string(json_node_get_object(node),
                                                        "spool_mode") : NULL;
    mode = mode_of(value);
    if (node == NULL)
      g_warning("%s is not a settings file (%s); ignored", path, error->message);
  } else if (!g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
    g_warning("cannot read %s: %s", path, error->message);
  }
  g_hash_table_insert(daemon->user_modes, GUINT_TO_POINTER(uid), GINT_TO_POINTER(mode));
  return mode;
}

kcps_spool_mode_t kcps__settings_user_mode(kcps_daemon_t *daemon, uid_t uid)
{
  g_mutex_lock(&daemon->settings_lock);
  kcps_spool_mode_t mode = load_locked(daemon, uid);
  g_mutex_unlock(&daemon->settings_lock);
  return mode;
}

kcps_spool_mode_t kcps__settings_org_mode(kcps_daemon_t *daemon, uid_t uid)
{
  g_mutex_lock(&daemon->settings_lock);
  kcps_spool_mode_t mode = (kcps_spool_mode_t)GPOINTER_TO_INT(
      g_hash_table_lookup(daemon->org_modes, GUINT_TO_POINTER(uid)));
  g_mutex_unlock(&daemon->settings_lock);
  return mode;
}

kcps_spool_mode_t kcps__settings_resolve(kcps_spool_mode_t user, kcps_spool_mode_t org,
                                         bool kcpsd_cloud, kcps_spool_mode_source_t *source)
{
  kcps_spool_mode_source_t from = KCPS_SPOOL_MODE_FROM_KCPSD;
  kcps_spool_mode_t mode = kcpsd_cloud ? KCPS_SPOOL_MODE_CLOUD : KCPS_SPOOL_MODE_LOCAL;
  if (user != KCPS_SPOOL_MODE_UNSET) {
    from = KCPS_SPOOL_MODE_FROM_USER;
    mode = user;
  } else if (org != KCPS_SPOOL_MODE_UNSET) {
    from = KCPS_SPOOL_MODE_FROM_ORGANIZATION;
    mode = org;
  }
  if (source != NULL)
    *source = from;
  return mode;
}

kcps_spool_mode_t kcps__settings_effective(kcps_daemon_t *daemon, uid_t uid,
                                           kcps_spool_mode_source_t *source)
{
  g_mutex_lock(&daemon->settings_lock);
  kcps_spool_mode_t user = load_locked(daemon, uid);
  kcps_spool_mode_t org = (kcps_spool_mode_t)GPOINTER_TO_INT(
      g_hash_table_lookup(daemon->org_modes, GUINT_TO_POINTER(uid)));
  g_mutex_unlock(&daemon->settings_lock);
  /* Without a server there is nowhere to upload to. */
  kcps_spool_mode_t mode = kcps__settings_resolve(user, org, daemon->default_cloud_spool,
                                                  source);
  return daemon->server_url != NULL ? mode : KCPS_SPOOL_MODE_LOCAL;
}

void kcps__settings_apply(kcps_daemon_t *daemon)
{
  /* The sync worker picks upload or registration by daemon->cloud_spool; in
   * --user mode that is the one served account's effective mode. */
  if (!daemon->user_mode)
    return;
  bool cloud = kcps__settings_effective(daemon, daemon->user_uid, NULL) == KCPS_SPOOL_MODE_CLOUD;
  __atomic_store_n(&daemon->cloud_spool, cloud, __ATOMIC_SEQ_CST);
}

bool kcps__settings_set_user_mode(kcps_daemon_t *daemon, uid_t uid, kcps_spool_mode_t mode,
                                  GError **error)
{
  g_autofree char *path = user_file(daemon, uid);
  g_autofree char *dir = g_path_get_dirname(path);
  g_mutex_lock(&daemon->settings_lock);
  bool ok = true;
  if (mode == KCPS_SPOOL_MODE_UNSET) {
    if (g_unlink(path) != 0 && errno != ENOENT) {
      int saved = errno;
      g_set_error(error, KCPS_DAEMON_ERROR, KCPS_DAEMON_ERROR_IO, "cannot remove %s: %s", path,
                  g_strerror(saved));
      ok = false;
    }
  } else if (g_mkdir_with_parents(dir, 0700) != 0 || g_chmod(dir, 0700) != 0) {
    int saved = errno;
    g_set_error(error, KCPS_DAEMON_ERROR, KCPS_DAEMON_ERROR_IO, "cannot create folder %s: %s",
                dir, g_strerror(saved));
    ok = false;
  } else {
    g_autofree char *text = g_strdup_printf("{\"spool_mode\":\"%s\"}\n",
                                            kcps__spool_mode_string(mode));
    /* Temporary file, fsync, rename: a crash leaves the old or the new choice. */
    GError *local = NULL;
    if (!g_file_set_contents_full(path, text, -1,
                                  G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                  0600, &local)) {
      g_set_error(error, KCPS_DAEMON_ERROR, KCPS_DAEMON_ERROR_IO, "%s", local->message);
      g_error_free(local);
      ok = false;
    }
  }
  if (ok)
    g_hash_table_insert(daemon->user_modes, GUINT_TO_POINTER(uid), GINT_TO_POINTER(mode));
  g_mutex_unlock(&daemon->settings_lock);
  if (ok)
    kcps__settings_apply(daemon);
  return ok;
}

void kcps__settings_set_org_mode(kcps_daemon_t *daemon, uid_t uid, kcps_spool_mode_t mode)
{
  g_mutex_lock(&daemon->settings_lock);
  gpointer old = NULL;
  bool known = g_hash_table_lookup_extended(daemon->org_modes, GUINT_TO_POINTER(uid), NULL, &old);
  g_hash_table_insert(daemon->org_modes, GUINT_TO_POINTER(uid), GINT_TO_POINTER(mode));
  g_mutex_unlock(&daemon->settings_lock);
  kcps__settings_apply(daemon);
  if (!known || GPOINTER_TO_INT(old) != (int)mode)
    kcps__events_emit(daemon, uid, "settings", NULL);
}

void kcps__settings_fetch_org_mode(kcps_daemon_t *daemon, uid_t uid, const char *token)
{
  if (daemon->server_url == NULL)
    return;
  kcps_http_opts_t opts;
  kcps__daemon_server_opts(daemon, &opts, token, SETTINGS_TIMEOUT_S);
  g_autofree char *url = g_strconcat(daemon->server_url, "/api/v1/me/policy", NULL);
  g_autoptr(JsonNode) response = NULL;
  g_autoptr(GError) error = NULL;
  long status = 0;
  if (kcps_http_call_json("GET", url, &opts, NULL, &status, &response, &error) != KCPS_NET_OK) {
    /* The last value known (or none) stays. */
    g_message("cannot read the organization's spool mode of uid %u: %s", (unsigned)uid,
              error->message);
    return;
  }
  JsonObject *obj = response != NULL && JSON_NODE_HOLDS_OBJECT(response)
                      ? json_node_get_object(response) : NULL;
  /* Only a value an organization set counts (the server's built-in default
   * leaves kcpsd --spool-mode in force); an older server without the
   * setting: none either. */
  bool set = false;
  kcps_spool_mode_t mode = KCPS_SPOOL_MODE_UNSET;
  if (obj != NULL && kcps_json_bool(obj, "default_spool_mode_set", &set) && set)
    mode = mode_of(kcps_json_string(obj, "default_spool_mode"));
  kcps__settings_set_org_mode(daemon, uid, mode);
  g_info("uid %u: the organization's spool mode is %s", (unsigned)uid,
         mode != KCPS_SPOOL_MODE_UNSET ? kcps__spool_mode_string(mode) : "not set");
}

bool kcps__settings_parse_put(const char *body, size_t len, kcps_spool_mode_t *mode,
                              GError **error)
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
  g_autoptr(GList) members = json_object_get_members(obj);
  for (GList *m = members; m != NULL; m = m->next) {
    if (strcmp(m->data, "spool_mode") != 0) {
      g_autofree char *shown = g_utf8_make_valid(m->data, MIN((gssize)strlen(m->data), 64));
      g_set_error(error, KCPS_DAEMON_ERROR, KCPS_DAEMON_ERROR_BAD_REQUEST,
                  "unknown field \"%s\"", shown);
      return false;
    }
  }
  JsonNode *value = json_object_get_member(obj, "spool_mode");
  if (value == NULL) {
    g_set_error_literal(error, KCPS_DAEMON_ERROR, KCPS_DAEMON_ERROR_BAD_REQUEST,
                        "missing field \"spool_mode\"");
    return false;
  }
  kcps_spool_mode_t parsed = KCPS_SPOOL_MODE_UNSET;
  if (!JSON_NODE_HOLDS_NULL(value)) {
    const char *text = JSON_NODE_HOLDS_VALUE(value)
                           && json_node_get_value_type(value) == G_TYPE_STRING
                         ? json_node_get_string(value) : NULL;
    parsed = mode_of(text);
    if (parsed == KCPS_SPOOL_MODE_UNSET) {
      g_set_error_literal(error, KCPS_DAEMON_ERROR, KCPS_DAEMON_ERROR_BAD_REQUEST,
                          "field \"spool_mode\" must be \"local\", \"cloud\" or null");
      return false;
    }
  }
  *mode = parsed;
  return true;
}
