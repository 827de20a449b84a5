/* kcps-server login policies (white paper 4.1-4.3): both password presets,
 * Argon2id storage, lockout (threshold, auto-unlock, OTP/PIN failures,
 * scopes, answers alike), idle logout, refresh rotation and reuse, password
 * change, and the settings routes. */
#include "server-fixture.h"
#include "server-stub/server-lockout.h"

#include <curl/curl.h>
#include <string.h>

/* Helpers --------------------------------------------------------------- */

static char *
login_body(const char *email, const char *password, const char *client)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "email");
  json_builder_add_string_value(b, email);
  json_builder_set_member_name(b, "password");
  json_builder_add_string_value(b, password);
  if (client) {
    json_builder_set_member_name(b, "client");
    json_builder_add_string_value(b, client);
  }
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  return json_to_string(root, FALSE);
}

/* POST /login; the status, *out the answer. */
static long
try_login(const char *email, const char *password, const char *client, JsonNode **out)
{
  g_autofree char *body = login_body(email, password, client);
  return sfx_call("POST", "/api/v1/login", NULL, body, out);
}

static size_t
discard(char *ptr, size_t size, size_t n, void *data)
{
  (void)ptr;
  (void)data;
  return size * n;
}

/* POST /login from another loopback address (the connection's source is
 * bound to it); the HTTP status. */
static long
login_from(const char *source, const char *email, const char *password)
{
  g_autofree char *url = g_strconcat(kcps_server_get_url(sfx.server), "/api/v1/login", NULL);
  g_autofree char *body = login_body(email, password, NULL);
  CURL *curl = curl_easy_init();
  struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CAINFO, sfx.ca);
  curl_easy_setopt(curl, CURLOPT_INTERFACE, source);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  ck_assert_msg(rc == CURLE_OK, "login from %s: %s", source, curl_easy_strerror(rc));
  return status;
}

static size_t
collect_body(char *ptr, size_t size, size_t n, void *data)
{
  g_string_append_len(data, ptr, (gssize)(size * n));
  return size * n;
}

static size_t
collect_retry_after(char *ptr, size_t size, size_t n, void *data)
{
  char **out = data;
  size_t len = size * n;
  static const char name[] = "Retry-After:";
  if (len > sizeof name - 1 && g_ascii_strncasecmp(ptr, name, sizeof name - 1) == 0) {
    g_free(*out);
    *out = g_strstrip(g_strndup(ptr + sizeof name - 1, len - (sizeof name - 1)));
  }
  return len;
}

/* POST /login; the status, *out the answer, *retry_after the Retry-After
 * header (g_free; NULL when there is none). */
static long
login_answer(const char *email, const char *password, JsonNode **out, char **retry_after)
{
  g_autofree char *url = g_strconcat(kcps_server_get_url(sfx.server), "/api/v1/login", NULL);
  g_autofree char *body = login_body(email, password, NULL);
  g_autoptr(GString) text = g_string_new(NULL);
  *retry_after = NULL;
  CURL *curl = curl_easy_init();
  struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CAINFO, sfx.ca);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, text);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, collect_retry_after);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, retry_after);
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  ck_assert_msg(rc == CURLE_OK, "login %s: %s", email, curl_easy_strerror(rc));
  *out = text->len ? json_from_string(text->str, NULL) : NULL;
  return status;
}

/* Asserts a locked answer (status, account_locked, the time to retry within
 * seconds of minutes from now, the header equal to retry_after, retry_at
 * and the message's time the same RFC 3339 UTC time); its retry_after. */
static gint64
expect_locked(const char *what, long status, JsonNode *answer, const char *header,
              long want_status, gint64 minutes)
{
  ck_assert_msg(status == want_status, "%s: got %ld, expected %ld", what, status, want_status);
  ck_assert_msg(g_strcmp0(sfx_str(answer, "error"), "account_locked") == 0,
                "%s: got error %s (%s), expected account_locked", what,
                sfx_str(answer, "error"), sfx_str(answer, "message"));
  gint64 after = sfx_int(answer, "retry_after");
  ck_assert_msg(after >= minutes * 60 - 5 && after <= minutes * 60,
                "%s: retry_after got %" G_GINT64_FORMAT ", expected %" G_GINT64_FORMAT
                " (5 s less at most)",
                what, after, minutes * 60);
  if (header) {
    g_autofree char *want = g_strdup_printf("%" G_GINT64_FORMAT, after);
    ck_assert_msg(g_strcmp0(header, want) == 0, "%s: Retry-After got %s, expected %s", what,
                  header, want);
  }
  const char *at = sfx_str(answer, "retry_at");
  ck_assert_msg(at != NULL && strlen(at) == 20 && at[19] == 'Z', "%s: retry_at got %s", what,
                at ? at : "(none)");
  g_autoptr(GDateTime) parsed = g_date_time_new_from_iso8601(at, NULL);
  ck_assert_msg(parsed != NULL, "%s: retry_at %s is not RFC 3339", what, at);
  gint64 until = g_date_time_to_unix(parsed);
  gint64 now = kcps__server_now();
  ck_assert_msg(until - now >= after - 5 && until - now <= after + 5,
                "%s: retry_at %s is %" G_GINT64_FORMAT " s away, retry_after %" G_GINT64_FORMAT,
                what, at, until - now, after);
  g_autofree char *message = g_strconcat("too many failed attempts; try again after ", at, NULL);
  ck_assert_msg(g_strcmp0(sfx_str(answer, "message"), message) == 0,
                "%s: message got '%s', expected '%s'", what, sfx_str(answer, "message"),
                message);
  return after;
}

/* The answer's text with its times (retry_after, RFC 3339 times) blanked:
 * what two locked answers must share byte for byte (g_free). */
static char *
without_times(JsonNode *answer)
{
  g_autofree char *text = json_to_string(answer, FALSE);
  g_autoptr(GRegex) after = g_regex_new("\"retry_after\":[0-9]+", 0, 0, NULL);
  g_autoptr(GRegex) at = g_regex_new("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z",
                                     0, 0, NULL);
  g_autofree char *a = g_regex_replace_literal(after, text, -1, 0, "\"retry_after\":N", 0,
                                               NULL);
  return g_regex_replace_literal(at, a, -1, 0, "TIME", 0, NULL);
}

/* A desktop login: the access token, *refresh the refresh token (g_free). */
static char *
desktop_login(const char *email, const char *password, char **refresh)
{
  g_autoptr(JsonNode) answer = NULL;
  long status = try_login(email, password, "desktop", &answer);
  ck_assert_msg(status == 200, "desktop login: got %ld, expected 200", status);
  ck_assert_msg(sfx_str(answer, "refresh_token") != NULL, "desktop login: no refresh_token");
  ck_assert_int_eq(sfx_int(answer, "expires_in"), 3600);
  ck_assert_int_eq(sfx_int(answer, "refresh_expires_in"), 30 * 60);
  *refresh = g_strdup(sfx_str(answer, "refresh_token"));
  return g_strdup(sfx_str(answer, "token"));
}

