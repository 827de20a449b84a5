/* Email MFA (white paper 4.6) against a real SMTP server on loopback
 * (tests/smtp/sink.py, aiosmtpd): the code is read from the mail the
 * server sent and completes the login. */
#include "server-fixture.h"

#include "common/tls.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PYTHON "/usr/bin/python3"
#define SOURCE "127.0.0.1"

/* The mail sink ---------------------------------------------------------- */

typedef struct {
  GPid pid;
  int in_fd;  /* its stdin: closing it ends the sink, also if this test dies */
  int port;
  char *dir;  /* N.eml and N.env of each message accepted */
} sink_t;

/* tests/smtp/sink.py: KCPS_TEST_SMTP_SINK, or beside this source file
 * (__FILE__ is relative to the build folder, where meson test runs). */
static char *
sink_script(void)
{
  const char *env = g_getenv("KCPS_TEST_SMTP_SINK");
  if (env && *env)
    return g_strdup(env);
  g_autofree char *dir = g_path_get_dirname(__FILE__);
  return g_build_filename(dir, "smtp", "sink.py", NULL);
}

/* Starts the sink and waits for its "ready PORT" line. */
static sink_t *
sink_start(const char *flag, const char *cert, const char *key)
{
  static int serial;
  sink_t *s = g_new0(sink_t, 1);
  s->dir = g_strdup_printf("%s/mail-%d", sfx.tmp, ++serial);
  ck_assert_int_eq(g_mkdir_with_parents(s->dir, 0700), 0);
  g_autofree char *script = sink_script();
  ck_assert_msg(g_file_test(script, G_FILE_TEST_EXISTS),
                "SMTP sink %s not found (run from the build folder or set KCPS_TEST_SMTP_SINK)",
                script);
  ck_assert_msg(g_file_test(PYTHON, G_FILE_TEST_IS_EXECUTABLE), PYTHON " is missing");
  GPtrArray *argv = g_ptr_array_new();
  g_ptr_array_add(argv, (char *)PYTHON);
  g_ptr_array_add(argv, script);
  g_ptr_array_add(argv, (char *)"--dir");
  g_ptr_array_add(argv, s->dir);
  if (flag)
    g_ptr_array_add(argv, (char *)flag);
  if (cert) {
    g_ptr_array_add(argv, (char *)"--cert");
    g_ptr_array_add(argv, (char *)cert);
    g_ptr_array_add(argv, (char *)"--key");
    g_ptr_array_add(argv, (char *)key);
  }
  g_ptr_array_add(argv, NULL);
  int out_fd = -1;
  g_autoptr(GError) error = NULL;
  bool ok = g_spawn_async_with_pipes(NULL, (char **)argv->pdata, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
                                     NULL, NULL, &s->pid, &s->in_fd, &out_fd, NULL, &error);
  g_ptr_array_free(argv, TRUE);
  ck_assert_msg(ok, "cannot start the SMTP sink: %s", error ? error->message : "?");

  /* Blocks until the line comes or the sink dies (EOF). */
  FILE *out = fdopen(out_fd, "r");
  char line[64] = "";
  bool got = out && fgets(line, sizeof line, out);
  if (out)
    fclose(out);
  ck_assert_msg(got && sscanf(line, "ready %d", &s->port) == 1 && s->port > 0,
                "SMTP sink: got \"%s\", expected \"ready PORT\" (is python3-aiosmtpd installed?)",
                got ? line : "(no line)");
  return s;
}

static void
sink_stop(sink_t *s)
{
  if (!s)
    return;
  close(s->in_fd);
  kill(s->pid, SIGTERM);
  int status;
  while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR)
    ;
  g_spawn_close_pid(s->pid);
  g_free(s->dir);
  g_free(s);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(sink_t, sink_stop)

static int
sink_count(const sink_t *s)
{
  int n = 0;
  for (;;) {
    g_autofree char *path = g_strdup_printf("%s/%d.eml", s->dir, n + 1);
    if (!g_file_test(path, G_FILE_TEST_EXISTS))
      return n;
    n++;
  }
}

/* Message n (from 1) of the sink, ext "eml" or "env"; g_free. */
static char *
sink_read(const sink_t *s, int n, const char *ext)
{
  g_autofree char *path = g_strdup_printf("%s/%d.%s", s->dir, n, ext);
  char *text = NULL;
  ck_assert_msg(g_file_get_contents(path, &text, NULL, NULL), "no mail %s", path);
  return text;
}

/* The code in a mail's body: its one run of digits, which must be six
 * long; into out. */
