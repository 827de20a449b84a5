/* Bad input across the whole kcps-server API (issue 3, "Bad input"):
 * malformed JSON, wrong types, missing, unknown and overlong fields,
 * non-UTF-8, control characters, SQL meta-characters, path traversal and odd
 * ids, oversized bodies, wrong Content-Type, empty bodies. Each gets a 4xx
 * JSON error naming the field and the rule, and nothing stored changes: the
 * row count of every table and a checksum of the rows of the main tables are
 * the same before and after. A generic walk sends garbage to every route of
 * every feature table, so routes added later are covered too. */
#include "server-fixture.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define PIN_OK "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
#define SQL_META "'; DROP TABLE users; --"

/* What is stored ------------------------------------------------------- */

/* Tables whose every row is compared (sessions: all but the columns that
 * move on use, last_seen and expires). Every other table: its row count. */
static const char *const checked_tables[] = {"users", "jobs", "orgs", "devices", "job_logs",
                                             "tickets", "org_settings", NULL};

static gint
cmp_rows(gconstpointer a, gconstpointer b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
checksum_rows(GChecksum *sum, const char *sql)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(sfx.server, sql, NULL);
  ck_assert_msg(stmt != NULL, "cannot read: %s", sql);
  GPtrArray *rows = g_ptr_array_new_with_free_func(g_free);
  while (kcps__server_db_step(sfx.server, stmt, NULL) == SQLITE_ROW) {
    GString *row = g_string_new(NULL);
    for (int c = 0; c < sqlite3_column_count(stmt); c++) {
      const unsigned char *text = sqlite3_column_text(stmt, c);
      g_string_append_printf(row, "%d:%d:", sqlite3_column_type(stmt, c),
                             sqlite3_column_bytes(stmt, c));
      if (text)
        g_string_append_len(row, (const char *)text, sqlite3_column_bytes(stmt, c));
      g_string_append_c(row, '|');
    }
    g_ptr_array_add(rows, g_string_free(row, FALSE));
  }
  sqlite3_finalize(stmt);
  /* Row order is not part of what is stored. */
  g_ptr_array_sort(rows, cmp_rows);
  for (guint i = 0; i < rows->len; i++)
    g_checksum_update(sum, (const guchar *)g_ptr_array_index(rows, i), -1);
  g_ptr_array_unref(rows);
}

/* "table count [checksum]" lines for every table of the database; g_free. */
static char *
db_state(void)
{
  GPtrArray *tables = g_ptr_array_new_with_free_func(g_free);
  g_mutex_lock(&sfx.server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      sfx.server,
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
      " ORDER BY name",
      NULL);
  ck_assert_ptr_nonnull(stmt);
  while (kcps__server_db_step(sfx.server, stmt, NULL) == SQLITE_ROW)
    g_ptr_array_add(tables, kcps__server_db_dup_text(stmt, 0));
  sqlite3_finalize(stmt);

  GString *state = g_string_new(NULL);
  for (guint i = 0; i < tables->len; i++) {
    const char *t = g_ptr_array_index(tables, i);
    g_autofree char *sql = NULL;
    if (strcmp(t, "sessions") == 0)
      sql = g_strdup("SELECT token_hash, kind, user_id, device_id, created, client FROM sessions");
    else if (g_strv_contains(checked_tables, t))
      sql = g_strdup_printf("SELECT * FROM \"%s\"", t);
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
    if (sql)
      checksum_rows(sum, sql);
    g_string_append_printf(state, "%s:%s ", t, sql ? g_checksum_get_string(sum) + 56 : "");
  }
  g_mutex_unlock(&sfx.server->lock);
  /* The counts through the server's own helper (it takes the lock). */
  GString *counts = g_string_new(NULL);
  for (guint i = 0; i < tables->len; i++) {
    const char *t = g_ptr_array_index(tables, i);
    g_string_append_printf(counts, "%s=%" G_GINT64_FORMAT " ", t,
                           kcps__server_db_count_rows(sfx.server, t));
  }
  g_ptr_array_unref(tables);
  g_string_append(counts, state->str);
  g_string_free(state, TRUE);
  return g_string_free(counts, FALSE);
}

/* state without the audit log's row count: a refused request may be a
 * security event worth a line there (a failed SSO callback). */
static char *
without_audit(const char *state)
{
  g_autoptr(GRegex) re = g_regex_new("(^| )audit=[0-9]+ ", 0, 0, NULL);
  return g_regex_replace_literal(re, state, -1, 0, " ", 0, NULL);
}

/* 0 same, 1 only the audit log grew, 2 something else changed. */
static int
state_diff(const char *before, const char *now)
{
  if (strcmp(before, now) == 0)
    return 0;
  g_autofree char *a = without_audit(before);
  g_autofree char *b = without_audit(now);
  return strcmp(a, b) == 0 ? 1 : 2;
}

static void
expect_state(const char *before, const char *what)
{
  g_autofree char *after = db_state();
  ck_assert_msg(strcmp(before, after) == 0, "%s changed what is stored:\n before %s\n after  %s",
                what, before, after);
}

/* Calls --------------------------------------------------------------------- */

/* An answer's "error" and "message" checked against the case. */
static void
expect_refusal(const char *what, long status, JsonNode *answer, long want, const char *code,
               const char *in_message)
{
  const char *msg = sfx_str(answer, "message");
  ck_assert_msg(status == want, "%s: got HTTP %ld (%s), expected %ld", what, status,
                msg ? msg : "-", want);
  ck_assert_msg(g_strcmp0(sfx_str(answer, "error"), code) == 0, "%s: error code %s, expected %s",
                what, sfx_str(answer, "error"), code);
  ck_assert_msg(msg && g_utf8_validate(msg, -1, NULL), "%s: no readable message", what);
  if (in_message)
    ck_assert_msg(strstr(msg, in_message), "%s: message \"%s\" should name \"%s\"", what, msg,
                  in_message);
}

static size_t
collect(char *ptr, size_t size, size_t n, void *data)
{
  g_string_append_len(data, ptr, (gssize)(size * n));
  return size * n;
}

/* A request with the path sent as is (no ../ folding by curl) and full
 * control over headers (NULL content_type: none at all); *out the answer
 * parsed when JSON. */
/* Set around calls whose refusal may be a closed connection. */
static bool close_is_refusal;

static long
call_exact(const char *method, const char *path, const char *bearer, const char *body,
           gssize len, const char *content_type, bool chunked, JsonNode **out)
{
  g_autofree char *url = g_strconcat(kcps_server_get_url(sfx.server), path, NULL);
  g_autofree char *auth = bearer ? g_strconcat("Authorization: Bearer ", bearer, NULL) : NULL;
  g_autofree char *ctype =
      content_type ? g_strconcat("Content-Type: ", content_type, NULL) : g_strdup("Content-Type:");
  g_autoptr(GString) answer = g_string_new(NULL);
  CURL *curl = curl_easy_init();
  struct curl_slist *headers = curl_slist_append(NULL, ctype);
  if (auth)
    headers = curl_slist_append(headers, auth);
  if (chunked)
    headers = curl_slist_append(headers, "Transfer-Encoding: chunked");
  /* A large body waits for the go-ahead: a refusal (413) then comes before
   * it is sent, not in the middle of sending. */
  if (body && (len < 0 ? strlen(body) : (size_t)len) > 16 * 1024)
    headers = curl_slist_append(headers, "Expect: 100-continue");
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(curl, CURLOPT_CAINFO, sfx.ca);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  if (body) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    if (!chunked)
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                       (curl_off_t)(len < 0 ? (gssize)strlen(body) : len));
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, answer);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  /* A server may refuse an oversized request by answering and closing
   * while the client still sends: where the caller allows it, that counts
   * as a refusal (status 0), not a test failure. */
  bool closed = rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING;
  if (closed && close_is_refusal) {
    if (out)
      *out = NULL;
    return status;
  }
  ck_assert_msg(rc == CURLE_OK, "%s %.200s: %s", method, path, curl_easy_strerror(rc));
  if (out)
    *out = answer->len ? json_from_string(answer->str, NULL) : NULL;
  return status;
}