/* POST /token/refresh; status, *token and *refresh the new pair (g_free). */
static long
refresh_with(const char *refresh, char **token, char **next)
{
  g_autofree char *body = g_strdup_printf("{\"refresh_token\":\"%s\"}", refresh);
  g_autoptr(JsonNode) answer = NULL;
  long status = sfx_call("POST", "/api/v1/token/refresh", NULL, body, &answer);
  if (token)
    *token = g_strdup(sfx_str(answer, "token"));
  if (next)
    *next = g_strdup(sfx_str(answer, "refresh_token"));
  if (status != 200)
    sfx_expect_error(status, answer, 401, "invalid_grant", NULL);
  return status;
}

static long
me(const char *token)
{
  return sfx_call("GET", "/api/v1/me", token, NULL, NULL);
}

/* Rows of the audit log with this event (and subject, when not NULL). */
static gint64
audit_count(const char *event, const char *subject)
{
  g_mutex_lock(&sfx.server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      sfx.server, "SELECT count(*) FROM audit WHERE event = ? AND (?2 IS NULL OR subject = ?2)",
      NULL);
  gint64 n = -1;
  if (stmt) {
    sqlite3_bind_text(stmt, 1, event, -1, SQLITE_STATIC);
    if (subject)
      sqlite3_bind_text(stmt, 2, subject, -1, SQLITE_STATIC);
    if (kcps__server_db_step(sfx.server, stmt, NULL) == SQLITE_ROW)
      n = sqlite3_column_int64(stmt, 0);
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&sfx.server->lock);
  return n;
}

static gint64
user_id(const char *email)
{
  g_mutex_lock(&sfx.server->lock);
  sqlite3_stmt *stmt =
      kcps__server_db_prepare(sfx.server, "SELECT id FROM users WHERE email = ?", NULL);
  gint64 id = 0;
  if (stmt) {
    sqlite3_bind_text(stmt, 1, email, -1, SQLITE_STATIC);
    if (kcps__server_db_step(sfx.server, stmt, NULL) == SQLITE_ROW)
      id = sqlite3_column_int64(stmt, 0);
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&sfx.server->lock);
  return id;
}

/* PATCH Customer A's settings as its admin; asserts 200. */
static void
set_settings(const char *body)
{
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autofree char *org = sfx_org_public_id("Customer A");
  g_autofree char *path = g_strdup_printf("/api/v1/orgs/%s/settings", org);
  g_autoptr(JsonNode) answer = NULL;
  long status = sfx_call("PATCH", path, admin, body, &answer);
  ck_assert_msg(status == 200, "PATCH settings %s: got %ld (%s), expected 200", body, status,
                sfx_str(answer, "message") ? sfx_str(answer, "message") : "-");
}

static void
failed_direct(gint64 user, const char *source)
{
  g_mutex_lock(&sfx.server->lock);
  kcps__server_lockout_failed_locked(sfx.server, user, source);
  g_mutex_unlock(&sfx.server->lock);
}

static bool
locked_direct(gint64 user, const char *source)
{
  g_mutex_lock(&sfx.server->lock);
  bool locked = kcps__server_lockout_locked(sfx.server, user, source);
  g_mutex_unlock(&sfx.server->lock);
  return locked;
}

/* Password rules (4.2) ---------------------------------------------------- */

typedef struct {
  const char *password;
  const char *rule; /* NULL: accepted */
} pw_case_t;

static const pw_case_t kcps_cases[] = {
  {"Abcdef1!", NULL},
  {"Abcde1!", "length"},
  {"Abcdefgh1!Abcdefgh1!Abcdefgh1!Abcdefgh1!Abcdefgh1!Abcdefgh1!Abcd", NULL}, /* 64 */
  {"Abcdefgh1!Abcdefgh1!Abcdefgh1!Abcdefgh1!Abcdefgh1!Abcdefgh1!Abcde", "length"}, /* 65 */
  {"abcdefg1!", "upper"},
  {"ABCDEFG1!", "lower"},
  {"Abcdefgh!", "digit"},
  {"Abcdefg12", "symbol"},
  {"Abcd\xc3\xa9" "fg1!", "characters"},                /* é */
  {"Abc\xc3\xa4" "Ab1!", "characters"},                 /* ä */
  {"\xe3\x83\x91\xe3\x82\xb9" "Abcdef1!", "characters"}, /* katakana */
  {"Abc defg1!", "characters"},                         /* space */
  {"Abcdefg1!\t", "characters"},
  {"Abcdefg1\\", NULL}, /* backslash, ']' and '|': see docs/api.md 1.2 */
  {"Abcdefg1]", NULL},
  {"Abcdefg1|", NULL},
  {"Abcdefg1$", NULL},
  {"Abcdefg1 ", "characters"},
};

START_TEST(test_kcps_rules)
{
  for (size_t i = 0; i < G_N_ELEMENTS(kcps_cases); i++) {
    const pw_case_t *c = &kcps_cases[i];
    g_autoptr(GError) error = NULL;
    bool ok = kcps__server_password_check(0, "alice@a.test", c->password, &error);
    if (!c->rule) {
      ck_assert_msg(ok, "case %zu: refused (%s), expected accepted", i,
                    error ? error->message : "?");
      continue;
    }
    ck_assert_msg(!ok, "case %zu: accepted, expected rule %s", i, c->rule);
    g_autofree char *want = g_strdup_printf("password rule \"%s\"", c->rule);
    ck_assert_msg(strstr(error->message, want), "case %zu: got \"%s\", expected %s", i,
                  error->message, want);
    ck_assert_msg(!strstr(error->message, c->password), "case %zu: the message shows the password",
                  i);
  }

  /* Every one of the 32 ASCII symbols counts as the symbol. */
  const char *symbols = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
  ck_assert_int_eq(strlen(symbols), 32);
  for (const char *s = symbols; *s; s++) {
    g_autofree char *pw = g_strdup_printf("Abcdefg1%c", *s);
    g_autoptr(GError) error = NULL;
    ck_assert_msg(kcps__server_password_check(0, NULL, pw, &error), "symbol %c refused: %s", *s,
                  error ? error->message : "?");
  }
}
END_TEST

static const pw_case_t nist_cases[] = {
  {"correct horse battery staple", NULL},
  {"abcdefghijklmn", "length"},                   /* 14 */
  {"zyxwvutsrqponml", NULL},                      /* 15, no composition rules */
  {"passwordpassword", "common"},
  {"PassWordPASSWORD", "common"},                 /* the list ignores case */
  {"1qaz2wsx3edc4rfv", "common"},
  {"Longlocalpart123", "email"},
  {"LONGLOCALPART123@EXAMPLE.TEST", "email"},
  {"\xc3\x84\xc3\x96\xc3\x9c\xc3\xa4\xc3\xb6\xc3\xbc\xc3\x9f\xc3\x84\xc3\x96\xc3\x9c"
   "\xc3\xa4\xc3\xb6\xc3\xbc\xc3\x9fx", NULL},    /* 15 code points, 29 bytes */
  {"\xc3\x84\xc3\x96\xc3\x9c\xc3\xa4\xc3\xb6\xc3\xbc\xc3\x9f\xc3\x84\xc3\x96\xc3\x9c"
   "\xc3\xa4\xc3\xb6\xc3\xbc\xc3\x9f", "length"}, /* 14 code points, 28 bytes */
  {"a long passphrase\twith a tab", "characters"},
  {"0123456789012345678901234567890123456789012345678901234567890123", NULL},  /* 64 */
  {"01234567890123456789012345678901234567890123456789012345678901234", "length"},
};