static void
mail_code(const char *mail, char out[7])
{
  const char *body = strstr(mail, "\r\n\r\n");
  ck_assert_msg(body != NULL, "mail has no header/body separator");
  int runs = 0;
  for (const char *p = body; *p;) {
    size_t n = strspn(p, "0123456789");
    if (n == 0) {
      p++;
      continue;
    }
    if (n == 6)
      memcpy(out, p, 6);
    ck_assert_msg(n == 6 || n == 1, "digit run of %zu in the body, expected the 6-digit code", n);
    runs += n == 6;
    p += n;
  }
  out[6] = '\0';
  ck_assert_msg(runs == 1, "got %d 6-digit codes in the mail body, expected 1", runs);
}

/* Server set-up ------------------------------------------------------- */

static char relay_url[64];

/* Restarts the server with the sink as its relay (NULL: none). */
static void
use_relay(const sink_t *s, const char *ca)
{
  if (s)
    g_snprintf(relay_url, sizeof relay_url, "smtp://127.0.0.1:%d", s->port);
  sfx.config.smtp_url = s ? relay_url : NULL;
  sfx.config.smtp_from = "mfa@kcps.test";
  sfx.config.smtp_ca_file = ca;
  sfx_restart();
}

/* Sets mfa_email on the organization named (the settings route is
 * tested with the orgs). */
static void
set_mfa(const char *org, bool on)
{
  gint64 id = sfx_org_id(org);
  ck_assert_msg(id > 0, "no organization %s", org);
  g_autoptr(JsonNode) value = json_node_new(JSON_NODE_VALUE);
  json_node_set_boolean(value, on);
  g_autoptr(GError) error = NULL;
  g_mutex_lock(&sfx.server->lock);
  bool ok = kcps__server_setting_store_locked(sfx.server, id, "mfa_email", value, &error);
  g_mutex_unlock(&sfx.server->lock);
  ck_assert_msg(ok, "mfa_email on %s: %s", org, error ? error->message : "?");
}

static gint64
query_int(const char *sql, const char *arg)
{
  g_mutex_lock(&sfx.server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(sfx.server, sql, NULL);
  gint64 v = -1;
  if (stmt) {
    if (arg)
      sqlite3_bind_text(stmt, 1, arg, -1, SQLITE_TRANSIENT);
    if (kcps__server_db_step(sfx.server, stmt, NULL) == SQLITE_ROW)
      v = sqlite3_column_int64(stmt, 0);
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&sfx.server->lock);
  ck_assert_msg(v >= 0, "query failed: %s", sql);
  return v;
}

static void
exec_sql(const char *sql)
{
  g_autoptr(GError) error = NULL;
  g_mutex_lock(&sfx.server->lock);
  bool ok = kcps__server_db_exec(sfx.server, sql, &error);
  g_mutex_unlock(&sfx.server->lock);
  ck_assert_msg(ok, "%s: %s", sql, error ? error->message : "?");
}

static gint64
user_id(const char *email)
{
  return query_int("SELECT id FROM users WHERE email = ?", email);
}

static gint64
audit_count(const char *event)
{
  return query_int("SELECT count(*) FROM audit WHERE event = ?", event);
}

static gint64
sessions(void)
{
  return kcps__server_db_count_rows(sfx.server, "sessions");
}

static gint64
attempts(void)
{
  return kcps__server_db_count_rows(sfx.server, "mfa_attempts");
}

static long
login(const char *email, const char *password, JsonNode **answer)
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
  return sfx_call("POST", "/api/v1/login", NULL, body, answer);
}

/* Logs alice in up to the code: asserts the MFA answer and one more mail;
 * the mfa_token (g_free) and the mailed code. */
static char *
begin(const sink_t *s, const char *email, const char *password, char code[7])
{
  int before = sink_count(s);
  g_autoptr(JsonNode) answer = NULL;
  long status = login(email, password, &answer);
  ck_assert_msg(status == 200, "login %s: got %ld (%s), expected 200", email, status,
                sfx_str(answer, "message") ? sfx_str(answer, "message") : "-");
  JsonNode *required = sfx_member(answer, "mfa_required");
  ck_assert_msg(required && JSON_NODE_HOLDS_VALUE(required) && json_node_get_boolean(required),
                "login %s: mfa_required is missing or false", email);
  ck_assert_msg(sfx_member(answer, "token") == NULL, "login %s: a token before the code", email);
  ck_assert_msg(sfx_int(answer, "expires_in") == 300, "expires_in: got %" G_GINT64_FORMAT
                ", expected 300", sfx_int(answer, "expires_in"));
  const char *token = sfx_str(answer, "mfa_token");
  ck_assert_msg(token && strlen(token) >= 22, "login %s: no usable mfa_token", email);
  ck_assert_msg(sink_count(s) == before + 1, "mails: got %d, expected %d", sink_count(s),
                before + 1);
  g_autofree char *mail = sink_read(s, before + 1, "eml");
  mail_code(mail, code);
  return g_strdup(token);
}