/* Bodies -------------------------------------------------------------------- */

/* A JSON string value: "@A<n>" is n letters a, "@E<n>" an email address of n
 * bytes, anything else is JSON text as is. */
static JsonNode *
value_node(const char *spec)
{
  if (g_str_has_prefix(spec, "@A") || g_str_has_prefix(spec, "@E")) {
    size_t n = (size_t)g_ascii_strtoull(spec + 2, NULL, 10);
    char *s = g_malloc(n + 1);
    memset(s, 'a', n);
    s[n] = '\0';
    if (spec[1] == 'E' && n >= 7)
      memcpy(s + n - 7, "@a.test", 7);
    JsonNode *node = json_node_new(JSON_NODE_VALUE);
    json_node_set_string(node, s);
    g_free(s);
    return node;
  }
  JsonNode *node = json_from_string(spec, NULL);
  ck_assert_msg(node != NULL, "test value does not parse: %s", spec);
  return node;
}

/* base with member field set to value (NULL: removed); g_free. */
static char *
mutate(const char *base, const char *field, const char *value)
{
  g_autoptr(JsonNode) root = json_from_string(base, NULL);
  ck_assert_msg(root && JSON_NODE_HOLDS_OBJECT(root), "test base does not parse: %s", base);
  JsonObject *obj = json_node_get_object(root);
  if (value)
    json_object_set_member(obj, field, value_node(value));
  else
    json_object_remove_member(obj, field);
  return json_to_string(root, FALSE);
}

/* One field broken one way, and what the refusal must say. */
typedef struct {
  const char *field;
  const char *value;     /* JSON text (or @A/@E), NULL: field left out */
  const char *rule;      /* a part of the message besides the field name */
} field_case_t;

/* A route with a valid body (before the case breaks it). */
typedef struct {
  const char *method;
  const char *path;
  const char *bearer;
  const char *base;
} route_case_t;

static void
run_field_cases(const route_case_t *route, const field_case_t *cases, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    const field_case_t *c = &cases[i];
    g_autofree char *body = mutate(route->base, c->field, c->value);
    g_autofree char *what = g_strdup_printf("%s %s with %s = %s", route->method, route->path,
                                            c->field, c->value ? c->value : "(missing)");
    g_autofree char *before = db_state();
    g_autoptr(JsonNode) answer = NULL;
    long status = sfx_call_raw(route->method, route->path, route->bearer, body, -1, NULL, NULL,
                               &answer);
    g_autofree char *quoted = g_strdup_printf("\"%s\"", c->field);
    expect_refusal(what, status, answer, 400, "bad_request", quoted);
    const char *msg = sfx_str(answer, "message");
    ck_assert_msg(strstr(msg, c->rule), "%s: message \"%s\" should say \"%s\"", what, msg, c->rule);
    expect_state(before, what);
  }
}

/* Garbage every JSON route must refuse the same way, whatever its fields:
 * the body as bytes, and the answer. */
typedef struct {
  const char *label;
  const char *body;
  gssize len;            /* -1: strlen */
  const char *ctype;     /* Content-Type; "-" for none at all */
  long status;
  const char *code;
  const char *in_message;
} body_case_t;

static const body_case_t body_cases[] = {
  {"empty body", "", 0, "application/json", 400, "bad_request", "empty"},
  {"malformed JSON", "{\"email\":", -1, "application/json", 400, "bad_request", "JSON"},
  {"not JSON at all", "email=a&password=b", -1, "application/json", 400, "bad_request", "JSON"},
  {"a JSON array", "[{\"email\":\"alice@a.test\"}]", -1, "application/json", 400, "bad_request",
   "object"},
  {"a JSON string", "\"alice@a.test\"", -1, "application/json", 400, "bad_request", "object"},
  {"a JSON number", "42", -1, "application/json", 400, "bad_request", "object"},
  {"JSON null", "null", -1, "application/json", 400, "bad_request", "object"},
  {"trailing data", "{}{\"x\":1}", -1, "application/json", 400, "bad_request", "follow"},
  {"a comment", "{/* hi */}", -1, "application/json", 400, "bad_request", "strict JSON"},
  {"single quotes", "{'pin':'4321'}", -1, "application/json", 400, "bad_request", "strict JSON"},
  {"a hex number", "{\"pages\":0x10}", -1, "application/json", 400, "bad_request", "decimal"},
  {"a duplicate member", "{\"pin\":\"1\",\"pin\":\"4321\"}", -1, "application/json", 400,
   "bad_request", "\"pin\" appears twice"},
  {"raw non-UTF-8 in a string", "{\"name\":\"caf\xe9\"}", -1, "application/json", 400,
   "bad_request", "UTF-8"},
  {"raw non-UTF-8 in a name", "{\"n\xff\xfe\":1}", -1, "application/json", 400, "bad_request",
   "UTF-8"},
  {"overlong UTF-8 form of '/'", "{\"name\":\"\xc0\xaf\"}", -1, "application/json", 400,
   "bad_request", "UTF-8"},
  {"a NUL byte", "{\"name\":\"a\0b\"}", sizeof "{\"name\":\"a\0b\"}" - 1, "application/json", 400, "bad_request", "UTF-8"},
  {"\\u0000 in a string", "{\"name\":\"a\\u0000b\"}", -1, "application/json", 400, "bad_request",
   "\\u0000"},
  {"an unpaired surrogate", "{\"name\":\"\\ud800\"}", -1, "application/json", 400,
   "bad_request", "surrogate"},
  {"a raw control character", "{\"name\":\"a\tb\"}", -1, "application/json", 400, "bad_request",
   "control character"},
  {"nesting 40 deep", "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]"
   "]]]]]]]]]]]]]]]]}", -1, "application/json", 400, "bad_request", "deeper than 32"},
  {"Content-Type text/plain", "{}", -1, "text/plain", 415, "unsupported_media_type",
   "Content-Type"},
  {"Content-Type form", "{}", -1, "application/x-www-form-urlencoded", 415,
   "unsupported_media_type", "Content-Type"},
  {"no Content-Type", "{}", -1, "-", 415, "unsupported_media_type", "Content-Type"},
  {"charset latin1", "{}", -1, "application/json; charset=iso-8859-1", 415,
   "unsupported_media_type", "utf-8"},
};