START_TEST(test_nist_rules)
{
  for (size_t i = 0; i < G_N_ELEMENTS(nist_cases); i++) {
    const pw_case_t *c = &nist_cases[i];
    g_autoptr(GError) error = NULL;
    bool ok = kcps__server_password_check(1, "longlocalpart123@example.test", c->password, &error);
    if (!c->rule) {
      ck_assert_msg(ok, "case %zu: refused (%s), expected accepted", i,
                    error ? error->message : "?");
      continue;
    }
    ck_assert_msg(!ok, "case %zu: accepted, expected rule %s", i, c->rule);
    g_autofree char *want = g_strdup_printf("password rule \"%s\"", c->rule);
    ck_assert_msg(strstr(error->message, want), "case %zu: got \"%s\", expected %s", i,
                  error->message, want);
  }

  /* Through the organization's setting, plus the admin's own list in the
   * data folder. */
  gint64 org = sfx_org_id("Customer A");
  g_autoptr(GError) error = NULL;
  ck_assert(kcps__server_password_acceptable(sfx.server, org, "Abcdef1!", NULL));
  ck_assert(!kcps__server_password_acceptable(sfx.server, org, "kyocera printing 2026", &error));
  ck_assert_msg(strstr(error->message, "\"characters\""), "got %s", error->message);
  g_clear_error(&error);
  set_settings("{\"password_policy\":\"nist\"}");
  ck_assert(!kcps__server_password_acceptable(sfx.server, org, "Abcdef1!", &error));
  ck_assert_msg(strstr(error->message, "\"length\""), "got %s", error->message);
  g_clear_error(&error);
  ck_assert(kcps__server_password_acceptable(sfx.server, org, "kyocera printing 2026", NULL));
  g_autofree char *extra = g_build_filename(sfx.data, "common-passwords.txt", NULL);
  ck_assert(g_file_set_contents(extra, "# ours\nKyocera Printing 2026\n", -1, NULL));
  ck_assert(!kcps__server_password_acceptable(sfx.server, org, "kyocera printing 2026", &error));
  ck_assert_msg(strstr(error->message, "\"common\""), "got %s", error->message);
  g_clear_error(&error);
  ck_assert(!kcps__server_password_acceptable_for(sfx.server, org, "a.long.name@a.test",
                                                  "A.Long.Name@A.test", &error));
  ck_assert_msg(strstr(error->message, "\"email\""), "got %s", error->message);
}
END_TEST

/* Password change (and the stored hash) ----------------------------------- */

START_TEST(test_password_change)
{
  g_autofree char *web = sfx_login("alice@a.test", sfx.alice_pw);
  g_autofree char *refresh = NULL;
  g_autofree char *desktop = desktop_login("alice@a.test", sfx.alice_pw, &refresh);
  ck_assert_int_eq(me(web), 200);
  ck_assert_int_eq(me(desktop), 200);

  g_autofree char *body =
      g_strdup_printf("{\"current\":\"%s\",\"new\":\"Fresh-Passw0rd\"}", sfx.alice_pw);
  g_autoptr(JsonNode) answer = NULL;
  long status = sfx_call("POST", "/api/v1/me/password", web, body, &answer);
  ck_assert_msg(status == 204, "password change: got %ld (%s), expected 204", status,
                sfx_str(answer, "message") ? sfx_str(answer, "message") : "-");

  /* Every session and refresh token of the user ended, the caller's too. */
  ck_assert_int_eq(me(web), 401);
  ck_assert_int_eq(me(desktop), 401);
  ck_assert_int_eq(refresh_with(refresh, NULL, NULL), 401);
  ck_assert_int_eq(try_login("alice@a.test", sfx.alice_pw, NULL, NULL), 401);
  g_autofree char *again = sfx_login("alice@a.test", "Fresh-Passw0rd");
  ck_assert_int_eq(audit_count("password.changed", "alice@a.test"), 1);

  /* Stored as Argon2id with OWASP's parameters (19 MiB, t=2). */
  g_autofree char *stored = kcps__server_db_password_hash(sfx.server, "alice@a.test");
  ck_assert_msg(stored && g_str_has_prefix(stored, "$argon2id$v=19$m=19456,t=2,p=1$"),
                "stored hash: %s", stored ? stored : "(none)");
  ck_assert_ptr_null(strstr(stored, "Fresh-Passw0rd"));
}
END_TEST

START_TEST(test_password_change_refused)
{
  g_autofree char *web = sfx_login("alice@a.test", sfx.alice_pw);
  g_autofree char *before = kcps__server_db_password_hash(sfx.server, "alice@a.test");
  struct {
    const char *body; /* %s: alice's password */
    long status;
    const char *code;
    const char *in_message;
  } cases[] = {
    {"{\"current\":\"%s\",\"new\":\"short1!A\",\"x\":1}", 400, "bad_request", "unknown field \"x\""},
    {"{\"current\":\"%s\"}", 400, "bad_request", "\"new\""},
    {"{\"current\":\"%s\",\"new\":12345678}", 400, "bad_request", "\"new\""},
    {"{\"current\":\"%s\",\"new\":\"Ab1!\"}", 400, "bad_request", "\"length\""},
    {"{\"current\":\"%s\",\"new\":\"abcdefgh1!\"}", 400, "bad_request", "\"upper\""},
    {"{\"current\":\"%s\",\"new\":\"Abcdefgh!!\"}", 400, "bad_request", "\"digit\""},
    {"{\"current\":\"%s\",\"new\":\"Abcdefgh12\"}", 400, "bad_request", "\"symbol\""},
    {"{\"current\":\"%s\",\"new\":\"ABCDEFGH1!\"}", 400, "bad_request", "\"lower\""},
    {"{\"current\":\"%s\",\"new\":\"Abcdefg\\u00e91!\"}", 400, "bad_request", "\"characters\""},
    {"{\"current\":\"%s\",\"new\":\"%s\"}", 400, "bad_request", "\"different\""},
    {"{\"current\":\"Wrong-pass-1\",\"new\":\"Fresh-Passw0rd\"}", 403, "invalid_credentials", NULL},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *body = g_strdup_printf(cases[i].body, sfx.alice_pw, sfx.alice_pw);
    g_autoptr(JsonNode) answer = NULL;
    long status = sfx_call("POST", "/api/v1/me/password", web, body, &answer);
    sfx_expect_error(status, answer, cases[i].status, cases[i].code, cases[i].in_message);
  }
  g_autofree char *after = kcps__server_db_password_hash(sfx.server, "alice@a.test");
  ck_assert_str_eq(before, after);
  ck_assert_int_eq(me(web), 200);

  /* Wrong current passwords count towards the lockout: two more lock, and
   * the one that locks says until when (403 as before). */
  g_autoptr(JsonNode) second = NULL, third = NULL;
  long status = sfx_call("POST", "/api/v1/me/password", web,
                         "{\"current\":\"Wrong-pass-1\",\"new\":\"Fresh-Passw0rd\"}",
                         &second);
  sfx_expect_error(status, second, 403, "invalid_credentials", NULL);
  status = sfx_call("POST", "/api/v1/me/password", web,
                    "{\"current\":\"Wrong-pass-1\",\"new\":\"Fresh-Passw0rd\"}", &third);
  expect_locked("password change that locks", status, third, NULL, 403, 30);
  ck_assert_int_eq(audit_count("account.locked", "alice@a.test"), 1);
  ck_assert_int_eq(me(web), 401); /* the lock ended the session */
  ck_assert_int_eq(try_login("alice@a.test", sfx.alice_pw, NULL, NULL), 401);
}
END_TEST

