/* The kcps-server test fixture (server-fixture.h). */
#include "server-fixture.h"

#include "common/http-client.h"
#include "common/json-util.h"

#include <curl/curl.h>
#include <glib/gstdio.h>
#include <string.h>

sfx_t sfx;

void
sfx_remove_tree(const char *path)
{
  GDir *dir = g_dir_open(path, 0, NULL);
  if (dir) {
    const char *name;
    while ((name = g_dir_read_name(dir))) {
      g_autofree char *child = g_build_filename(path, name, NULL);
      sfx_remove_tree(child);
    }
    g_dir_close(dir);
  }
  g_remove(path);
}

char *
sfx_credential(const char *prefix)
{
  const char *p = sfx.creds ? strstr(sfx.creds, prefix) : NULL;
  if (!p)
    return NULL;
  p += strlen(prefix);
  return g_strndup(p, strcspn(p, "\n"));
}

static void
start(void)
{
  g_autoptr(GError) error = NULL;
  sfx.server = kcps_server_new(&sfx.config, &error);
  ck_assert_msg(sfx.server != NULL, "server start failed: %s", error ? error->message : "?");
  ck_assert_int_gt(kcps_server_get_port(sfx.server), 0);
  g_free(sfx.ca);
  sfx.ca = g_strdup(kcps_server_get_cert_path(sfx.server));
}

void
sfx_setup(void)
{
  memset(&sfx, 0, sizeof sfx);
  sfx.tmp = g_dir_make_tmp("kcps-test-server-XXXXXX", NULL);
  ck_assert_ptr_nonnull(sfx.tmp);
  sfx.data = g_build_filename(sfx.tmp, "data", NULL);
  sfx.config.listen = "127.0.0.1:0";
  sfx.config.data_dir = sfx.data;
  sfx.config.demo = true;
  start();

  g_autofree char *path = g_build_filename(sfx.data, "demo-credentials.txt", NULL);
  ck_assert_msg(g_file_get_contents(path, &sfx.creds, NULL, NULL), "no %s", path);
  sfx.admin_pw = sfx_credential("admin@a.test password: ");
  sfx.alice_pw = sfx_credential("alice@a.test password: ");
  sfx.secret = sfx_credential("MFP-1 device secret: ");
  ck_assert_msg(sfx.admin_pw && sfx.alice_pw && sfx.secret, "credentials incomplete");
}

void
sfx_restart(void)
{
  kcps_server_free(sfx.server);
  sfx.server = NULL;
  start();
}

void
sfx_teardown(void)
{
  sfx_skew_clock(0);
  kcps_server_free(sfx.server);
  sfx_remove_tree(sfx.tmp);
  g_free(sfx.tmp);
  g_free(sfx.data);
  g_free(sfx.ca);
  g_free(sfx.admin_pw);
  g_free(sfx.alice_pw);
  g_free(sfx.secret);
  g_free(sfx.creds);
  memset(&sfx, 0, sizeof sfx);
}

long
sfx_call(const char *method, const char *path, const char *bearer, const char *body,
         JsonNode **out)
{
  g_autofree char *url = g_strconcat(kcps_server_get_url(sfx.server), path, NULL);
  kcps_http_opts_t opts = {.ca_file = sfx.ca, .bearer = bearer, .timeout_s = 30};
  g_autoptr(JsonNode) node = NULL;
  if (body) {
    node = json_from_string(body, NULL);
    ck_assert_msg(node != NULL, "test body does not parse: %s", body);
  }
  long status = 0;
  JsonNode *answer = NULL;
  g_autoptr(GError) error = NULL;
  kcps_http_call_json(method, url, &opts, node, &status, &answer, &error);
  ck_assert_msg(status != 0, "%s %s: no HTTP answer: %s", method, path,
                error ? error->message : "?");
  if (out)
    *out = answer;
  else if (answer)
    json_node_unref(answer);
  return status;
}