/* Every body case against one route: the answer, and nothing stored changes. */
static void
run_body_cases(const char *method, const char *path, const char *bearer)
{
  for (size_t i = 0; i < G_N_ELEMENTS(body_cases); i++) {
    const body_case_t *c = &body_cases[i];
    g_autofree char *what = g_strdup_printf("%s %s, %s", method, path, c->label);
    g_autofree char *before = db_state();
    g_autoptr(JsonNode) answer = NULL;
    const char *ctype = strcmp(c->ctype, "-") == 0 ? NULL : c->ctype;
    long status = call_exact(method, path, bearer, c->body, c->len, ctype, false, &answer);
    expect_refusal(what, status, answer, c->status, c->code, c->in_message);
    expect_state(before, what);
  }

  /* Over the 64 KiB limit: announced (Content-Length) and streamed (chunked). */
  size_t big = 64 * 1024 + 1;
  g_autofree char *huge = g_malloc(big + 1);
  memset(huge, ' ', big);
  huge[0] = '{';
  huge[big - 1] = '}';
  huge[big] = '\0';
  for (int chunked = 0; chunked < 2; chunked++) {
    g_autofree char *what =
        g_strdup_printf("%s %s, 64 KiB + 1 body%s", method, path, chunked ? " (chunked)" : "");
    g_autofree char *before = db_state();
    g_autoptr(JsonNode) answer = NULL;
    long status = call_exact(method, path, bearer, huge, (gssize)big, "application/json",
                             chunked != 0, &answer);
    expect_refusal(what, status, answer, 413, "too_large", NULL);
    expect_state(before, what);
  }
}

/* Fixture data ----------------------------------------------------------------- */

static char *
job_body(const char *client_job_id, const char *name)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "client_job_id");
  json_builder_add_string_value(b, client_job_id);
  json_builder_set_member_name(b, "name");
  json_builder_add_string_value(b, name);
  json_builder_set_member_name(b, "pages");
  json_builder_add_int_value(b, 2);
  json_builder_set_member_name(b, "size");
  json_builder_add_int_value(b, 2048);
  json_builder_set_member_name(b, "sha256");
  json_builder_add_string_value(b, SHA_A);
  json_builder_set_member_name(b, "pull_url");
  g_autofree char *url = g_strdup_printf("https://192.0.2.7:5571/jobs/%s/document", client_job_id);
  json_builder_add_string_value(b, url);
  json_builder_set_member_name(b, "pull_pin");
  json_builder_add_string_value(b, PIN_OK);
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  return json_to_string(root, FALSE);
}

/* Registers a job for alice; its server id (g_free). */
static char *
register_job(const char *alice, const char *client_job_id, const char *name)
{
  g_autofree char *body = job_body(client_job_id, name);
  g_autoptr(JsonNode) answer = NULL;
  long status = sfx_call("POST", "/api/v1/jobs", alice, body, &answer);
  ck_assert_msg(status == 201, "register %s: got %ld (%s), expected 201", client_job_id, status,
                sfx_str(answer, "message") ? sfx_str(answer, "message") : "-");
  return g_strdup(sfx_str(answer, "id"));
}

/* (a) The existing routes, field by field ----------------------------------- */

START_TEST(test_login_fields)
{
  static const field_case_t cases[] = {
    {"email", "5", "must be a string"},
    {"email", "null", "must be a string"},
    {"email", "[\"alice@a.test\"]", "must be a string"},
    {"email", "{}", "must be a string"},
    {"email", NULL, "missing field"},
    {"email", "\"ab\"", "3 to 254 bytes"},
    {"email", "@E255", "3 to 254 bytes"},
    {"email", "@E60000", "3 to 254 bytes"},
    {"email", "\"no-at-sign\"", "email address"},
    {"email", "\"a@b@c\"", "email address"},
    {"email", "\"alice @a.test\"", "email address"},
    {"email", "\"alice\\u0007@a.test\"", "control characters"},
    {"email", "\"alice\\u0085@a.test\"", "control characters"},
    {"email", "\"alice\\n@a.test\"", "control characters"},
    {"email", "\"" SQL_META "\"", "email address"},
    {"password", "1234", "must be a string"},
    {"password", "true", "must be a string"},
    {"password", NULL, "missing field"},
    {"password", "\"\"", "1 to 1024 bytes"},
    {"password", "@A1025", "1 to 1024 bytes"},
    {"client", "\"mobile\"", "\"web\" or \"desktop\""},
    {"client", "1", "must be a string"},
    {"role", "\"provider_admin\"", "unknown field"},
    {"user_id", "1", "unknown field"},
  };
  route_case_t route = {"POST", "/api/v1/login", NULL,
                        "{\"email\":\"alice@a.test\",\"password\":\"Wrong-pass-1\"}"};
  run_field_cases(&route, cases, G_N_ELEMENTS(cases));
  run_body_cases("POST", "/api/v1/login", NULL);

  /* None of that counted as a failed login: alice still gets in. */
  g_autofree char *token = sfx_login("alice@a.test", sfx.alice_pw);
}
END_TEST

START_TEST(test_job_fields)
{
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  static const field_case_t cases[] = {
    {"client_job_id", "5", "must be a string"},
    {"client_job_id", NULL, "missing field"},
    {"client_job_id", "\"\"", "1 to 128 bytes"},
    {"client_job_id", "@A129", "1 to 128 bytes"},
    {"client_job_id", "\"a/b\"", "letters, digits"},
    {"client_job_id", "\"../../etc/passwd\"", "letters, digits"},
    {"client_job_id", "\"..%2f..%2f\"", "letters, digits"},
    {"client_job_id", "\"1' OR '1'='1\"", "letters, digits"},
    {"client_job_id", "\"j\\u00e9\"", "letters, digits"},
    {"client_job_id", "\"a\\u0001b\"", "control characters"},
    {"name", "5", "must be a string"},
    {"name", "null", "must be a string"},
    {"name", NULL, "missing field"},
    {"name", "@A256", "at most 255 bytes"},
    {"name", "\"a\\u0001b\"", "control characters"},
    {"name", "\"a\\u007fb\"", "control characters"},
    {"name", "\"a\\u009bb\"", "control characters"},
    {"pages", "0", "from 1 to 1000000"},
    {"pages", "-1", "from 1 to 1000000"},
    {"pages", "1000001", "from 1 to 1000000"},
    {"pages", "9223372036854775807", "from 1 to 1000000"},
    {"pages", "\"3\"", "must be an integer"},
    {"pages", "2.5", "must be an integer"},
    {"pages", "1e3", "must be an integer"},
    {"pages", "true", "must be an integer"},
    {"pages", "null", "must be an integer"},
    {"pages", NULL, "missing field"},
    {"size", "-1", "from 0 to 1099511627776"},
    {"size", "1099511627777", "from 0 to 1099511627776"},
    {"size", "\"1\"", "must be an integer"},
    {"size", NULL, "missing field"},
    {"sha256", "\"abc\"", "64 to 64 bytes"},
    {"sha256", "\"gggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggg\"",
     "hexadecimal"},
    {"sha256", "@A65", "64 to 64 bytes"},
    {"sha256", "64", "must be a string"},
    {"sha256", NULL, "missing field"},
    {"pull_url", "\"http://192.0.2.7:5571/x\"", "https://"},
    {"pull_url", "\"javascript:alert(1)\"", "https://"},
    {"pull_url", "\"https://user:pw@192.0.2.7/x\"", "user information"},
    {"pull_url", "\"https://192.0.2.7/a b\"", "without spaces"},
    {"pull_url", "\"https://192.0.2.7/caf\\u00e9\"", "ASCII"},
    {"pull_url", "\"https:///x\"", "host"},
    {"pull_url", "@A2049", "9 to 2048 bytes"},
    {"pull_url", NULL, "missing field"},
    {"pull_pin", "\"sha256//x\"", "base64 of 32 bytes"},
    {"pull_pin", "\"md5//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\"", "sha256//"},
    {"pull_pin", "5", "must be a string"},
    {"pull_pin", NULL, "missing field"},
    {"owner", "\"admin@a.test\"", "unknown field"},
    {"state", "\"printed\"", "unknown field"},
    {"spool", "\"cloud\"", "unknown field"},
    {"id", "\"00000000-0000-4000-8000-000000000000\"", "unknown field"},
  };
  g_autofree char *base = job_body("input-1", "Report.pdf");
  route_case_t route = {"POST", "/api/v1/jobs", alice, base};
  run_field_cases(&route, cases, G_N_ELEMENTS(cases));
  run_body_cases("POST", "/api/v1/jobs", alice);
}
END_TEST