/* Lockout (4.1) ------------------------------------------------------------ */

START_TEST(test_lockout_after_three)
{
  g_autofree char *session = sfx_login("alice@a.test", sfx.alice_pw);
  for (int i = 0; i < 2; i++)
    ck_assert_int_eq(try_login("alice@a.test", "Wrong-pass-1", NULL, NULL), 401);
  ck_assert_int_eq(audit_count("account.locked", NULL), 0);
  ck_assert_int_eq(me(session), 200);
  /* The failure that locks says so at once, with the time to retry. */
  g_autoptr(JsonNode) third = NULL;
  g_autofree char *third_header = NULL;
  long status = login_answer("alice@a.test", "Wrong-pass-1", &third, &third_header);
  expect_locked("the third failure", status, third, third_header, 401, 30);
  ck_assert_int_eq(audit_count("login.failed", "alice@a.test"), 3);
  ck_assert_int_eq(audit_count("account.locked", "alice@a.test"), 1);

  /* Locked: the right password is refused too (same answer), sessions
   * ended. */
  ck_assert_int_eq(me(session), 401);
  g_autoptr(JsonNode) answer = NULL;
  g_autofree char *header = NULL;
  status = login_answer("alice@a.test", sfx.alice_pw, &answer, &header);
  expect_locked("the right password while locked", status, answer, header, 401, 30);
  ck_assert_str_eq(sfx_str(answer, "retry_at"), sfx_str(third, "retry_at"));
  /* Attempts at a locked account write nothing. */
  ck_assert_int_eq(audit_count("login.failed", "alice@a.test"), 3);
  ck_assert_int_eq(audit_count("login.ok", "alice@a.test"), 1);

  /* Scope "account": failures from elsewhere lock here too. */
  for (int i = 0; i < 3; i++)
    login_from("127.0.0.2", "admin@a.test", "Wrong-pass-1");
  ck_assert_int_eq(try_login("admin@a.test", sfx.admin_pw, NULL, NULL), 401);

  /* Other accounts are not affected. */
  sfx_add_user("Customer A", "bob@a.test", "customer_user", "Bob-pass-1");
  g_autofree char *bob = sfx_login("bob@a.test", "Bob-pass-1");

  /* 30 minutes later it unlocks by itself. */
  sfx_skew_clock(29 * 60);
  ck_assert_int_eq(try_login("alice@a.test", sfx.alice_pw, NULL, NULL), 401);
  sfx_skew_clock(30 * 60 + 1);
  g_autofree char *back = sfx_login("alice@a.test", sfx.alice_pw);
  /* And the count starts again from zero. */
  for (int i = 0; i < 2; i++)
    try_login("alice@a.test", "Wrong-pass-1", NULL, NULL);
  g_autofree char *still = sfx_login("alice@a.test", sfx.alice_pw);
}
END_TEST

START_TEST(test_lockout_settings)
{
  set_settings("{\"lockout_threshold\":5,\"lockout_minutes\":2}");
  for (int i = 0; i < 4; i++)
    try_login("alice@a.test", "Wrong-pass-1", NULL, NULL);
  ck_assert_int_eq(audit_count("account.locked", NULL), 0);
  g_autoptr(JsonNode) fifth = NULL;
  g_autofree char *header = NULL;
  long status = login_answer("alice@a.test", "Wrong-pass-1", &fifth, &header);
  expect_locked("the fifth failure (threshold 5)", status, fifth, header, 401, 2);
  ck_assert_int_eq(audit_count("account.locked", "alice@a.test"), 1);
  ck_assert_int_eq(try_login("alice@a.test", sfx.alice_pw, NULL, NULL), 401);
  sfx_skew_clock(2 * 60 + 1);
  g_autofree char *back = sfx_login("alice@a.test", sfx.alice_pw);
}
END_TEST

START_TEST(test_success_resets)
{
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 2; i++)
      try_login("alice@a.test", "Wrong-pass-1", NULL, NULL);
    g_autofree char *ok = sfx_login("alice@a.test", sfx.alice_pw);
  }
  ck_assert_int_eq(audit_count("account.locked", NULL), 0);
  ck_assert_int_eq(audit_count("login.failed", "alice@a.test"), 6);
}
END_TEST

/* OTP and PIN failures count through the same functions. */
START_TEST(test_other_factors_count)
{
  gint64 alice = user_id("alice@a.test");
  g_autofree char *session = sfx_login("alice@a.test", sfx.alice_pw);
  failed_direct(alice, "127.0.0.1"); /* an OTP failure, say */
  failed_direct(alice, "127.0.0.1"); /* a PIN failure */
  ck_assert(!locked_direct(alice, "127.0.0.1"));
  ck_assert_int_eq(try_login("alice@a.test", "Wrong-pass-1", NULL, NULL), 401);
  ck_assert(locked_direct(alice, "127.0.0.1"));
  ck_assert(locked_direct(alice, "10.1.2.3")); /* scope "account": everywhere */
  ck_assert_int_eq(me(session), 401);
  ck_assert_int_eq(try_login("alice@a.test", sfx.alice_pw, NULL, NULL), 401);

  /* An unknown account (a wrong PIN at a device): keyed on the source,
   * in memory, nothing written. */
  gint64 audit_before = kcps__server_db_count_rows(sfx.server, "audit");
  for (int i = 0; i < 2; i++)
    failed_direct(0, "192.0.2.7");
  ck_assert(!locked_direct(0, "192.0.2.7"));
  failed_direct(0, "192.0.2.7");
  ck_assert(locked_direct(0, "192.0.2.7"));
  ck_assert(!locked_direct(0, "192.0.2.8"));
  ck_assert_int_eq(kcps__server_db_count_rows(sfx.server, "audit"), audit_before);
  sfx_skew_clock(30 * 60 + 1);
  ck_assert(!locked_direct(0, "192.0.2.7"));
  ck_assert(!locked_direct(alice, "127.0.0.1"));

  /* A success resets an unknown source's count too. */
  failed_direct(0, "192.0.2.9");
  failed_direct(0, "192.0.2.9");
  g_mutex_lock(&sfx.server->lock);
  kcps__server_lockout_succeeded_locked(sfx.server, 0, "192.0.2.9");
  g_mutex_unlock(&sfx.server->lock);
  failed_direct(0, "192.0.2.9");
  ck_assert(!locked_direct(0, "192.0.2.9"));
}
END_TEST

/* Many sources of unknown accounts: the memory stays bounded. */
START_TEST(test_unknown_bounded)
{
  for (int i = 0; i < 5000; i++) {
    char source[32];
    g_snprintf(source, sizeof source, "10.%d.%d.%d", i / 65536, (i / 256) % 256, i % 256);
    failed_direct(0, source);
  }
  ck_assert_int_eq(kcps__server_db_count_rows(sfx.server, "lockouts"), 0);
  for (int i = 0; i < 3; i++)
    failed_direct(0, "10.200.0.1");
  ck_assert(locked_direct(0, "10.200.0.1"));
}
END_TEST