static long
verify(const char *token, const char *code, JsonNode **answer)
{
  g_autofree char *body =
      g_strdup_printf("{\"mfa_token\":\"%s\",\"code\":\"%s\"}", token, code);
  return sfx_call("POST", "/api/v1/login/mfa", NULL, body, answer);
}

/* A code that is not `code` (same length). */
static void
other_code(const char *code, char out[7])
{
  for (int i = 0; i < 6; i++)
    out[i] = (char)('0' + (code[i] - '0' + 1) % 10);
  out[6] = '\0';
}

/* Asserts the one refusal answer every failed code gets. */
static void
expect_refused(const char *token, const char *code, const char *what)
{
  g_autoptr(JsonNode) answer = NULL;
  long status = verify(token, code, &answer);
  ck_assert_msg(status == 401, "%s: got %ld, expected 401", what, status);
  ck_assert_msg(g_strcmp0(sfx_str(answer, "error"), "invalid_code") == 0 &&
                    g_strcmp0(sfx_str(answer, "message"),
                              "the code is wrong or no longer valid") == 0,
                "%s: got %s / %s, expected the one refusal body", what, sfx_str(answer, "error"),
                sfx_str(answer, "message"));
  ck_assert_msg(sfx_member(answer, "token") == NULL, "%s: a token in a refusal", what);
}

/* Asserts the answer to a code of a locked account: 401 account_locked
 * with the time to retry (the caller knew the password). */
static void
expect_locked(const char *token, const char *code, const char *what)
{
  g_autoptr(JsonNode) answer = NULL;
  long status = verify(token, code, &answer);
  ck_assert_msg(status == 401, "%s: got %ld, expected 401", what, status);
  ck_assert_msg(g_strcmp0(sfx_str(answer, "error"), "account_locked") == 0,
                "%s: got %s (%s), expected account_locked", what, sfx_str(answer, "error"),
                sfx_str(answer, "message"));
  gint64 after = sfx_int(answer, "retry_after");
  ck_assert_msg(after >= 30 * 60 - 5 && after <= 30 * 60,
                "%s: retry_after got %" G_GINT64_FORMAT ", expected about 1800", what, after);
  ck_assert_msg(sfx_str(answer, "retry_at") != NULL, "%s: no retry_at", what);
  ck_assert_msg(sfx_member(answer, "token") == NULL, "%s: a token in a refusal", what);
}

/* Asserts the code completes the login; the session token (g_free). */
static char *
expect_session(const char *token, const char *code, const char *email)
{
  g_autoptr(JsonNode) answer = NULL;
  long status = verify(token, code, &answer);
  ck_assert_msg(status == 200, "code: got %ld (%s), expected 200", status,
                sfx_str(answer, "message") ? sfx_str(answer, "message") : "-");
  const char *session = sfx_str(answer, "token");
  ck_assert_msg(session != NULL, "no session token after the right code");
  g_autoptr(JsonNode) me = NULL;
  ck_assert_int_eq(sfx_call("GET", "/api/v1/me", session, NULL, &me), 200);
  ck_assert_msg(g_strcmp0(sfx_str(me, "email"), email) == 0, "me: got %s, expected %s",
                sfx_str(me, "email"), email);
  return g_strdup(session);
}

/* Does the lockout of the policy feature lock yet? (It is a stub until
 * that feature lands; the lockout assertions wait for it.) */
static bool
lockout_works(void)
{
  gint64 probe = sfx_add_user("Customer A", "probe@a.test", "customer_user", "Aa1!probe");
  g_mutex_lock(&sfx.server->lock);
  for (int i = 0; i < 3; i++)
    kcps__server_lockout_failed_locked(sfx.server, probe, SOURCE);
  bool locked = kcps__server_lockout_locked(sfx.server, probe, SOURCE);
  g_mutex_unlock(&sfx.server->lock);
  if (!locked)
    fprintf(stderr, "note: lockout is not implemented yet; lockout assertions skipped\n");
  return locked;
}