static size_t
collect(char *ptr, size_t size, size_t n, void *data)
{
  g_string_append_len(data, ptr, (gssize)(size * n));
  return size * n;
}

long
sfx_call_raw(const char *method, const char *path, const char *bearer, const char *body,
             gssize len, const char *content_type, const char *header, JsonNode **out)
{
  g_autofree char *url = g_strconcat(kcps_server_get_url(sfx.server), path, NULL);
  g_autofree char *auth = bearer ? g_strconcat("Authorization: Bearer ", bearer, NULL) : NULL;
  g_autofree char *ctype =
      g_strconcat("Content-Type: ", content_type ? content_type : "application/json", NULL);
  g_autoptr(GString) answer = g_string_new(NULL);
  CURL *curl = curl_easy_init();
  struct curl_slist *headers = curl_slist_append(NULL, ctype);
  if (auth)
    headers = curl_slist_append(headers, auth);
  if (header)
    headers = curl_slist_append(headers, header);
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CAINFO, sfx.ca);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  if (body) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)(len < 0 ? (gssize)strlen(body) : len));
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, answer);
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  ck_assert_msg(rc == CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(rc));
  if (out)
    *out = answer->len ? json_from_string(answer->str, NULL) : NULL;
  return status;
}

const char *
sfx_str(JsonNode *node, const char *name)
{
  if (!node || !JSON_NODE_HOLDS_OBJECT(node))
    return NULL;
  return kcps_json_string(json_node_get_object(node), name);
}

gint64
sfx_int(JsonNode *node, const char *name)
{
  gint64 v = -1;
  if (node && JSON_NODE_HOLDS_OBJECT(node))
    kcps_json_int(json_node_get_object(node), name, &v);
  return v;
}

JsonNode *
sfx_member(JsonNode *node, const char *name)
{
  if (!node || !JSON_NODE_HOLDS_OBJECT(node))
    return NULL;
  return json_object_get_member(json_node_get_object(node), name);
}

JsonArray *
sfx_array(JsonNode *node, const char *name)
{
  JsonNode *m = sfx_member(node, name);
  return m && JSON_NODE_HOLDS_ARRAY(m) ? json_node_get_array(m) : NULL;
}

char *
sfx_login(const char *email, const char *password)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "email");
  json_builder_add_string_value(b, email);
  json_builder_set_member_name(b, "password");
  json_builder_add_string_value(b, password);
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autofree char *body = json_to_string(root, FALSE);
  g_autoptr(JsonNode) answer = NULL;
  long status = sfx_call("POST", "/api/v1/login", NULL, body, &answer);
  ck_assert_msg(status == 200, "login %s: got %ld (%s), expected 200", email, status,
                sfx_str(answer, "message") ? sfx_str(answer, "message") : "-");
  const char *token = sfx_str(answer, "token");
  ck_assert_msg(token != NULL, "login %s: no token in the answer", email);
  return g_strdup(token);
}

char *
sfx_device_login(void)
{
  g_autofree char *body = g_strdup_printf("{\"device\":\"MFP-1\",\"secret\":\"%s\"}", sfx.secret);
  g_autoptr(JsonNode) answer = NULL;
  long status = sfx_call("POST", "/api/v1/device/login", NULL, body, &answer);
  ck_assert_msg(status == 200, "device login: got %ld, expected 200", status);
  return g_strdup(sfx_str(answer, "token"));
}

char *
sfx_pin_login(void)
{
  g_autofree char *device = sfx_device_login();
  g_autoptr(JsonNode) answer = NULL;
  long status = sfx_call("POST", "/api/v1/device/pin-login", device, "{\"pin\":\"4321\"}", &answer);
  ck_assert_msg(status == 200, "pin login: got %ld, expected 200", status);
  return g_strdup(sfx_str(answer, "token"));
}