static double
median(double *v, int n)
{
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
      double t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  return v[n / 2];
}

/* Unknown, wrong password: the same status and body; locked known and
 * locked unknown accounts: the same locked answer but for its times; all
 * four in similar time (each runs one Argon2 verification). */
START_TEST(test_refused_alike)
{
  for (int i = 0; i < 3; i++) {
    try_login("admin@a.test", "Wrong-pass-1", NULL, NULL);
    try_login("ghost@a.test", "Wrong-pass-1", NULL, NULL);
  }
  ck_assert_int_eq(audit_count("account.locked", "admin@a.test"), 1);

  enum { N = 5, K = 4 };
  /* %d: the round (a fresh unknown address each round, so it never locks). */
  const char *emails[K] = {"admin@a.test", "nobody%d@a.test", "alice@a.test", "ghost@a.test"};
  const char *passwords[K] = {sfx.admin_pw, "Wrong-pass-1", "Wrong-pass-1", "Wrong-pass-1"};
  const bool locked[K] = {true, false, false, true};
  double times[K][N];
  char *bodies[K] = {NULL, NULL, NULL, NULL};
  for (int round = 0; round < N; round++) {
    for (int k = 0; k < K; k++) {
      /* alice only twice wrong a round (else she locks): reset her count. */
      if (k == 2 && round % 2 == 0) {
        g_autofree char *ok = sfx_login("alice@a.test", sfx.alice_pw);
      }
      g_autofree char *email = g_strdup_printf(emails[k], round);
      g_autoptr(JsonNode) answer = NULL;
      g_autofree char *header = NULL;
      gint64 t0 = g_get_monotonic_time();
      long status = login_answer(email, passwords[k], &answer, &header);
      times[k][round] = (double)(g_get_monotonic_time() - t0);
      if (locked[k]) {
        expect_locked(email, status, answer, header, 401, 30);
      } else {
        sfx_expect_error(status, answer, 401, "invalid_credentials", NULL);
        ck_assert_msg(header == NULL, "%s: a Retry-After (%s) on a plain refusal", email,
                      header);
      }
      g_autofree char *text = without_times(answer);
      if (!bodies[k])
        bodies[k] = g_strdup(text);
      ck_assert_str_eq(bodies[k], text);
    }
  }
  ck_assert_str_eq(bodies[1], bodies[2]); /* unknown = wrong password */
  ck_assert_str_eq(bodies[0], bodies[3]); /* locked known = locked unknown */
  for (int k = 0; k < K; k++)
    g_free(bodies[k]);
  double m[K];
  double lo = G_MAXDOUBLE, hi = 0;
  for (int k = 0; k < K; k++) {
    m[k] = median(times[k], N);
    lo = MIN(lo, m[k]);
    hi = MAX(hi, m[k]);
  }
  ck_assert_msg(hi < lo * 3.0,
                "medians locked %.1f ms, unknown %.1f ms, wrong %.1f ms, locked unknown %.1f ms:"
                " expected similar",
                m[0] / 1000, m[1] / 1000, m[2] / 1000, m[3] / 1000);
  /* Unknown accounts and a locked one wrote nothing. */
  ck_assert_int_eq(audit_count("login.failed", "admin@a.test"), 3);
  ck_assert_int_eq(audit_count("login.failed", "nobody0@a.test"), 0);
  ck_assert_int_eq(audit_count("login.failed", "ghost@a.test"), 0);
}
END_TEST

/* An unknown address locks exactly as an account of the default policy
 * does: counted per address (its hash, in memory), not per source. */
START_TEST(test_unknown_email_locks)
{
  gint64 audit_before = kcps__server_db_count_rows(sfx.server, "audit");
  for (int i = 0; i < 2; i++) {
    g_autoptr(JsonNode) answer = NULL;
    g_autofree char *header = NULL;
    long status = login_answer("nobody@x.test", "Wrong-pass-1", &answer, &header);
    sfx_expect_error(status, answer, 401, "invalid_credentials", NULL);
    ck_assert_msg(header == NULL, "failure %d: Retry-After %s before the lock", i + 1, header);
  }
  g_autoptr(JsonNode) unknown = NULL;
  g_autofree char *unknown_header = NULL;
  long status = login_answer("nobody@x.test", "Wrong-pass-1", &unknown, &unknown_header);
  gint64 unknown_after =
      expect_locked("third failure, unknown", status, unknown, unknown_header, 401, 30);

  /* alice (default policy): three failures, the same answer. */
  for (int i = 0; i < 2; i++)
    try_login("alice@a.test", "Wrong-pass-1", NULL, NULL);
  g_autoptr(JsonNode) known = NULL;
  g_autofree char *known_header = NULL;
  status = login_answer("alice@a.test", "Wrong-pass-1", &known, &known_header);
  gint64 known_after = expect_locked("third failure, alice", status, known, known_header, 401, 30);
  g_autofree char *known_text = without_times(known);
  g_autofree char *unknown_text = without_times(unknown);
  ck_assert_str_eq(known_text, unknown_text);
  ck_assert_msg(known_after >= unknown_after - 5 && known_after <= unknown_after + 5,
                "retry_after alice %" G_GINT64_FORMAT ", unknown %" G_GINT64_FORMAT, known_after,
                unknown_after);

  /* Locked: the address in other letter case too (the lookup ignores it). */
  g_autoptr(JsonNode) again = NULL;
  g_autofree char *again_header = NULL;
  status = login_answer("NoBody@X.test", "Other-pass-2", &again, &again_header);
  expect_locked("unknown, locked, other case", status, again, again_header, 401, 30);
  ck_assert_str_eq(sfx_str(again, "retry_at"), sfx_str(unknown, "retry_at"));

  /* The lock is the address's: another unknown address from the same
   * source, and the source itself (devices' PIN key), are not locked. */
  g_autoptr(JsonNode) other = NULL;
  status = try_login("somebody@x.test", "Wrong-pass-1", NULL, &other);
  sfx_expect_error(status, other, 401, "invalid_credentials", NULL);
  ck_assert(!locked_direct(0, "127.0.0.1"));

  /* Kept as a hash only: no slot holds the address in clear; one holds
   * its key. Nothing went to the database for the unknown address. */
  char key[KCPS_SERVER_LOCKOUT_EMAIL_KEY];
  kcps__server_lockout_email_key(" Nobody@X.TEST ", key);
  ck_assert_msg(g_str_has_prefix(key, "email:") && strlen(key) == 62, "key got %s", key);
  ck_assert(locked_direct(0, key));
  int holding = 0;
  g_mutex_lock(&sfx.server->lock);
  for (size_t i = 0; i < KCPS_SERVER_LOCKOUT_SLOTS; i++) {
    const char *slot = sfx.server->lockout_slots[i].source;
    ck_assert_msg(strstr(slot, "nobody") == NULL && strstr(slot, "x.test") == NULL,
                  "slot %zu holds '%s'", i, slot);
    holding += strcmp(slot, key) == 0;
  }
  g_mutex_unlock(&sfx.server->lock);
  ck_assert_int_eq(holding, 1);
  ck_assert_int_eq(audit_count("login.failed", "nobody@x.test"), 0);
  ck_assert_int_eq(kcps__server_db_count_rows(sfx.server, "audit"),
                   audit_before + 3 /* alice's failures */ + 1 /* her lock */);

  /* Time lifts both locks; the count starts afresh. */
  sfx_skew_clock(30 * 60 + 1);
  g_autoptr(JsonNode) later = NULL;
  g_autofree char *later_header = NULL;
  status = login_answer("nobody@x.test", "Wrong-pass-1", &later, &later_header);
  sfx_expect_error(status, later, 401, "invalid_credentials", NULL);
  ck_assert_msg(later_header == NULL, "after the lock: Retry-After %s", later_header);
  g_autofree char *back = sfx_login("alice@a.test", sfx.alice_pw);
}
END_TEST