/* Tests ------------------------------------------------------------------ */

START_TEST(test_off_plain_login)
{
  g_autoptr(sink_t) s = sink_start(NULL, NULL, NULL);
  use_relay(s, NULL);
  g_autofree char *token = sfx_login("alice@a.test", sfx.alice_pw);
  ck_assert_msg(sink_count(s) == 0, "mails: got %d, expected 0 with MFA off", sink_count(s));
  ck_assert_int_eq(attempts(), 0);
}
END_TEST

START_TEST(test_on_code_completes_login)
{
  g_autoptr(sink_t) s = sink_start(NULL, NULL, NULL);
  use_relay(s, NULL);
  set_mfa("Customer A", true);
  gint64 before = sessions();
  char code[7];
  g_autofree char *token = begin(s, "alice@a.test", sfx.alice_pw, code);
  ck_assert_msg(sessions() == before, "sessions: got %" G_GINT64_FORMAT ", expected %"
                G_GINT64_FORMAT " before the code", sessions(), before);
  ck_assert_int_eq(audit_count("mfa.sent"), 1);
  g_autofree char *session = expect_session(token, code, "alice@a.test");
  ck_assert_int_eq(attempts(), 0);
}
END_TEST

/* Provider portal and customer portal alike; the setting is per
 * organization and inherited downwards until set again. */
START_TEST(test_per_organization)
{
  g_autoptr(sink_t) s = sink_start(NULL, NULL, NULL);
  use_relay(s, NULL);
  sfx_add_user("Sales A", "prov@a.test", "provider_admin", "Aa1!provider");
  set_mfa("Sales A", true);
  set_mfa("Customer A", false);
  char code[7];
  g_autofree char *token = begin(s, "prov@a.test", "Aa1!provider", code);
  g_autofree char *session = expect_session(token, code, "prov@a.test");
  g_autofree char *alice = sfx_login("alice@a.test", sfx.alice_pw);

  /* Customer A inherits Sales A's setting once its own is gone. */
  exec_sql("DELETE FROM org_settings WHERE key = 'mfa_email' AND org_id ="
           " (SELECT id FROM orgs WHERE name = 'Customer A')");
  g_autofree char *token2 = begin(s, "alice@a.test", sfx.alice_pw, code);
  g_autofree char *session2 = expect_session(token2, code, "alice@a.test");
}
END_TEST

static GString *logged;
static GLogWriterOutput
log_writer(GLogLevelFlags level, const GLogField *fields, gsize n, gpointer data)
{
  for (gsize i = 0; i < n; i++)
    if (g_strcmp0(fields[i].key, "MESSAGE") == 0)
      g_string_append_printf(logged, "%s\n", (const char *)fields[i].value);
  return g_log_writer_default(level, fields, n, data);
}