START_TEST(test_device_login_fields)
{
  static const field_case_t cases[] = {
    {"device", "5", "must be a string"},
    {"device", NULL, "missing field"},
    {"device", "\"\"", "1 to 128 bytes"},
    {"device", "@A129", "1 to 128 bytes"},
    {"device", "\"MFP\\u001b[2J\"", "control characters"},
    {"secret", "[]", "must be a string"},
    {"secret", NULL, "missing field"},
    {"secret", "\"\"", "1 to 256 bytes"},
    {"secret", "@A257", "1 to 256 bytes"},
    {"org", "\"Customer A\"", "unknown field"},
  };
  g_autofree char *base =
      g_strdup_printf("{\"device\":\"MFP-1\",\"secret\":\"%s\"}", "not-the-secret");
  route_case_t route = {"POST", "/api/v1/device/login", NULL, base};
  run_field_cases(&route, cases, G_N_ELEMENTS(cases));
  run_body_cases("POST", "/api/v1/device/login", NULL);
}
END_TEST

START_TEST(test_pin_login_fields)
{
  g_autofree char *device = sfx_device_login();
  static const field_case_t cases[] = {
    {"pin", "4321", "must be a string"},
    {"pin", NULL, "missing field"},
    {"pin", "\"123\"", "4 to 12 bytes"},
    {"pin", "\"1234567890123\"", "4 to 12 bytes"},
    {"pin", "\"12ab\"", "4 to 12 digits"},
    {"pin", "\" 4321\"", "4 to 12 digits"},
    {"pin", "\"\\u0664\\u0663\\u0662\\u0661\"", "4 to 12 digits"},
    {"user", "\"alice@a.test\"", "unknown field"},
  };
  route_case_t route = {"POST", "/api/v1/device/pin-login", device, "{\"pin\":\"4321\"}"};
  run_field_cases(&route, cases, G_N_ELEMENTS(cases));
  run_body_cases("POST", "/api/v1/device/pin-login", device);
}
END_TEST

START_TEST(test_job_log_fields)
{
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autofree char *job = register_job(alice, "log-1", "Log.pdf");
  g_autofree char *at_device = sfx_pin_login();
  g_autofree char *ticket_path = g_strdup_printf("/api/v1/device/jobs/%s/ticket", job);
  long status = sfx_call("POST", ticket_path, at_device, "{}", NULL);
  ck_assert_msg(status == 201, "ticket: got %ld, expected 201", status);

  static const field_case_t cases[] = {
    {"pages", "-1", "from 0 to 1000000"},
    {"pages", "1000001", "from 0 to 1000000"},
    {"pages", "\"1\"", "must be an integer"},
    {"pages", "1.5", "must be an integer"},
    {"pages", NULL, "missing field"},
    {"color_pages", "3", "must not exceed"},
    {"color_pages", "-1", "from 0 to 1000000"},
    {"color_pages", "false", "must be an integer"},
    {"duplex", "\"yes\"", "true or false"},
    {"duplex", "1", "true or false"},
    {"status", "\"done\"", "\"completed\" or \"failed\""},
    {"status", "\"COMPLETED\"", "\"completed\" or \"failed\""},
    {"status", "5", "must be a string"},
    {"status", NULL, "missing field"},
    {"device", "\"MFP-2\"", "unknown field"},
    {"user", "\"admin@a.test\"", "unknown field"},
  };
  g_autofree char *log_path = g_strdup_printf("/api/v1/device/jobs/%s/log", job);
  route_case_t route = {"POST", log_path, at_device,
                        "{\"pages\":2,\"color_pages\":0,\"duplex\":false,\"status\":\"completed\"}"};
  run_field_cases(&route, cases, G_N_ELEMENTS(cases));
  run_body_cases("POST", log_path, at_device);

  /* Still printable: nothing of the above was taken as a log. */
  g_autoptr(JsonNode) ok = NULL;
  status = sfx_call("POST", log_path, at_device, route.base, &ok);
  ck_assert_msg(status == 201, "a valid log after all that: got %ld, expected 201", status);
}
END_TEST

/* Free text keeps SQL meta-characters literally; fields with a form refuse
 * them; none of them reaches SQL as code. */
START_TEST(test_sql_meta)
{
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  gint64 users = kcps__server_db_count_rows(sfx.server, "users");
  static const char *const names[] = {
    SQL_META, "x\" OR \"1\"=\"1", "Robert'); DELETE FROM jobs; --", "%' OR 1=1 --",
    "\\'; SELECT sqlite_version(); --", "<script>alert(1)</script>",
  };
  for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
    g_autofree char *cjid = g_strdup_printf("sql-%zu", i);
    g_autofree char *id = register_job(alice, cjid, names[i]);
    (void)id;
  }
  g_autoptr(JsonNode) list = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/jobs", alice, NULL, &list), 200);
  JsonArray *jobs = sfx_array(list, "jobs");
  ck_assert_msg(jobs && json_array_get_length(jobs) == G_N_ELEMENTS(names),
                "jobs listed: got %u, expected %zu", jobs ? json_array_get_length(jobs) : 0,
                G_N_ELEMENTS(names));
  for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
    bool found = false;
    for (guint j = 0; j < json_array_get_length(jobs) && !found; j++)
      found = g_strcmp0(sfx_str(json_array_get_element(jobs, j), "name"), names[i]) == 0;
    ck_assert_msg(found, "job name \"%s\" was not stored literally", names[i]);
  }
  ck_assert_int_eq(kcps__server_db_count_rows(sfx.server, "users"), users);

  /* In credentials: no such account, no such device; nothing changes. */
  g_autoptr(JsonNode) a1 = NULL, a2 = NULL, a3 = NULL;
  long status = sfx_call("POST", "/api/v1/device/login", NULL,
                         "{\"device\":\"MFP-1' OR '1'='1\",\"secret\":\"x' OR '1'='1\"}", &a1);
  expect_refusal("device login with SQL", status, a1, 401, "invalid_credentials", NULL);
  g_autofree char *device = sfx_device_login();
  g_autofree char *state_dev = db_state();
  status = sfx_call("POST", "/api/v1/device/pin-login", device, "{\"pin\":\"1' OR '1'='1\"}", &a2);
  expect_refusal("PIN with SQL", status, a2, 400, "bad_request", "\"pin\"");
  expect_state(state_dev, "PIN with SQL");
  status = sfx_call("POST", "/api/v1/login", NULL,
                    "{\"email\":\"x'--@a.test\",\"password\":\"' OR '1'='1\"}", &a3);
  expect_refusal("login with SQL", status, a3, 401, "invalid_credentials", NULL);
  ck_assert_int_eq(kcps__server_db_count_rows(sfx.server, "users"), users);
  g_autofree char *hash = kcps__server_db_password_hash(sfx.server, "alice@a.test");
  ck_assert_ptr_nonnull(hash);
}
END_TEST