/* Guessing at unknown accounts or at a locked one writes nothing to the
 * database (a login storm must not queue writes for everyone else). */
START_TEST(test_storm_writes_nothing)
{
  for (int i = 0; i < 3; i++)
    try_login("admin@a.test", "Wrong-pass-1", NULL, NULL);
  g_mutex_lock(&sfx.server->lock);
  int before = sqlite3_total_changes(sfx.server->db);
  g_mutex_unlock(&sfx.server->lock);
  for (int i = 0; i < 4; i++) {
    ck_assert_int_eq(try_login("admin@a.test", "Wrong-pass-1", NULL, NULL), 401);
    ck_assert_int_eq(try_login("admin@a.test", sfx.admin_pw, NULL, NULL), 401);
    g_autofree char *email = g_strdup_printf("nobody%d@a.test", i);
    ck_assert_int_eq(try_login(email, "Wrong-pass-1", NULL, NULL), 401);
  }
  g_mutex_lock(&sfx.server->lock);
  int after = sqlite3_total_changes(sfx.server->db);
  g_mutex_unlock(&sfx.server->lock);
  ck_assert_msg(after == before, "rows changed by refused logins: got %d, expected 0",
                after - before);
}
END_TEST

/* lockout_scope account_source: failures from one address do not lock the
 * account for another. */
START_TEST(test_account_source)
{
  set_settings("{\"lockout_scope\":\"account_source\"}");
  gint64 alice = user_id("alice@a.test");
  g_autofree char *session = sfx_login("alice@a.test", sfx.alice_pw);

  /* A stranger at 127.0.0.2 (the function, as the server listens on
   * 127.0.0.1 only) ... */
  for (int i = 0; i < 3; i++)
    failed_direct(alice, "127.0.0.2");
  ck_assert(locked_direct(alice, "127.0.0.2"));
  ck_assert(!locked_direct(alice, "127.0.0.1"));
  /* ... neither locks alice out here nor ends her sessions. */
  ck_assert_int_eq(me(session), 200);
  g_autofree char *again = sfx_login("alice@a.test", sfx.alice_pw);
  ck_assert_int_eq(audit_count("account.locked", "alice@a.test"), 1);

  /* Over HTTP: a stranger at 127.0.0.2 locks 127.0.0.2 only ... */
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(login_from("127.0.0.2", "admin@a.test", "Wrong-pass-1"), 401);
  ck_assert_int_eq(login_from("127.0.0.2", "admin@a.test", sfx.admin_pw), 401);
  ck_assert_int_eq(login_from("127.0.0.1", "admin@a.test", sfx.admin_pw), 200);
  ck_assert_int_eq(login_from("127.0.0.3", "admin@a.test", sfx.admin_pw), 200);
  ck_assert_int_eq(audit_count("account.locked", "admin@a.test"), 1);

  /* Failures over HTTP from 127.0.0.1 lock 127.0.0.1 only. */
  for (int i = 0; i < 3; i++)
    try_login("alice@a.test", "Wrong-pass-1", NULL, NULL);
  ck_assert_int_eq(try_login("alice@a.test", sfx.alice_pw, NULL, NULL), 401);
  ck_assert(locked_direct(alice, "127.0.0.1"));
  ck_assert(!locked_direct(alice, "127.0.0.3"));
  ck_assert_int_eq(kcps__server_db_count_rows(sfx.server, "lockouts"), 3);
}
END_TEST

/* Sessions: idle logout (4.3) and refresh tokens ------------------------- */

START_TEST(test_idle_web)
{
  g_autofree char *token = sfx_login("alice@a.test", sfx.alice_pw);
  g_autofree char *unused = sfx_login("admin@a.test", sfx.admin_pw);
  sfx_skew_clock(29 * 60);
  ck_assert_int_eq(me(token), 200); /* use moves the idle clock on */
  sfx_skew_clock(29 * 60 + 29 * 60);
  ck_assert_int_eq(me(token), 200);
  ck_assert_int_eq(me(unused), 401); /* unused for 58 minutes */
  sfx_skew_clock(29 * 60 + 29 * 60 + 31 * 60 + 1);
  g_autoptr(JsonNode) answer = NULL;
  long status = sfx_call("GET", "/api/v1/me", token, NULL, &answer);
  sfx_expect_error(status, answer, 401, "unauthorized", NULL);

  /* The organization's setting. */
  sfx_skew_clock(0);
  set_settings("{\"idle_logout_minutes\":5}");
  g_autofree char *five = sfx_login("alice@a.test", sfx.alice_pw);
  sfx_skew_clock(4 * 60);
  ck_assert_int_eq(me(five), 200);
  sfx_skew_clock(4 * 60 + 6 * 60 + 1);
  ck_assert_int_eq(me(five), 401);
}
END_TEST

START_TEST(test_idle_desktop)
{
  set_settings("{\"desktop_idle_logout_minutes\":45}");
  g_autofree char *web = sfx_login("alice@a.test", sfx.alice_pw);
  g_autoptr(JsonNode) answer = NULL;
  ck_assert_int_eq(try_login("alice@a.test", sfx.alice_pw, "desktop", &answer), 200);
  ck_assert_int_eq(sfx_int(answer, "refresh_expires_in"), 45 * 60);
  const char *desktop = sfx_str(answer, "token");
  sfx_skew_clock(40 * 60);
  ck_assert_int_eq(me(web), 401);     /* web: 30 minutes */
  ck_assert_int_eq(me(desktop), 200); /* desktop: 45 */
  sfx_skew_clock(40 * 60 + 47 * 60);
  ck_assert_int_eq(me(desktop), 401);
}
END_TEST