START_TEST(test_mail_and_secrecy)
{
  logged = g_string_new(NULL);
  g_log_set_writer_func(log_writer, NULL, NULL);
  g_autoptr(sink_t) s = sink_start(NULL, NULL, NULL);
  use_relay(s, NULL);
  set_mfa("Customer A", true);
  char code[7];
  g_autofree char *token = begin(s, "alice@a.test", sfx.alice_pw, code);
  g_autofree char *mail = sink_read(s, 1, "eml");
  g_autofree char *env = sink_read(s, 1, "env");

  /* Envelope, then the RFC 5322 header fields. */
  ck_assert_msg(strstr(env, "from: mfa@kcps.test\n") && strstr(env, "to: alice@a.test\n"),
                "envelope: got %s", env);
  g_autofree char *head = g_strndup(mail, (gsize)(strstr(mail, "\r\n\r\n") - mail));
  g_auto(GStrv) lines = g_strsplit(head, "\r\n", -1);
  const char *want[] = {"Date: ", "From: mfa@kcps.test", "To: alice@a.test", "Subject: ",
                        "Message-ID: <", "MIME-Version: 1.0",
                        "Content-Type: text/plain; charset=UTF-8"};
  for (size_t w = 0; w < G_N_ELEMENTS(want); w++) {
    bool found = false;
    for (char **l = lines; *l && !found; l++)
      found = g_str_has_prefix(*l, want[w]);
    ck_assert_msg(found, "header \"%s\" missing in:\n%s", want[w], head);
  }
  for (char **l = lines; *l; l++) {
    ck_assert_msg(!strchr(*l, '\n') && !strchr(*l, '\r'), "bare CR or LF in a header line");
    if (g_str_has_prefix(*l, "Date: "))
      ck_assert_msg(g_regex_match_simple("^Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), \\d\\d "
                                         "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                                         "\\d{4} \\d\\d:\\d\\d:\\d\\d \\+0000$",
                                         *l, 0, 0),
                    "not an RFC 5322 date: %s", *l);
    if (g_str_has_prefix(*l, "Message-ID: "))
      ck_assert_msg(g_regex_match_simple("^Message-ID: <[A-Za-z0-9_-]+@kcps\\.test>$", *l, 0, 0),
                    "not a Message-ID: %s", *l);
  }
  ck_assert_msg(strstr(head, code) == NULL, "the code is in a header");
  ck_assert_msg(strstr(mail, "5 minutes") != NULL, "the mail does not say how long it is valid");
  ck_assert_msg(strlen(code) == 6 && strspn(code, "0123456789") == 6, "code %s: not 6 digits",
                code);

  /* The code is nowhere else: not in the audit log, not stored, not logged. */
  gint64 hits = query_int("SELECT count(*) FROM audit WHERE instr(event || ' ' ||"
                          " coalesce(subject, '') || ' ' || coalesce(source, '') || ' ' ||"
                          " coalesce(detail, ''), ?) > 0",
                          code);
  ck_assert_msg(hits == 0, "the code is in %" G_GINT64_FORMAT " audit entries", hits);
  hits = query_int("SELECT count(*) FROM mfa_attempts WHERE instr(token_hash || code_hmac ||"
                   " source || client, ?) > 0",
                   code);
  ck_assert_msg(hits == 0, "the code is stored in the clear");
  hits = query_int("SELECT count(*) FROM mfa_attempts WHERE token_hash = ?", token);
  ck_assert_msg(hits == 0, "the mfa_token is stored in the clear");
  char wrong[7];
  other_code(code, wrong);
  expect_refused(token, wrong, "wrong code");
  g_autofree char *session = expect_session(token, code, "alice@a.test");
  ck_assert_msg(strstr(logged->str, code) == NULL, "the code is in the log:\n%s", logged->str);
  ck_assert_msg(strstr(logged->str, token) == NULL, "the mfa_token is in the log");
}
END_TEST

START_TEST(test_wrong_code)
{
  g_autoptr(sink_t) s = sink_start(NULL, NULL, NULL);
  use_relay(s, NULL);
  set_mfa("Customer A", true);
  char code[7], wrong[7];
  g_autofree char *token = begin(s, "alice@a.test", sfx.alice_pw, code);
  other_code(code, wrong);
  gint64 before = sessions();
  expect_refused(token, wrong, "wrong code");
  ck_assert_int_eq(sessions(), before);
  ck_assert_int_eq(audit_count("mfa.failed"), 1);
  /* One wrong code does not end the attempt. */
  g_autofree char *session = expect_session(token, code, "alice@a.test");
}
END_TEST

/* Threshold wrong codes (lockout_threshold, 3) end the attempt and, through
 * the lockout, lock the account. */
START_TEST(test_wrong_codes_lock)
{
  g_autoptr(sink_t) s = sink_start(NULL, NULL, NULL);
  use_relay(s, NULL);
  set_mfa("Customer A", true);
  char code[7], wrong[7];
  g_autofree char *token = begin(s, "alice@a.test", sfx.alice_pw, code);
  other_code(code, wrong);
  for (int i = 0; i < 2; i++)
    expect_refused(token, wrong, "wrong code");
  /* The failure that locks says so at once. */
  expect_locked(token, wrong, "third wrong code");
  ck_assert_int_eq(audit_count("mfa.failed"), 3);
  ck_assert_int_eq(attempts(), 0);
  expect_refused(token, code, "right code after 3 wrong ones");
  if (lockout_works()) {
    gint64 alice = user_id("alice@a.test");
    g_mutex_lock(&sfx.server->lock);
    bool locked = kcps__server_lockout_locked(sfx.server, alice, SOURCE);
    g_mutex_unlock(&sfx.server->lock);
    ck_assert_msg(locked, "3 wrong codes: alice not locked, expected locked");
  }
}
END_TEST

START_TEST(test_locked_account_refused)
{
  g_autoptr(sink_t) s = sink_start(NULL, NULL, NULL);
  use_relay(s, NULL);
  set_mfa("Customer A", true);
  if (!lockout_works())
    return;
  char code[7];
  g_autofree char *token = begin(s, "alice@a.test", sfx.alice_pw, code);
  gint64 alice = user_id("alice@a.test");
  g_mutex_lock(&sfx.server->lock);
  for (int i = 0; i < 3; i++)
    kcps__server_lockout_failed_locked(sfx.server, alice, SOURCE);
  g_mutex_unlock(&sfx.server->lock);
  gint64 before = sessions();
  expect_locked(token, code, "right code of a locked account");
  ck_assert_int_eq(sessions(), before);
}
END_TEST