void
sfx_expect_error(long status, JsonNode *answer, long want_status, const char *code,
                 const char *in_message)
{
  const char *msg = sfx_str(answer, "message");
  ck_assert_msg(status == want_status, "got %ld (%s), expected %ld", status, msg ? msg : "-",
                want_status);
  ck_assert_msg(g_strcmp0(sfx_str(answer, "error"), code) == 0,
                "error code: got %s, expected %s", sfx_str(answer, "error"), code);
  if (in_message)
    ck_assert_msg(msg && strstr(msg, in_message), "message \"%s\" should name \"%s\"",
                  msg ? msg : "(none)", in_message);
}

gint64
sfx_org_id(const char *name)
{
  g_mutex_lock(&sfx.server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(sfx.server, "SELECT id FROM orgs WHERE name = ?",
                                               NULL);
  gint64 id = 0;
  if (stmt) {
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    if (kcps__server_db_step(sfx.server, stmt, NULL) == SQLITE_ROW)
      id = sqlite3_column_int64(stmt, 0);
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&sfx.server->lock);
  return id;
}

char *
sfx_org_public_id(const char *name)
{
  g_mutex_lock(&sfx.server->lock);
  sqlite3_stmt *stmt =
      kcps__server_db_prepare(sfx.server, "SELECT public_id FROM orgs WHERE name = ?", NULL);
  char *id = NULL;
  if (stmt) {
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    if (kcps__server_db_step(sfx.server, stmt, NULL) == SQLITE_ROW)
      id = kcps__server_db_dup_text(stmt, 0);
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&sfx.server->lock);
  ck_assert_msg(id != NULL, "no organization named %s", name);
  return id;
}

gint64
sfx_add_org(const char *parent, const char *name, const char *type)
{
  gint64 parent_id = sfx_org_id(parent);
  ck_assert_msg(parent_id > 0, "no parent organization named %s", parent);
  g_autofree char *public_id = g_uuid_string_random();
  g_autoptr(GError) error = NULL;
  g_mutex_lock(&sfx.server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      sfx.server,
      "INSERT INTO orgs (name, type, parent_id, created, public_id) VALUES (?, ?, ?, ?, ?)",
      &error);
  gint64 id = 0;
  if (stmt) {
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, parent_id);
    sqlite3_bind_int64(stmt, 4, kcps__server_now());
    sqlite3_bind_text(stmt, 5, public_id, -1, SQLITE_STATIC);
    if (kcps__server_db_step(sfx.server, stmt, &error) == SQLITE_DONE)
      id = sqlite3_last_insert_rowid(sfx.server->db);
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&sfx.server->lock);
  ck_assert_msg(id > 0, "add org %s: %s", name, error ? error->message : "?");
  return id;
}

gint64
sfx_add_user(const char *org, const char *email, const char *role, const char *password)
{
  gint64 org_id = sfx_org_id(org);
  ck_assert_msg(org_id > 0, "no organization named %s", org);
  g_autoptr(GError) error = NULL;
  g_autofree char *hash = kcps__server_password_hash(password, &error);
  ck_assert_msg(hash != NULL, "hash: %s", error ? error->message : "?");
  g_autofree char *public_id = g_uuid_string_random();
  g_mutex_lock(&sfx.server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      sfx.server,
      "INSERT INTO users (public_id, org_id, email, name, role, password_hash, created)"
      " VALUES (?, ?, ?, ?, ?, ?, ?)",
      &error);
  gint64 id = 0;
  if (stmt) {
    sqlite3_bind_text(stmt, 1, public_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, org_id);
    sqlite3_bind_text(stmt, 3, email, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, email, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 5, role, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 6, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 7, kcps__server_now());
    if (kcps__server_db_step(sfx.server, stmt, &error) == SQLITE_DONE)
      id = sqlite3_last_insert_rowid(sfx.server->db);
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&sfx.server->lock);
  ck_assert_msg(id > 0, "add user %s: %s", email, error ? error->message : "?");
  return id;
}

void
sfx_skew_clock(gint64 seconds)
{
  __atomic_store_n(&kcps__server_clock_skew, seconds, __ATOMIC_RELAXED);
}