START_TEST(test_refresh_rotation)
{
  g_autofree char *r1 = NULL;
  g_autofree char *t1 = desktop_login("alice@a.test", sfx.alice_pw, &r1);
  g_autofree char *t2 = NULL, *r2 = NULL, *t3 = NULL, *r3 = NULL;
  ck_assert_int_eq(refresh_with(r1, &t2, &r2), 200);
  ck_assert_str_ne(r1, r2);
  ck_assert_str_ne(t1, t2);
  ck_assert_int_eq(me(t2), 200);
  ck_assert_int_eq(refresh_with(r2, &t3, &r3), 200);
  ck_assert_int_eq(me(t3), 200);
  ck_assert_int_eq(kcps__server_db_count_rows(sfx.server, "refresh_tokens"), 3);

  /* Another login's family is not touched by the reuse below. */
  g_autofree char *other_r = NULL;
  g_autofree char *other_t = desktop_login("alice@a.test", sfx.alice_pw, &other_r);

  /* r1 again: someone copied it. The whole family ends. */
  ck_assert_int_eq(refresh_with(r1, NULL, NULL), 401);
  ck_assert_int_eq(audit_count("refresh.reused", "alice@a.test"), 1);
  ck_assert_int_eq(me(t1), 401);
  ck_assert_int_eq(me(t2), 401);
  ck_assert_int_eq(me(t3), 401);
  ck_assert_int_eq(refresh_with(r3, NULL, NULL), 401);
  ck_assert_int_eq(me(other_t), 200);
  g_autofree char *t4 = NULL, *r4 = NULL;
  ck_assert_int_eq(refresh_with(other_r, &t4, &r4), 200);

  /* The tokens are stored hashed only. */
  g_mutex_lock(&sfx.server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      sfx.server, "SELECT count(*) FROM refresh_tokens WHERE token_hash = ? OR token_hash = ?",
      NULL);
  sqlite3_bind_text(stmt, 1, other_r, -1, SQLITE_STATIC);
  sqlite3_bind_text(stmt, 2, r4, -1, SQLITE_STATIC);
  ck_assert_int_eq(kcps__server_db_step(sfx.server, stmt, NULL), SQLITE_ROW);
  gint64 plain = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  g_mutex_unlock(&sfx.server->lock);
  ck_assert_int_eq(plain, 0);
}
END_TEST

START_TEST(test_refresh_expiry_and_logout)
{
  g_autofree char *r1 = NULL;
  g_autofree char *t1 = desktop_login("alice@a.test", sfx.alice_pw, &r1);
  sfx_skew_clock(30 * 60 + 1); /* the desktop idle time since its issue */
  ck_assert_int_eq(refresh_with(r1, NULL, NULL), 401);
  sfx_skew_clock(0);

  /* Logout of a desktop session ends its refresh family. */
  g_autofree char *r2 = NULL;
  g_autofree char *t2 = desktop_login("alice@a.test", sfx.alice_pw, &r2);
  ck_assert_int_eq(sfx_call("POST", "/api/v1/logout", t2, NULL, NULL), 204);
  ck_assert_int_eq(refresh_with(r2, NULL, NULL), 401);

  /* A web login gets no refresh token; other clients are refused. */
  g_autoptr(JsonNode) web = NULL;
  ck_assert_int_eq(try_login("alice@a.test", sfx.alice_pw, "web", &web), 200);
  ck_assert_ptr_null(sfx_member(web, "refresh_token"));
  ck_assert_int_eq(sfx_int(web, "expires_in"), 12 * 3600);
  g_autoptr(JsonNode) odd = NULL;
  long status = try_login("alice@a.test", sfx.alice_pw, "tablet", &odd);
  sfx_expect_error(status, odd, 400, "bad_request", "client");
}
END_TEST

START_TEST(test_refresh_bad_bodies)
{
  static const struct {
    const char *body;
    const char *in_message;
  } cases[] = {
    {"{}", "refresh_token"},
    {"{\"refresh_token\":42}", "refresh_token"},
    {"{\"refresh_token\":\"\"}", "refresh_token"},
    {"{\"refresh_token\":\"abc\",\"extra\":1}", "unknown field \"extra\""},
    {"[\"abc\"]", NULL},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(JsonNode) answer = NULL;
    long status = sfx_call_raw("POST", "/api/v1/token/refresh", NULL, cases[i].body, -1, NULL,
                               NULL, &answer);
    sfx_expect_error(status, answer, 400, "bad_request", cases[i].in_message);
  }
  g_autofree char *long_token = g_strnfill(300, 'a');
  g_autofree char *body = g_strdup_printf("{\"refresh_token\":\"%s\"}", long_token);
  g_autoptr(JsonNode) answer = NULL;
  long status = sfx_call("POST", "/api/v1/token/refresh", NULL, body, &answer);
  sfx_expect_error(status, answer, 400, "bad_request", "refresh_token");
  ck_assert_int_eq(refresh_with("not-a-token-we-issued", NULL, NULL), 401);
}
END_TEST

/* Settings routes ----------------------------------------------------------- */

START_TEST(test_settings_routes)
{
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autofree char *org = sfx_org_public_id("Customer A");
  g_autofree char *path = g_strdup_printf("/api/v1/orgs/%s/settings", org);

  g_autoptr(JsonNode) got = NULL;
  ck_assert_int_eq(sfx_call("GET", path, admin, NULL, &got), 200);
  ck_assert_int_eq(sfx_int(got, "lockout_threshold"), 3);
  ck_assert_int_eq(sfx_int(got, "lockout_minutes"), 30);
  ck_assert_str_eq(sfx_str(got, "lockout_scope"), "account");
  ck_assert_str_eq(sfx_str(got, "password_policy"), "kcps");
  ck_assert_int_eq(sfx_int(got, "idle_logout_minutes"), 30);

  /* A customer user may read her organization's policy, not change it. */
  ck_assert_int_eq(sfx_call("GET", path, alice, NULL, NULL), 200);
  g_autoptr(JsonNode) denied = NULL;
  long status = sfx_call("PATCH", path, alice, "{\"lockout_threshold\":9}", &denied);
  sfx_expect_error(status, denied, 403, "forbidden", NULL);
  g_autoptr(JsonNode) missing = NULL;
  status = sfx_call("GET", "/api/v1/orgs/00000000-0000-4000-8000-000000000000/settings", admin,
                    NULL, &missing);
  sfx_expect_error(status, missing, 404, "not_found", NULL);

  g_autoptr(JsonNode) patched = NULL;
  ck_assert_int_eq(sfx_call("PATCH", path, admin,
                            "{\"lockout_threshold\":5,\"password_policy\":\"nist\","
                            "\"mfa_email\":false}",
                            &patched),
                   200);
  ck_assert_int_eq(sfx_int(patched, "lockout_threshold"), 5);
  ck_assert_str_eq(sfx_str(patched, "password_policy"), "nist");
  ck_assert_int_eq(audit_count("policy.changed", NULL), 3);
  ck_assert_int_eq(audit_count("policy.changed", "lockout_threshold"), 1);

  /* GET /me/policy tells the user the rules. */
  g_autoptr(JsonNode) policy = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/me/policy", alice, NULL, &policy), 200);
  ck_assert_str_eq(sfx_str(policy, "password_policy"), "nist");
  ck_assert_int_eq(sfx_int(sfx_member(policy, "password"), "min_length"), 15);
  ck_assert_int_eq(sfx_int(policy, "lockout_threshold"), 5);
  ck_assert_int_eq(sfx_int(policy, "idle_logout_minutes"), 30);
  ck_assert_int_eq(sfx_int(policy, "desktop_idle_logout_minutes"), 30);

  /* And a new password now meets the NIST preset. */
  static const struct {
    const char *fresh;
    const char *rule;
  } nist[] = {{"Abcdef1!", "\"length\""}, {"PassWordPassWord", "\"common\""}};
  for (size_t i = 0; i < G_N_ELEMENTS(nist); i++) {
    g_autofree char *body =
        g_strdup_printf("{\"current\":\"%s\",\"new\":\"%s\"}", sfx.alice_pw, nist[i].fresh);
    g_autoptr(JsonNode) refused = NULL;
    status = sfx_call("POST", "/api/v1/me/password", alice, body, &refused);
    sfx_expect_error(status, refused, 400, "bad_request", nist[i].rule);
  }
  g_autofree char *body = g_strdup_printf(
      "{\"current\":\"%s\",\"new\":\"a rather long passphrase\"}", sfx.alice_pw);
  ck_assert_int_eq(sfx_call("POST", "/api/v1/me/password", alice, body, NULL), 204);
  g_autofree char *back = sfx_login("alice@a.test", "a rather long passphrase");
}
END_TEST