START_TEST(test_code_single_use)
{
  g_autoptr(sink_t) s = sink_start(NULL, NULL, NULL);
  use_relay(s, NULL);
  set_mfa("Customer A", true);
  char code[7];
  g_autofree char *token = begin(s, "alice@a.test", sfx.alice_pw, code);
  g_autofree char *session = expect_session(token, code, "alice@a.test");
  gint64 before = sessions();
  expect_refused(token, code, "code used again");
  ck_assert_int_eq(sessions(), before);
}
END_TEST

START_TEST(test_code_expires)
{
  g_autoptr(sink_t) s = sink_start(NULL, NULL, NULL);
  use_relay(s, NULL);
  set_mfa("Customer A", true);
  char code[7], late_code[7];
  g_autofree char *token = begin(s, "alice@a.test", sfx.alice_pw, code);
  g_autofree char *late = begin(s, "alice@a.test", sfx.alice_pw, late_code);
  /* Near the end of the 300 s, with room for the real seconds a loaded
   * machine spends between the mail and this call. */
  sfx_skew_clock(290);
  g_autofree char *session = expect_session(token, code, "alice@a.test");
  sfx_skew_clock(301);
  expect_refused(late, late_code, "code after 301 s");
}
END_TEST

/* Each code belongs to its attempt: not to another one of the same user,
 * nor to its own attempt from another address. */
START_TEST(test_code_bound_to_attempt)
{
  g_autoptr(sink_t) s = sink_start(NULL, NULL, NULL);
  use_relay(s, NULL);
  set_mfa("Customer A", true);
  char code_a[7], code_b[7];
  g_autofree char *a = begin(s, "alice@a.test", sfx.alice_pw, code_a);
  g_autofree char *b = begin(s, "alice@a.test", sfx.alice_pw, code_b);
  while (strcmp(code_a, code_b) == 0) { /* one time in a million */
    g_free(b);
    b = begin(s, "alice@a.test", sfx.alice_pw, code_b);
  }
  expect_refused(b, code_a, "code of attempt A on attempt B");
  expect_refused(a, code_b, "code of attempt B on attempt A");
  g_autofree char *session_b = expect_session(b, code_b, "alice@a.test");

  /* The attempt as if it had come from elsewhere. */
  exec_sql("UPDATE mfa_attempts SET source = '192.0.2.7'");
  expect_refused(a, code_a, "right code from another address");
}
END_TEST

/* The desktop client's login keeps its kind through the code step: the
 * session is a desktop one (with its refresh token). */
START_TEST(test_desktop_client)
{
  g_autoptr(sink_t) s = sink_start(NULL, NULL, NULL);
  use_relay(s, NULL);
  set_mfa("Customer A", true);
  g_autofree char *body = g_strdup_printf(
      "{\"email\":\"alice@a.test\",\"password\":\"%s\",\"client\":\"desktop\"}", sfx.alice_pw);
  g_autoptr(JsonNode) answer = NULL;
  long status = sfx_call("POST", "/api/v1/login", NULL, body, &answer);
  ck_assert_msg(status == 200 && sfx_str(answer, "mfa_token"), "desktop login: got %ld", status);
  ck_assert_int_eq(query_int("SELECT count(*) FROM mfa_attempts WHERE client = ?", "desktop"), 1);
  char code[7];
  g_autofree char *mail = sink_read(s, 1, "eml");
  mail_code(mail, code);
  g_autoptr(JsonNode) done = NULL;
  status = verify(sfx_str(answer, "mfa_token"), code, &done);
  ck_assert_msg(status == 200, "desktop code: got %ld, expected 200", status);
  ck_assert_msg(sfx_str(done, "token") && sfx_str(done, "refresh_token"),
                "desktop session: token %s, refresh_token %s, expected both",
                sfx_str(done, "token") ? "present" : "missing",
                sfx_str(done, "refresh_token") ? "present" : "missing");
}
END_TEST