/* Path segments: traversal, encodings, NUL, odd and overlong ids. */
START_TEST(test_path_ids)
{
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autofree char *job = register_job(alice, "path-1", "Path.pdf");
  g_autofree char *at_device = sfx_pin_login();
  g_autofree char *upper = g_ascii_strup(job, -1);
  g_autofree char *long127 = g_strnfill(127, 'a');
  g_autofree char *long200 = g_strnfill(200, 'a');
  g_autofree char *long8k = g_strnfill(8000, 'a');
  g_autofree char *job_nul = g_strdup_printf("%s%%00", job);
  g_autofree char *job_slash = g_strdup_printf("%s%%2f..", job);
  g_autofree char *job_dot = g_strdup_printf("%s.", job);
  const char *ids[] = {
    "..", "%2e%2e", "%2E%2E", "..%2f..%2fetc%2fpasswd", "..%5c..%5cwindows", ".", "%00",
    "%2500", "%27%20OR%20%271%27%3D%271", "%22%3E%3Cscript%3E", "*", "%2A", "-1", "0",
    "1", "00000000-0000-0000-0000-000000000000", upper, job_nul, job_slash, job_dot, long127,
    long200, long8k,
  };
  g_autofree char *before = db_state();
  for (size_t i = 0; i < G_N_ELEMENTS(ids); i++) {
    const char *suffixes[] = {"ticket", "log"};
    for (size_t s = 0; s < G_N_ELEMENTS(suffixes); s++) {
      g_autofree char *path = g_strdup_printf("/api/v1/device/jobs/%s/%s", ids[i], suffixes[s]);
      g_autoptr(JsonNode) answer = NULL;
      long status = call_exact("POST", path, at_device,
                               "{\"pages\":1,\"status\":\"completed\"}", -1, "application/json",
                               false, &answer);
      const char *shown = strlen(ids[i]) > 60 ? "(a long id)" : ids[i];
      ck_assert_msg(status == 404 || status == 400, "POST .../jobs/%s/%s: got %ld, expected 404",
                    shown, suffixes[s], status);
      ck_assert_msg(answer && sfx_str(answer, "error"), "POST .../jobs/%s/%s: no JSON error",
                    shown, suffixes[s]);
    }
  }
  for (size_t i = 0; i < G_N_ELEMENTS(ids); i++) {
    g_autofree char *path = g_strdup_printf("/api/v1/jobs/%s", ids[i]);
    g_autoptr(JsonNode) answer = NULL;
    long status = call_exact("DELETE", path, alice, NULL, 0, "application/json", false, &answer);
    const char *shown = strlen(ids[i]) > 60 ? "(a long id)" : ids[i];
    ck_assert_msg(status == 404 || status == 400, "DELETE /api/v1/jobs/%s: got %ld, expected 404",
                  shown, status);
  }
  expect_state(before, "odd job ids");

  /* Traversal out of the API, sent without folding. */
  const char *paths[] = {
    "/api/v1/../../etc/passwd", "/api/v1/jobs/../../../data/kcps.db", "/../data/server.key",
    "/api/v1/%2e%2e/%2e%2e/data/kcps.db", "/api/v1/jobs/", "/api/v1//jobs", "/api/v1/jobs/.",
    "/data/pin-pepper", "/server.key", "/api/v1/jobs%00", "/api/v1/jobs%00.json",
    "/api/v1/login%00/../jobs", "/api/v1/jobs%2f", "/api/v1/JOBS", "/api/v1/jobs;x",
  };
  for (size_t i = 0; i < G_N_ELEMENTS(paths); i++) {
    g_autoptr(JsonNode) answer = NULL;
    long status = call_exact("GET", paths[i], alice, NULL, 0, "application/json", false, &answer);
    ck_assert_msg(status == 404 || status == 400,
                  "GET %s: got %ld, expected 404", paths[i], status);
    ck_assert_msg(answer && sfx_str(answer, "error"), "GET %s: no JSON error", paths[i]);
  }
  expect_state(before, "traversal paths");

  /* A path beyond what the server buffers: refused, not served. */
  g_autofree char *huge = g_strnfill(100000, 'a');
  g_autofree char *huge_path = g_strdup_printf("/api/v1/device/jobs/%s/ticket", huge);
  close_is_refusal = true;
  long status = call_exact("POST", huge_path, at_device, "{}", -1, "application/json", false, NULL);
  close_is_refusal = false;
  ck_assert_msg(status == 0 || (status >= 400 && status < 500),
                "a 100 kB path: got %ld, expected a 4xx or the connection closed", status);
  expect_state(before, "a 100 kB path");
}
END_TEST

/* Valid bodies still pass the stricter checks: charset, escapes, BOM,
 * multi-byte names at the limit. */
START_TEST(test_valid_edges)
{
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autofree char *body = job_body("edge-1", "Caf\xc3\xa9 \xe2\x80\x94 \xf0\x9f\x96\xa8.pdf");
  g_autoptr(JsonNode) a1 = NULL;
  long status = call_exact("POST", "/api/v1/jobs", alice, body, -1,
                           "Application/JSON; charset=\"UTF-8\"", false, &a1);
  ck_assert_msg(status == 201, "charset utf-8: got %ld (%s), expected 201", status,
                sfx_str(a1, "message") ? sfx_str(a1, "message") : "-");
  ck_assert_str_eq(sfx_str(a1, "name"), "Caf\xc3\xa9 \xe2\x80\x94 \xf0\x9f\x96\xa8.pdf");

  /* Escaped forms of the same characters, a surrogate pair, a BOM. */
  g_autofree char *escaped = g_strdup(
      "\xef\xbb\xbf{\"client_job_id\":\"edge-2\",\"name\":\"Caf\\u00e9 \\u2014 \\ud83d\\udda8.pdf\","
      "\"pages\":1,\"size\":0,\"sha256\":\"" SHA_A "\",\"pull_url\":\"https://h:5571/x\","
      "\"pull_pin\":\"" PIN_OK "\"}");
  g_autoptr(JsonNode) a2 = NULL;
  status = call_exact("POST", "/api/v1/jobs", alice, escaped, -1, "application/json", false, &a2);
  ck_assert_msg(status == 201, "escapes: got %ld (%s), expected 201", status,
                sfx_str(a2, "message") ? sfx_str(a2, "message") : "-");
  ck_assert_str_eq(sfx_str(a2, "name"), "Caf\xc3\xa9 \xe2\x80\x94 \xf0\x9f\x96\xa8.pdf");

  /* 255 bytes of two-byte characters less one, plus one byte: at the limit. */
  GString *name = g_string_new(NULL);
  for (int i = 0; i < 127; i++)
    g_string_append(name, "\xc3\xa9");
  g_string_append_c(name, 'x');
  g_autofree char *limit = job_body("edge-3", name->str);
  g_autoptr(JsonNode) a3 = NULL;
  status = sfx_call("POST", "/api/v1/jobs", alice, limit, &a3);
  ck_assert_msg(status == 201, "a 255-byte name: got %ld, expected 201", status);
  g_string_append_c(name, 'x');
  g_autofree char *over = job_body("edge-4", name->str);
  g_string_free(name, TRUE);
  g_autoptr(JsonNode) a4 = NULL;
  status = sfx_call("POST", "/api/v1/jobs", alice, over, &a4);
  expect_refusal("a 256-byte name", status, a4, 400, "bad_request", "\"name\"");

  /* The client kind the desktop sends. */
  g_autofree char *desktop = g_strdup_printf(
      "{\"email\":\"alice@a.test\",\"password\":\"%s\",\"client\":\"desktop\"}", sfx.alice_pw);
  g_autoptr(JsonNode) a5 = NULL;
  status = sfx_call("POST", "/api/v1/login", NULL, desktop, &a5);
  ck_assert_msg(status == 200, "login as desktop: got %ld, expected 200", status);
}
END_TEST

/* (b) Every route of every feature table ------------------------------------ */