START_TEST(test_settings_refused)
{
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autofree char *org = sfx_org_public_id("Customer A");
  g_autofree char *path = g_strdup_printf("/api/v1/orgs/%s/settings", org);
  static const struct {
    const char *body;
    const char *in_message;
  } cases[] = {
    {"{\"lockout_threshold\":5,\"nope\":1}", "\"nope\""},
    {"{\"lockout_threshold\":\"5\"}", "lockout_threshold"},
    {"{\"lockout_threshold\":0}", "lockout_threshold"},
    {"{\"lockout_threshold\":101}", "lockout_threshold"},
    {"{\"lockout_threshold\":3.5}", "lockout_threshold"},
    {"{\"idle_logout_minutes\":5,\"lockout_minutes\":-1}", "lockout_minutes"},
    {"{\"password_policy\":\"weak\"}", "password_policy"},
    {"{\"password_policy\":\"KCPS\"}", "password_policy"},
    {"{\"lockout_scope\":null}", "lockout_scope"},
    {"{\"mfa_email\":1}", "mfa_email"},
    {"{\"desktop_idle_logout_minutes\":43201}", "desktop_idle_logout_minutes"},
    {"{\"idle_logout_minutes\":{\"a\":1}}", "idle_logout_minutes"},
    {"{\"idle_logout_minutes\":5,\"x'; DROP TABLE org_settings; --\":1}", "DROP"},
    {"{}", "no setting"},
    {"[1]", NULL},
    {"{\"lockout_threshold\":", NULL},
  };
  gint64 rows = kcps__server_db_count_rows(sfx.server, "org_settings");
  gint64 audit = kcps__server_db_count_rows(sfx.server, "audit");
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(JsonNode) answer = NULL;
    long status = sfx_call_raw("PATCH", path, admin, cases[i].body, -1, NULL, NULL, &answer);
    sfx_expect_error(status, answer, 400, "bad_request", cases[i].in_message);
  }
  /* Nothing stored changed, nothing audited. */
  ck_assert_int_eq(kcps__server_db_count_rows(sfx.server, "org_settings"), rows);
  ck_assert_int_eq(kcps__server_db_count_rows(sfx.server, "audit"), audit);
  g_autoptr(JsonNode) got = NULL;
  ck_assert_int_eq(sfx_call("GET", path, admin, NULL, &got), 200);
  ck_assert_int_eq(sfx_int(got, "lockout_threshold"), 3);
  ck_assert_int_eq(sfx_int(got, "idle_logout_minutes"), 30);
}
END_TEST

/* default_spool_mode (issue 5): kcpsd's spool mode for users who chose
 * none; set on a provider it applies to its customers until they set their
 * own; every user sees her organization's value in /me/policy. */
START_TEST(test_default_spool_mode)
{
  sfx_add_user("Sales A", "pa@s.test", "provider_admin", "Provider-Admin-1");
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);
  g_autofree char *admin = sfx_login("admin@a.test", sfx.admin_pw);
  g_autofree char *pa = sfx_login("pa@s.test", "Provider-Admin-1");
  g_autofree char *org = sfx_org_public_id("Customer A");
  g_autofree char *sales = sfx_org_public_id("Sales A");
  g_autofree char *path = g_strdup_printf("/api/v1/orgs/%s/settings", org);
  g_autofree char *sales_path = g_strdup_printf("/api/v1/orgs/%s/settings", sales);

  g_autoptr(JsonNode) p0 = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/me/policy", alice, NULL, &p0), 200);
  ck_assert_str_eq(sfx_str(p0, "default_spool_mode"), "local");
  ck_assert(!json_object_get_boolean_member(json_node_get_object(p0), "default_spool_mode_set"));

  /* Inherited from the provider. */
  ck_assert_int_eq(sfx_call("PATCH", sales_path, pa, "{\"default_spool_mode\":\"cloud\"}", NULL),
                   200);
  g_autoptr(JsonNode) p1 = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/me/policy", alice, NULL, &p1), 200);
  ck_assert_str_eq(sfx_str(p1, "default_spool_mode"), "cloud");
  ck_assert(json_object_get_boolean_member(json_node_get_object(p1), "default_spool_mode_set"));
  g_autoptr(JsonNode) s1 = NULL;
  ck_assert_int_eq(sfx_call("GET", path, admin, NULL, &s1), 200);
  ck_assert_str_eq(sfx_str(s1, "default_spool_mode"), "cloud");

  /* The customer's own value wins. */
  ck_assert_int_eq(sfx_call("PATCH", path, admin, "{\"default_spool_mode\":\"local\"}", NULL),
                   200);
  g_autoptr(JsonNode) p2 = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/me/policy", alice, NULL, &p2), 200);
  ck_assert_str_eq(sfx_str(p2, "default_spool_mode"), "local");

  /* Only the two names; a user cannot set it. */
  static const char *const bad[] = {"{\"default_spool_mode\":\"Cloud\"}",
                                    "{\"default_spool_mode\":null}",
                                    "{\"default_spool_mode\":1}"};
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(JsonNode) answer = NULL;
    long status = sfx_call("PATCH", path, admin, bad[i], &answer);
    sfx_expect_error(status, answer, 400, "bad_request", "default_spool_mode");
  }
  g_autoptr(JsonNode) denied = NULL;
  long status = sfx_call("PATCH", path, alice, "{\"default_spool_mode\":\"cloud\"}", &denied);
  sfx_expect_error(status, denied, 403, "forbidden", NULL);
  g_autoptr(JsonNode) p3 = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/me/policy", alice, NULL, &p3), 200);
  ck_assert_str_eq(sfx_str(p3, "default_spool_mode"), "local");
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("server-policy");
  struct {
    const char *name;
    const TTest *tests[12];
  } cases[] = {
    {"passwords", {test_kcps_rules, test_nist_rules, test_password_change,
                   test_password_change_refused}},
    {"lockout", {test_lockout_after_three, test_lockout_settings, test_success_resets,
                 test_other_factors_count, test_unknown_bounded, test_refused_alike,
                 test_storm_writes_nothing, test_account_source, test_unknown_email_locks}},
    {"sessions", {test_idle_web, test_idle_desktop, test_refresh_rotation,
                  test_refresh_expiry_and_logout, test_refresh_bad_bodies}},
    {"settings", {test_settings_routes, test_settings_refused, test_default_spool_mode}},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    TCase *tc = tcase_create(cases[i].name);
    tcase_add_checked_fixture(tc, sfx_setup, sfx_teardown);
    for (size_t j = 0; j < G_N_ELEMENTS(cases[i].tests) && cases[i].tests[j]; j++)
      tcase_add_test(tc, cases[i].tests[j]);
    suite_add_tcase(s, tc);
  }
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