START_TEST(test_only_newest_attempts_live)
{
  g_autoptr(sink_t) s = sink_start(NULL, NULL, NULL);
  use_relay(s, NULL);
  set_mfa("Customer A", true);
  char first_code[7], code[7];
  g_autofree char *first = begin(s, "alice@a.test", sfx.alice_pw, first_code);
  for (int i = 0; i < 5; i++) {
    g_autofree char *t = begin(s, "alice@a.test", sfx.alice_pw, code);
  }
  ck_assert_int_eq(attempts(), 5);
  expect_refused(first, first_code, "code of an attempt pushed out by 5 newer ones");
}
END_TEST

START_TEST(test_disabled_user_refused)
{
  g_autoptr(sink_t) s = sink_start(NULL, NULL, NULL);
  use_relay(s, NULL);
  set_mfa("Customer A", true);
  char code[7];
  g_autofree char *token = begin(s, "alice@a.test", sfx.alice_pw, code);
  exec_sql("UPDATE users SET active = 0 WHERE email = 'alice@a.test'");
  expect_refused(token, code, "code of a disabled user");
}
END_TEST

static void
expect_unavailable(const char *what)
{
  gint64 before = sessions();
  g_autoptr(JsonNode) answer = NULL;
  long status = login("alice@a.test", sfx.alice_pw, &answer);
  ck_assert_msg(status == 503, "%s: got %ld, expected 503", what, status);
  sfx_expect_error(status, answer, 503, "mail_unavailable", NULL);
  ck_assert_msg(sfx_member(answer, "token") == NULL && sfx_member(answer, "mfa_token") == NULL,
                "%s: a token in the answer", what);
  ck_assert_int_eq(sessions(), before);
  ck_assert_msg(attempts() == 0, "%s: an attempt was left behind", what);
  ck_assert_int_ge(audit_count("mfa.mail_failed"), 1);
}

START_TEST(test_no_relay)
{
  use_relay(NULL, NULL);
  set_mfa("Customer A", true);
  expect_unavailable("no relay configured");
}
END_TEST

START_TEST(test_relay_down_or_refusing)
{
  sink_t *gone = sink_start(NULL, NULL, NULL);
  use_relay(gone, NULL);
  set_mfa("Customer A", true);
  sink_stop(gone);
  expect_unavailable("relay down");

  g_autoptr(sink_t) refusing = sink_start("--refuse", NULL, NULL);
  use_relay(refusing, NULL);
  expect_unavailable("relay refusing the recipient");
  ck_assert_int_eq(sink_count(refusing), 0);
}
END_TEST

/* A relay offering STARTTLS: used, and its certificate verified. */
START_TEST(test_starttls_verified)
{
  g_autofree char *cert = g_build_filename(sfx.tmp, "relay.crt", NULL);
  g_autofree char *key = g_build_filename(sfx.tmp, "relay.key", NULL);
  const char *names[] = {"127.0.0.1", NULL};
  g_autoptr(GError) error = NULL;
  ck_assert_msg(kcps_tls_ensure_self_signed(cert, key, names, &error), "relay cert: %s",
                error ? error->message : "?");
  g_autoptr(sink_t) s = sink_start(NULL, cert, key);

  /* Trusted through --smtp-ca: the mail goes over TLS. */
  use_relay(s, cert);
  set_mfa("Customer A", true);
  char code[7];
  g_autofree char *token = begin(s, "alice@a.test", sfx.alice_pw, code);
  g_autofree char *env = sink_read(s, 1, "env");
  ck_assert_msg(strstr(env, "tls: yes\n") != NULL, "mail not sent over STARTTLS: %s", env);
  g_autofree char *session = expect_session(token, code, "alice@a.test");

  /* An untrusted certificate: no mail, 503. */
  g_autofree char *other = g_strdup(sfx.ca); /* the HTTPS server's own, not the relay's */
  use_relay(s, other);
  expect_unavailable("relay with an untrusted certificate");
  ck_assert_int_eq(sink_count(s), 1);
}
END_TEST