static const kcps_server_route_t *const all_tables[] = {
  kcps__server_routes_core,    kcps__server_routes_policy,  kcps__server_routes_mfa,
  kcps__server_routes_orgs,    kcps__server_routes_reports, kcps__server_routes_devices,
  kcps__server_routes_oidc,
};
static const char *const table_names[] = {"core", "policy", "mfa", "orgs",
                                          "reports", "devices", "oidc"};

/* Routes that take no body and do not read one (yet): garbage is ignored
 * there, so the walk leaves them out. Each should refuse a non-empty body
 * other than {} as the devices routes do (kcps__server_body_none). */
static const char *const body_ignored[] = {
  NULL,
};

typedef struct {
  const char *label;
  const char *body;
  gssize len;
  const char *ctype;
} garbage_t;

/* The public id of a row of table found by a condition, or NULL. */
static char *
public_id_of(const char *sql)
{
  char *id = NULL;
  g_mutex_lock(&sfx.server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(sfx.server, sql, NULL);
  if (stmt && kcps__server_db_step(sfx.server, stmt, NULL) == SQLITE_ROW)
    id = kcps__server_db_dup_text(stmt, 0);
  sqlite3_finalize(stmt);
  g_mutex_unlock(&sfx.server->lock);
  return id;
}

/* The path of a route with a real id of the kind its "*" stands for (by the
 * segment before it), so that the route reaches its body check. */
static char *
route_path(const char *pattern, const char *job)
{
  const char *star = strchr(pattern, '*');
  if (!star)
    return g_strdup(pattern);
  g_autofree char *head = g_strndup(pattern, (gsize)(star - pattern));
  g_autofree char *id = NULL;
  if (g_str_has_suffix(head, "/orgs/"))
    id = sfx_org_public_id("Customer A");
  else if (g_str_has_suffix(head, "/users/"))
    id = public_id_of("SELECT public_id FROM users WHERE email = 'alice@a.test'");
  else if (g_str_has_suffix(head, "/jobs/"))
    id = g_strdup(job);
  else if (g_str_has_suffix(head, "/devices/"))
    id = public_id_of("SELECT public_id FROM devices WHERE name = 'MFP-1'");
  if (!id)
    id = g_uuid_string_random();
  return g_strconcat(head, id, star + 1, NULL);
}

START_TEST(test_walk_all_routes)
{
  /* Sessions of each kind, and users with the strongest roles, so routes get
   * past their access checks to their body checks. */
  sfx_add_user("RHQ", "root@rhq.test", "provider_admin", "Walk-Pass-1!");
  sfx_add_user("Sales A", "sales@sales.test", "provider_admin", "Walk-Pass-1!");
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autofree char *root = sfx_login("root@rhq.test", "Walk-Pass-1!");
  g_autofree char *sales = sfx_login("sales@sales.test", "Walk-Pass-1!");
  g_autofree char *job = register_job(alice, "walk-1", "Walk.pdf");
  g_autofree char *device = sfx_device_login();
  g_autofree char *at_device = sfx_pin_login();

  size_t big = 70 * 1024;
  g_autofree char *huge = g_malloc(big + 1);
  memset(huge, ' ', big);
  huge[0] = '{';
  huge[big - 1] = '}';
  huge[big] = '\0';
  g_autofree char *name10k = g_strnfill(10000, 'a');
  g_autofree char *long_name = g_strdup_printf("{\"name\":\"%s\"}", name10k);
  const garbage_t garbage[] = {
    {"not JSON", "this is not JSON", -1, "application/json"},
    {"an array", "[1,2,3]", -1, "application/json"},
    {"a string", "\"text\"", -1, "application/json"},
    {"non-UTF-8", "{\"name\":\"\xff\xfe\"}", -1, "application/json"},
    {"a NUL escape", "{\"name\":\"a\\u0000\"}", -1, "application/json"},
    {"70 KiB", huge, (gssize)big, "application/json"},
    {"an unknown field only", "{\"zz_unknown_zz\":1}", -1, "application/json"},
    {"trailing data", "{}{}", -1, "application/json"},
    {"text/plain", "{}", -1, "text/plain"},
    /* Names many routes know, with values none may take. */
    {"a number for a name", "{\"name\":5}", -1, "application/json"},
    {"a 10 kB name", long_name, -1, "application/json"},
    {"a control character in a name", "{\"name\":\"a\\u0001b\"}", -1, "application/json"},
    {"a C1 control in a name", "{\"name\":\"a\\u0085b\"}", -1, "application/json"},
    {"wrong types for common names",
     "{\"email\":7,\"password\":[],\"role\":null,\"name\":{},\"enabled\":\"yes\"}", -1,
     "application/json"},
  };

  g_autoptr(GString) offenders = g_string_new(NULL);
  size_t routes = 0, calls = 0;
  g_autofree char *before = db_state();
  for (size_t t = 0; t < G_N_ELEMENTS(all_tables); t++) {
    for (const kcps_server_route_t *r = all_tables[t]; r->method; r++) {
      if (strcmp(r->method, "POST") != 0 && strcmp(r->method, "PUT") != 0 &&
          strcmp(r->method, "PATCH") != 0)
        continue;
      g_autofree char *name = g_strdup_printf("%s %s", r->method, r->pattern);
      if (g_strv_contains(body_ignored, name))
        continue;
      routes++;
      const char *bearers[4] = {NULL};
      switch (r->need) {
      case KCPS_NEED_NONE:
        bearers[0] = NULL;
        break;
      case KCPS_NEED_DEVICE:
        bearers[0] = device;
        break;
      case KCPS_NEED_USER_DEVICE:
        bearers[0] = at_device;
        break;
      default:
        bearers[0] = admin;
        bearers[1] = root;
        bearers[2] = sales;
        bearers[3] = alice;
        break;
      }
      g_autofree char *path = route_path(r->pattern, job);
      for (size_t b = 0; b < G_N_ELEMENTS(bearers) && (b == 0 || bearers[b]); b++) {
        for (size_t g = 0; g < G_N_ELEMENTS(garbage); g++) {
          g_autoptr(JsonNode) answer = NULL;
          long status = call_exact(r->method, path, bearers[b], garbage[g].body, garbage[g].len,
                                   garbage[g].ctype, false, &answer);
          calls++;
          g_autofree char *now = db_state();
          int diff = state_diff(before, now);
          if (status < 400 || status >= 500 || !sfx_str(answer, "error") || diff == 2)
            g_string_append_printf(offenders, "\n  [%s] %s (session %zu) with %s: HTTP %ld %s%s",
                                   table_names[t], name, b, garbage[g].label, status,
                                   sfx_str(answer, "message") ? sfx_str(answer, "message")
                                                              : "(no JSON error)",
                                   diff == 2 ? "; CHANGED what is stored" : "");
          if (diff == 1)
            fprintf(stderr, "walk: [%s] %s with %s: audited\n", table_names[t], name,
                    garbage[g].label);
          if (diff) {
            g_free(before);
            before = g_steal_pointer(&now);
          }
        }
      }
    }
  }
  fprintf(stderr, "walk: %zu routes with a body, %zu calls\n", routes, calls);
  ck_assert_msg(routes >= 5, "the walk found only %zu routes with a body", routes);
  if (offenders->len)
    fprintf(stderr, "walk: offenders:%s\n", offenders->str);
  ck_assert_msg(offenders->len == 0, "routes that do not refuse garbage with a 4xx (%zu routes, "
                "%zu calls):%.3000s", routes, calls, offenders->str);
  /* The ignored ones must still exist (so this list does not go stale). */
  for (size_t i = 0; body_ignored[i]; i++) {
    bool found = false;
    for (size_t t = 0; t < G_N_ELEMENTS(all_tables) && !found; t++)
      for (const kcps_server_route_t *r = all_tables[t]; r->method && !found; r++) {
        g_autofree char *name = g_strdup_printf("%s %s", r->method, r->pattern);
        found = strcmp(name, body_ignored[i]) == 0;
      }
    ck_assert_msg(found, "body_ignored lists %s, which no table has", body_ignored[i]);
  }
}
END_TEST

/* Every GET route with bad query parameters (the names routes read today,
 * each given the same bad value): never a 5xx, never a change stored. A GET
 * may ignore parameters it does not read, so 2xx is fine. */
START_TEST(test_walk_queries)
{
  sfx_add_user("RHQ", "root@rhq.test", "provider_admin", "Walk-Pass-1!");
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autofree char *root = sfx_login("root@rhq.test", "Walk-Pass-1!");
  g_autofree char *job = register_job(alice, "walk-q", "Walk.pdf");
  g_autofree char *device = sfx_device_login();
  g_autofree char *at_device = sfx_pin_login();

  static const char *const names[] = {
    "limit", "offset", "page", "month", "from", "to", "since", "before", "org", "user",
    "state", "code", "error", "redirect_uri", "code_challenge", "code_challenge_method",
    "nonce", "q", "sort", "event", NULL,
  };
  g_autofree char *long_value = g_strnfill(800, 'x');
  const char *values[] = {
    "-1", "abc", "99999999999999999999999", "1.5", "%00", "%ff%fe", "%27%3B%20DROP%20TABLE%20users%3B%20--",
    "..%2f..%2fetc%2fpasswd", "2026-13", "0000-00", "%0d%0aSet-Cookie:%20x=1", "",
    long_value,
  };
  g_autoptr(GString) offenders = g_string_new(NULL);
  size_t routes = 0, calls = 0, audited = 0;
  g_autofree char *before = db_state();
  for (size_t t = 0; t < G_N_ELEMENTS(all_tables); t++) {
    for (const kcps_server_route_t *r = all_tables[t]; r->method; r++) {
      if (strcmp(r->method, "GET") != 0)
        continue;
      routes++;
      const char *bearer = r->need == KCPS_NEED_NONE           ? NULL
                           : r->need == KCPS_NEED_DEVICE       ? device
                           : r->need == KCPS_NEED_USER_DEVICE  ? at_device
                                                               : admin;
      g_autofree char *path = route_path(r->pattern, job);
      for (size_t v = 0; v < G_N_ELEMENTS(values); v++) {
        for (int who = 0; who < (bearer == admin ? 2 : 1); who++) {
          GString *url = g_string_new(path);
          for (size_t n = 0; names[n]; n++)
            g_string_append_printf(url, "%c%s=%s", n ? '&' : '?', names[n], values[v]);
          g_autoptr(JsonNode) answer = NULL;
          long status = call_exact("GET", url->str, who ? root : bearer, NULL, 0,
                                   "application/json", false, &answer);
          calls++;
          g_autofree char *now = db_state();
          int diff = state_diff(before, now);
          if (status >= 500 || status == 0 || diff == 2)
            g_string_append_printf(offenders, "\n  [%s] GET %s with %.40s: HTTP %ld %s%s",
                                   table_names[t], r->pattern, values[v], status,
                                   sfx_str(answer, "message") ? sfx_str(answer, "message") : "",
                                   diff == 2 ? "; CHANGED what is stored" : "");
          if (diff == 1)
            audited++;
          if (diff) {
            g_free(before);
            before = g_steal_pointer(&now);
          }
          g_string_free(url, TRUE);
        }
      }
    }
  }
  fprintf(stderr, "walk: %zu GET routes, %zu calls with bad queries, %zu audited\n", routes,
          calls, audited);
  if (offenders->len)
    fprintf(stderr, "walk: offenders:%s\n", offenders->str);
  ck_assert_msg(offenders->len == 0, "GET routes that fail on bad query parameters:%.3000s",
                offenders->str);
  (void)alice;
}
END_TEST

/* (c) The building blocks, without a server --------------------------------- */

typedef struct {
  const char *text;
  gssize len;
  const char *refusal; /* NULL: accepted */
} text_case_t;

START_TEST(test_json_text)
{
  static const text_case_t cases[] = {
    {"{}", -1, NULL},
    {" \t\r\n{ \"a\" : [ 1 , -0 , 0.5 , 1e10 , -1.5E-3 , true , false , null , \"x\" ] } \n", -1,
     NULL},
    {"\xef\xbb\xbf{}", -1, NULL},
    {"{\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"}", -1, NULL},
    {"{\"a\":{\"a\":1},\"b\":{\"a\":2}}", -1, NULL},
    {"[]", -1, NULL},
    {"", 0, "empty"},
    {"   ", -1, "a value was expected"},
    {"{", -1, "a member name"},
    {"{\"a\"}", -1, "':'"},
    {"{\"a\":}", -1, "a value was expected"},
    {"{\"a\":1,}", -1, "a member name"},
    {"[1,]", -1, "a value was expected"},
    {"[1 2]", -1, "',' or ']'"},
    {"{\"a\":1 \"b\":2}", -1, "',' or '}'"},
    {"{} {}", -1, "only white space"},
    {"{}x", -1, "only white space"},
    {"{\"a\":01}", -1, "leading zeros"},
    {"{\"a\":0x1}", -1, "leading zeros"},
    {"{\"a\":+1}", -1, "a value was expected"},
    {"{\"a\":.5}", -1, "a value was expected"},
    {"{\"a\":1.}", -1, "after the point"},
    {"{\"a\":1e}", -1, "exponent"},
    {"{\"a\":NaN}", -1, "a value was expected"},
    {"{\"a\":Infinity}", -1, "a value was expected"},
    {"{\"a\":tru}", -1, "a value was expected"},
    {"{'a':1}", -1, "double quotes"},
    {"{a:1}", -1, "double quotes"},
    {"{\"a\":1 // c\n}", -1, "',' or '}'"},
    {"{\"a\":\"x\ty\"}", -1, "control character"},
    {"{\"a\":\"x\ny\"}", -1, "control character"},
    {"{\"a\":\"\\x41\"}", -1, "unknown escape"},
    {"{\"a\":\"\\u12\"}", -1, "four hexadecimal"},
    {"{\"a\":\"\\u0000\"}", -1, "\\u0000"},
    {"{\"a\\u0000\":1}", -1, "\\u0000"},
    {"{\"a\":\"\\ud800\"}", -1, "high surrogate"},
    {"{\"a\":\"\\ud800\\u0041\"}", -1, "high surrogate"},
    {"{\"a\":\"\\udc00\"}", -1, "low surrogate"},
    {"{\"a\":\"unterminated}", -1, "not closed"},
    {"{\"a\":1,\"a\":2}", -1, "\"a\" appears twice"},
    {"{\"a\":1,\"\\u0061\":2}", -1, "\"a\" appears twice"},
    {"{\"\xc3\xa9\":1,\"\\u00e9\":2}", -1, "appears twice"},
    {"{\"a\":\"\xff\"}", -1, "not UTF-8"},
    {"{\"a\":\"\xed\xa0\x80\"}", -1, "not UTF-8"},
    {"{\"a\":\"x\0\"}", 8, "not UTF-8"},
    {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", -1, NULL},
    {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", -1, "deeper than 32"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    const text_case_t *c = &cases[i];
    size_t len = c->len < 0 ? strlen(c->text) : (size_t)c->len;
    g_autoptr(GError) error = NULL;
    bool ok = kcps__server_check_json_text(c->text, len, &error);
    g_autofree char *shown = g_strescape(c->text, NULL);
    if (!c->refusal) {
      ck_assert_msg(ok, "case %zu (%s): refused (%s), expected accepted", i, shown,
                    error ? error->message : "?");
    } else {
      ck_assert_msg(!ok, "case %zu (%s): accepted, expected refused (%s)", i, shown, c->refusal);
      ck_assert_msg(strstr(error->message, c->refusal), "case %zu (%s): \"%s\" should say \"%s\"",
                    i, shown, error->message, c->refusal);
    }
  }
}
END_TEST

START_TEST(test_content_type)
{
  static const struct {
    const char *value;
    bool ok;
  } cases[] = {
    {"application/json", true},
    {"APPLICATION/JSON", true},
    {"application/json; charset=utf-8", true},
    {"application/json;charset=UTF-8", true},
    {"application/json; charset=\"utf-8\"", true},
    {"application/json; charset=utf8", true},
    {"application/json; boundary=x", true},
    {NULL, false},
    {"", false},
    {"text/plain", false},
    {"text/json", false},
    {"application/jsonx", false},
    {"application/json-patch+json", false},
    {"multipart/form-data; boundary=x", false},
    {"application/json; charset=latin1", false},
    {"application/json; charset=utf-16", false},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(GError) error = NULL;
    bool ok = kcps__server_check_content_type(cases[i].value, &error);
    ck_assert_msg(ok == cases[i].ok, "Content-Type \"%s\": got %s, expected %s",
                  cases[i].value ? cases[i].value : "(none)", ok ? "accepted" : "refused",
                  cases[i].ok ? "accepted" : "refused");
    if (!ok)
      ck_assert_msg(strstr(error->message, "\"Content-Type\""), "message \"%s\" should name it",
                    error->message);
  }
}
END_TEST

START_TEST(test_field_helpers)
{
  g_autoptr(JsonNode) node = json_from_string(
      "{\"name\":\"Ann\",\"n\":7,\"flag\":true,\"kind\":\"b\",\"mail\":\"a@b.c\"}", NULL);
  JsonObject *obj = json_node_get_object(node);
  static const char *const known[] = {"name", "n", "flag", "kind", "mail", NULL};
  static const char *const kinds[] = {"a", "b", "c", NULL};
  g_autoptr(GError) error = NULL;
  ck_assert(kcps__server_check_fields(obj, known, &error));
  const char *s = NULL;
  gint64 v = 0;
  bool b = false;
  int k = -1;
  ck_assert(kcps__server_field_string(obj, "name", 1, 8, KCPS_TEXT_PLAIN, &s, &error));
  ck_assert_str_eq(s, "Ann");
  ck_assert(kcps__server_field_string(obj, "absent", 1, 8, KCPS_TEXT_OPTIONAL, &s, &error));
  ck_assert_ptr_null(s);
  ck_assert(kcps__server_field_int(obj, "n", true, 1, 10, 0, &v, &error));
  ck_assert_int_eq(v, 7);
  ck_assert(kcps__server_field_int(obj, "absent", false, 1, 10, 3, &v, &error));
  ck_assert_int_eq(v, 3);
  ck_assert(kcps__server_field_bool(obj, "flag", true, false, &b, &error));
  ck_assert(b);
  ck_assert(kcps__server_field_enum(obj, "kind", true, kinds, 0, &k, &error));
  ck_assert_int_eq(k, 1);
  ck_assert(kcps__server_field_email(obj, "mail", true, &s, &error));
  ck_assert_ptr_null(error);

  /* Refusals name the field and the rule. */
  static const struct {
    const char *json;
    const char *want;
  } bad[] = {
    {"{\"n\":11}", "field \"n\" must be an integer from 1 to 10"},
    {"{\"flag\":\"true\"}", "field \"flag\" must be true or false"},
    {"{\"kind\":\"d\"}", "field \"kind\" must be one of \"a\", \"b\" or \"c\""},
    {"{\"name\":\"123456789\"}", "field \"name\" must be 1 to 8 bytes long"},
    {"{\"mail\":\"nope\"}", "field \"mail\" must be an email address"},
    {"{\"extra\":1}", "unknown field \"extra\""},
    {"{\"ex\\\"tr\\u00e9\\u0001\":1}", "unknown field \"ex?tr???\""},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(JsonNode) n = json_from_string(bad[i].json, NULL);
    ck_assert_ptr_nonnull(n);
    JsonObject *o = json_node_get_object(n);
    g_autoptr(GError) e = NULL;
    bool ok = kcps__server_check_fields(o, known, &e) &&
              kcps__server_field_int(o, "n", false, 1, 10, 1, &v, &e) &&
              kcps__server_field_bool(o, "flag", false, false, &b, &e) &&
              kcps__server_field_enum(o, "kind", false, kinds, 0, &k, &e) &&
              kcps__server_field_string(o, "name", 1, 8, KCPS_TEXT_OPTIONAL, &s, &e) &&
              kcps__server_field_email(o, "mail", false, &s, &e);
    ck_assert_msg(!ok, "%s: accepted, expected \"%s\"", bad[i].json, bad[i].want);
    ck_assert_msg(g_str_has_prefix(e->message, bad[i].want), "%s: got \"%s\", expected \"%s\"",
                  bad[i].json, e->message, bad[i].want);
  }

  /* A long unknown name is cut in the message. */
  g_autofree char *longname = g_strnfill(500, 'x');
  g_autofree char *json = g_strdup_printf("{\"%s\":1}", longname);
  g_autoptr(JsonNode) ln = json_from_string(json, NULL);
  g_autoptr(GError) le = NULL;
  ck_assert(!kcps__server_check_fields(json_node_get_object(ln), known, &le));
  ck_assert_msg(strlen(le->message) < 100, "message of %zu bytes for a long name",
                strlen(le->message));

  ck_assert(kcps__server_is_uuid("0b4e7a0e-5b8c-4f2a-9d3e-1c2b3a4d5e6f"));
  ck_assert(!kcps__server_is_uuid("0B4E7A0E-5B8C-4F2A-9D3E-1C2B3A4D5E6F"));
  ck_assert(!kcps__server_is_uuid("0b4e7a0e-5b8c-4f2a-9d3e-1c2b3a4d5e6"));
  ck_assert(!kcps__server_is_uuid("0b4e7a0e 5b8c-4f2a-9d3e-1c2b3a4d5e6f"));
  ck_assert(!kcps__server_is_uuid(NULL));
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("server-input");
  TCase *routes = tcase_create("routes");
  tcase_add_checked_fixture(routes, sfx_setup, sfx_teardown);
  tcase_add_test(routes, test_login_fields);
  tcase_add_test(routes, test_job_fields);
  tcase_add_test(routes, test_device_login_fields);
  tcase_add_test(routes, test_pin_login_fields);
  tcase_add_test(routes, test_job_log_fields);
  tcase_add_test(routes, test_sql_meta);
  tcase_add_test(routes, test_path_ids);
  tcase_add_test(routes, test_valid_edges);
  suite_add_tcase(s, routes);

  TCase *walk = tcase_create("walk");
  tcase_add_checked_fixture(walk, sfx_setup, sfx_teardown);
  tcase_add_test(walk, test_walk_all_routes);
  tcase_add_test(walk, test_walk_queries);
  suite_add_tcase(s, walk);

  TCase *blocks = tcase_create("blocks");
  tcase_add_test(blocks, test_json_text);
  tcase_add_test(blocks, test_content_type);
  tcase_add_test(blocks, test_field_helpers);
  suite_add_tcase(s, blocks);

  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