static const char *
own_printf(GPtrArray *own, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* A formatted string kept in own (freed with it). */
static const char *
own_printf(GPtrArray *own, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *text = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_ptr_array_add(own, text);
  return text;
}

/* Each bad body: 400 naming the field; nothing counted or stored. */
START_TEST(test_bad_input)
{
  g_autoptr(sink_t) s = sink_start(NULL, NULL, NULL);
  use_relay(s, NULL);
  set_mfa("Customer A", true);
  char code[7];
  g_autofree char *token = begin(s, "alice@a.test", sfx.alice_pw, code);
  g_autofree char *long_token = g_strnfill(129, 'A');
  g_autofree char *ok_token = g_strdup_printf("\"mfa_token\":\"%s\"", token);
  g_autofree char *ok_code = g_strdup_printf("\"code\":\"%s\"", code);
  g_autoptr(GPtrArray) own = g_ptr_array_new_with_free_func(g_free);
  struct {
    const char *body;
    const char *message;
  } cases[] = {
    {"{}", "missing field \"mfa_token\""},
    {own_printf(own, "{%s}", ok_token), "missing field \"code\""},
    {own_printf(own, "{%s,%s,\"extra\":1}", ok_token, ok_code), "unknown field \"extra\""},
    {own_printf(own, "{\"mfa_token\":5,%s}", ok_code), "field \"mfa_token\" must be a string"},
    {own_printf(own, "{\"mfa_token\":null,%s}", ok_code), "field \"mfa_token\" must be a string"},
    {own_printf(own, "{\"mfa_token\":\"\",%s}", ok_code), "field \"mfa_token\" must be 1 to 128"},
    {own_printf(own, "{\"mfa_token\":\"%s\",%s}", long_token, ok_code),
     "field \"mfa_token\" must be 1 to 128"},
    {own_printf(own, "{\"mfa_token\":\"../x'; DROP TABLE users;--\",%s}", ok_code),
     "field \"mfa_token\" must be the mfa_token"},
    {own_printf(own, "{\"mfa_token\":\"a\\u0001b\",%s}", ok_code),
     "field \"mfa_token\" must not contain control characters"},
    {own_printf(own, "{%s,\"code\":123456}", ok_token), "field \"code\" must be a string"},
    {own_printf(own, "{%s,\"code\":[\"1\"]}", ok_token), "field \"code\" must be a string"},
    {own_printf(own, "{%s,\"code\":\"12345\"}", ok_token), "field \"code\" must be a string of 6"},
    {own_printf(own, "{%s,\"code\":\"1234567\"}", ok_token),
     "field \"code\" must be a string of 6"},
    {own_printf(own, "{%s,\"code\":\"12a456\"}", ok_token), "field \"code\" must be a string of 6"},
    {own_printf(own, "{%s,\"code\":\"\"}", ok_token), "field \"code\""},
    {own_printf(own, "{%s,\"code\":\"%s\"}", ok_token, long_token), "field \"code\""},
    {own_printf(own, "{%s,\"code\":\"12345\\u0000\"}", ok_token), NULL},
    {"[1,2]", NULL},
    {"{\"mfa_token\":", NULL},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(JsonNode) answer = NULL;
    long status = sfx_call_raw("POST", "/api/v1/login/mfa", NULL, cases[i].body, -1, NULL, NULL,
                               &answer);
    ck_assert_msg(status == 400, "case %zu %s: got %ld, expected 400", i, cases[i].body, status);
    sfx_expect_error(status, answer, 400, "bad_request", cases[i].message);
  }
  /* Not UTF-8. */
  const char raw[] = "{\"mfa_token\":\"\xff\xfe\",\"code\":\"123456\"}";
  g_autoptr(JsonNode) answer = NULL;
  long status = sfx_call_raw("POST", "/api/v1/login/mfa", NULL, raw, -1, NULL, NULL, &answer);
  sfx_expect_error(status, answer, 400, "bad_request", NULL);

  /* Nothing counted: no failure audited, and the attempt still takes its code. */
  ck_assert_int_eq(audit_count("mfa.failed"), 0);
  g_autofree char *session = expect_session(token, code, "alice@a.test");
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("server-mfa");
  struct {
    const char *name;
    const TTest *test;
  } tests[] = {
    {"off", test_off_plain_login},
    {"code", test_on_code_completes_login},
    {"per-org", test_per_organization},
    {"mail", test_mail_and_secrecy},
    {"wrong", test_wrong_code},
    {"wrong-lock", test_wrong_codes_lock},
    {"locked", test_locked_account_refused},
    {"reuse", test_code_single_use},
    {"expiry", test_code_expires},
    {"bound", test_code_bound_to_attempt},
    {"desktop", test_desktop_client},
    {"newest", test_only_newest_attempts_live},
    {"disabled", test_disabled_user_refused},
    {"no-relay", test_no_relay},
    {"relay-down", test_relay_down_or_refusing},
    {"starttls", test_starttls_verified},
    {"input", test_bad_input},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(tests); i++) {
    TCase *tc = tcase_create(tests[i].name);
    tcase_add_checked_fixture(tc, sfx_setup, sfx_teardown);
    tcase_add_test(tc, tests[i].test);
    suite_add_tcase(s, tc);
  }
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
