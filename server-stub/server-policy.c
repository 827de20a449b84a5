/* Login policies (white paper 4.1-4.3): the password rules of both presets
 * (kcps, NIST SP 800-63B), account lockout, and the routes for a password
 * change, the caller's effective policy and an organization's settings.
 * Sessions, idle logout and refresh tokens live in server-auth.c. */
#include "server-private.h"
#include "server-lockout.h"

#include "common/crypto.h"

#include <gio/gio.h>
#include <stdarg.h>
#include <string.h>

/* glib-compile-resources output (data/server.gresource.xml). */
GResource *kcps_server_res_get_resource(void);

/* lockouts: consecutive failures and the lock of a known account, per
 * source address when the organization's scope is account_source (else
 * source ''). refresh_tokens: desktop refresh tokens (hashed), in families
 * that share one login; sessions issued from a family name it. */
const char kcps__server_schema_policy[] =
    "CREATE TABLE lockouts ("
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  source TEXT NOT NULL,"
    "  failures INTEGER NOT NULL DEFAULT 0,"
    "  locked_until INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (user_id, source)) WITHOUT ROWID;"
    "CREATE TABLE refresh_tokens ("
    "  token_hash TEXT PRIMARY KEY,"
    "  family TEXT NOT NULL,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  issued INTEGER NOT NULL,"
    "  expires INTEGER NOT NULL,"
    "  used INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX refresh_tokens_family ON refresh_tokens(family);"
    "CREATE INDEX refresh_tokens_user ON refresh_tokens(user_id);"
    "ALTER TABLE sessions ADD COLUMN refresh_family TEXT;"
    "CREATE INDEX sessions_user ON sessions(user_id);"
    "CREATE INDEX sessions_refresh_family ON sessions(refresh_family);";

/* Password rules ------------------------------------------------------- */

/* The white paper's symbol list as extracted reads !"#\$%&'()*+,-./:;<=>?@[^_`{ }~:
 * a document conversion escaped '$', dropped "\]" and turned '|' (a table
 * cell separator) into a space. It is OWASP's list of ASCII punctuation,
 * all 32 of them. */
#define SYMBOLS "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"

enum { PRESET_KCPS = 0, PRESET_NIST = 1 };

static bool
rule_broken(GError **error, const char *rule, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/* "password rule \"<rule>\": <what it asks>" */
static bool
rule_broken(GError **error, const char *rule, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *what = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_BAD_REQUEST,
              "password rule \"%s\": %s", rule, what);
  return false;
}

/* Is password (case aside) a line of the list text? Lines starting with '#'
 * are comments. */
static bool
listed(const char *text, size_t n, const char *password)
{
  size_t len = strlen(password);
  const char *p = text, *end = text + n;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (l > 0 && p[l - 1] == '\r')
      l--;
    if (l == len && *p != '#' && g_ascii_strncasecmp(p, password, len) == 0)
      return true;
    p += (nl ? (size_t)(nl - p) : l) + 1;
  }
  return false;
}

/* In the list shipped inside the server (data/common-passwords.txt)? */
static bool
common_builtin(const char *password)
{
  g_autoptr(GBytes) bytes =
      g_resource_lookup_data(kcps_server_res_get_resource(), "/kcps/server/common-passwords.txt",
                             G_RESOURCE_LOOKUP_FLAGS_NONE, NULL);
  if (!bytes) {
    g_critical("kcps-server: the common password list is not built in");
    return false;
  }
  gsize n = 0;
  const char *text = g_bytes_get_data(bytes, &n);
  return listed(text, n, password);
}

/* In the admin's own additions, DATA/common-passwords.txt (optional)? */
static bool
common_local(const kcps_server_t *server, const char *password)
{
  if (!server || !server->data_dir)
    return false;
  g_autofree char *path = g_build_filename(server->data_dir, "common-passwords.txt", NULL);
  g_autofree char *text = NULL;
  gsize n = 0;
  if (!g_file_get_contents(path, &text, &n, NULL))
    return false;
  return listed(text, n, password);
}

/* Equal (case aside) to the email or its local part? */
static bool
is_email_like(const char *email, const char *password)
{
  if (!email || !*email)
    return false;
  g_autofree char *pw = g_utf8_casefold(password, -1);
  g_autofree char *whole = g_utf8_casefold(email, -1);
  const char *at = strrchr(whole, '@');
  g_autofree char *local = at ? g_strndup(whole, (gsize)(at - whole)) : NULL;
  return strcmp(pw, whole) == 0 || (local && *local && strcmp(pw, local) == 0);
}

static bool
check_kcps(const char *password, GError **error)
{
  /* White paper 4.2: 8-64 characters; a digit, an upper-case and a
   * lower-case English letter and a symbol; English letters only. */
  glong chars = g_utf8_strlen(password, -1);
  if (chars < 8 || chars > 64)
    return rule_broken(error, "length", "8 to 64 characters (this one has %ld)", chars);
  bool digit = false, upper = false, lower = false, symbol = false;
  for (const unsigned char *p = (const unsigned char *)password; *p; p++) {
    if (*p >= '0' && *p <= '9')
      digit = true;
    else if (*p >= 'A' && *p <= 'Z')
      upper = true;
    else if (*p >= 'a' && *p <= 'z')
      lower = true;
    else if (*p < 0x80 && strchr(SYMBOLS, *p))
      symbol = true;
    else
      return rule_broken(error, "characters",
                         "only English letters A-Z and a-z, digits 0-9 and the symbols %s "
                         "(no spaces, control characters, accented or non-Latin letters)",
                         SYMBOLS);
  }
  if (!digit)
    return rule_broken(error, "digit", "at least one digit 0-9");
  if (!upper)
    return rule_broken(error, "upper", "at least one upper-case English letter A-Z");
  if (!lower)
    return rule_broken(error, "lower", "at least one lower-case English letter a-z");
  if (!symbol)
    return rule_broken(error, "symbol", "at least one of the symbols %s", SYMBOLS);
  return true;
}

static bool
check_nist(const char *email, const char *password, GError **error)
{
  /* SP 800-63B 3.1.1.2: length only (15-64, counted in Unicode code points;
   * spaces and any printable character allowed), no composition rules,
   * refused when common or derived from the account name. */
  for (const char *p = password; *p; p = g_utf8_next_char(p)) {
    gunichar c = g_utf8_get_char(p);
    if (g_unichar_iscntrl(c))
      return rule_broken(error, "characters", "no control characters");
  }
  glong chars = g_utf8_strlen(password, -1);
  if (chars < 15 || chars > 64)
    return rule_broken(error, "length", "15 to 64 characters (this one has %ld)", chars);
  if (is_email_like(email, password))
    return rule_broken(error, "email", "must not be the account's email or its name part");
  if (common_builtin(password))
    return rule_broken(error, "common", "must not be a commonly used password (it is in the "
                                        "server's list of common passwords)");
  return true;
}

bool
kcps__server_password_check(int preset, const char *email, const char *password,
                            GError **error)
{
  if (!password || !g_utf8_validate(password, -1, NULL))
    return rule_broken(error, "characters", "valid UTF-8 text");
  return preset == PRESET_NIST ? check_nist(email, password, error)
                               : check_kcps(password, error);
}

bool
kcps__server_password_acceptable_for(kcps_server_t *server, gint64 org, const char *email,
                                     const char *password, GError **error)
{
  int preset = (int)kcps__server_setting(server, org, "password_policy");
  if (!kcps__server_password_check(preset, email, password, error))
    return false;
  if (preset == PRESET_NIST && common_local(server, password))
    return rule_broken(error, "common", "must not be a commonly used password (it is in the "
                                        "server's list of common passwords)");
  return true;
}

bool
kcps__server_password_acceptable(kcps_server_t *server, gint64 org, const char *password,
                                 GError **error)
{
  return kcps__server_password_acceptable_for(server, org, NULL, password, error);
}

/* Lockout ---------------------------------------------------------------- */

/* The user's organization (and email), 0 when there is no such user. */
static gint64
user_org_locked(kcps_server_t *server, gint64 user_id, char **email)
{
  sqlite3_stmt *stmt =
      kcps__server_db_prepare(server, "SELECT org_id, email FROM users WHERE id = ?", NULL);
  if (!stmt)
    return 0;
  sqlite3_bind_int64(stmt, 1, user_id);
  gint64 org = 0;
  if (kcps__server_db_step(server, stmt, NULL) == SQLITE_ROW) {
    org = sqlite3_column_int64(stmt, 0);
    if (email)
      *email = kcps__server_db_dup_text(stmt, 1);
  }
  sqlite3_finalize(stmt);
  return org;
}

/* Counted per account and source address (lockout_scope account_source)? */
static bool
per_source_locked(kcps_server_t *server, gint64 org)
{
  return kcps__server_setting_locked(server, org, "lockout_scope") == 1;
}

static gint64
default_of(const char *key)
{
  const kcps_server_setting_t *s = kcps__server_setting_find(key);
  return s ? s->def : 0;
}

/* The slot of an unknown account's key (a device's source address, or a
 * password login's email key): found, or (create) a free or the least
 * recently failed one among a few probed. */
static kcps_server_lockout_slot_t *
slot_find(kcps_server_t *server, const char *source, bool create)
{
  enum { PROBES = 8 };
  guint h = g_str_hash(source);
  kcps_server_lockout_slot_t *victim = NULL;
  for (guint i = 0; i < PROBES; i++) {
    kcps_server_lockout_slot_t *s = &server->lockout_slots[(h + i) % KCPS_SERVER_LOCKOUT_SLOTS];
    if (s->source[0] && strcmp(s->source, source) == 0)
      return s;
    if (!victim || (victim->source[0] && (!s->source[0] || s->last < victim->last)))
      victim = s;
  }
  if (!create)
    return NULL;
  memset(victim, 0, sizeof *victim);
  g_strlcpy(victim->source, source, sizeof victim->source);
  return victim;
}

/* Opens a transaction unless the caller is in one; *own says which. */
static bool
begin_own(kcps_server_t *server, bool *own, GError **error)
{
  *own = sqlite3_get_autocommit(server->db) != 0;
  return !*own || kcps__server_db_begin(server, error);
}

static bool
end_own(kcps_server_t *server, bool own, bool ok, GError **error)
{
  if (!own)
    return ok;
  if (!ok) {
    kcps__server_db_rollback(server);
    return false;
  }
  return kcps__server_db_commit(server, error);
}

void
kcps__server_lockout_email_key(const char *email, char out[KCPS_SERVER_LOCKOUT_EMAIL_KEY])
{
  /* users.email is COLLATE NOCASE: ASCII case folding, as here. */
  g_autofree char *trimmed = g_strstrip(g_strdup(email ? email : ""));
  g_autofree char *lower = g_ascii_strdown(trimmed, -1);
  char hex[65];
  kcps_crypto_sha256_hex(lower, strlen(lower), hex);
  explicit_bzero(lower, strlen(lower));
  explicit_bzero(trimmed, strlen(trimmed));
  g_snprintf(out, KCPS_SERVER_LOCKOUT_EMAIL_KEY, "email:%.56s", hex);
}

gint64
kcps__server_lockout_until_locked(kcps_server_t *server, gint64 user_id, const char *source)
{
  gint64 now = kcps__server_now();
  if (!source)
    source = "unknown";
  if (user_id <= 0) {
    const kcps_server_lockout_slot_t *slot = slot_find(server, source, false);
    return slot && slot->locked_until > now ? slot->locked_until : 0;
  }
  gint64 org = user_org_locked(server, user_id, NULL);
  if (org <= 0)
    return 0;
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT locked_until FROM lockouts WHERE user_id = ? AND source = ?", NULL);
  if (!stmt)
    return 0;
  sqlite3_bind_int64(stmt, 1, user_id);
  sqlite3_bind_text(stmt, 2, per_source_locked(server, org) ? source : "", -1, SQLITE_STATIC);
  gint64 until = 0;
  if (kcps__server_db_step(server, stmt, NULL) == SQLITE_ROW)
    until = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  return until > now ? until : 0;
}

bool
kcps__server_lockout_locked(kcps_server_t *server, gint64 user_id, const char *source)
{
  return kcps__server_lockout_until_locked(server, user_id, source) > 0;
}

void
kcps__server_lockout_failed_locked(kcps_server_t *server, gint64 user_id, const char *source)
{
  kcps__server_lockout_fail_until_locked(server, user_id, source);
}

gint64
kcps__server_lockout_fail_until_locked(kcps_server_t *server, gint64 user_id,
                                       const char *source)
{
  gint64 now = kcps__server_now();
  if (!source)
    source = "unknown";

  /* An unknown account: memory only, with the default numbers (there is no
   * organization to ask). */
  if (user_id <= 0) {
    kcps_server_lockout_slot_t *slot = slot_find(server, source, true);
    if (slot->locked_until > now)
      return slot->locked_until;
    if (slot->locked_until != 0) {
      slot->locked_until = 0;
      slot->failures = 0;
    }
    slot->last = now;
    if (++slot->failures >= (unsigned)default_of("lockout_threshold")) {
      slot->failures = 0;
      slot->locked_until = now + default_of("lockout_minutes") * 60;
    }
    return slot->locked_until;
  }

  g_autofree char *email = NULL;
  gint64 org = user_org_locked(server, user_id, &email);
  if (org <= 0)
    return 0;
  gint64 threshold = kcps__server_setting_locked(server, org, "lockout_threshold");
  gint64 minutes = kcps__server_setting_locked(server, org, "lockout_minutes");
  bool per_source = per_source_locked(server, org);
  const char *key = per_source ? source : "";

  g_autoptr(GError) error = NULL;
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT failures, locked_until FROM lockouts WHERE user_id = ? AND source = ?",
      &error);
  if (!stmt) {
    g_warning("kcps-server: lockout: %s", error->message);
    return 0;
  }
  sqlite3_bind_int64(stmt, 1, user_id);
  sqlite3_bind_text(stmt, 2, key, -1, SQLITE_STATIC);
  gint64 failures = 0, until = 0;
  if (kcps__server_db_step(server, stmt, NULL) == SQLITE_ROW) {
    failures = sqlite3_column_int64(stmt, 0);
    until = sqlite3_column_int64(stmt, 1);
  }
  sqlite3_finalize(stmt);

  /* Locked already: nothing to count and nothing to write (a flood of
   * guesses at a locked account costs no database write). */
  if (until > now)
    return until;
  if (until != 0)
    failures = 0; /* the last lock ran out: count afresh */
  failures++;
  bool lock = failures >= threshold;

  bool own = false;
  bool ok = begin_own(server, &own, &error);
  if (ok) {
    stmt = kcps__server_db_prepare(
        server,
        "INSERT INTO lockouts (user_id, source, failures, locked_until) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (user_id, source) DO UPDATE SET failures = excluded.failures,"
        " locked_until = excluded.locked_until",
        &error);
    ok = stmt != NULL;
    if (ok) {
      sqlite3_bind_int64(stmt, 1, user_id);
      sqlite3_bind_text(stmt, 2, key, -1, SQLITE_STATIC);
      sqlite3_bind_int64(stmt, 3, lock ? 0 : failures);
      sqlite3_bind_int64(stmt, 4, lock ? now + minutes * 60 : 0);
      ok = kcps__server_db_step(server, stmt, &error) == SQLITE_DONE;
    }
    sqlite3_finalize(stmt);
  }
  if (ok && lock) {
    g_autofree char *detail = g_strdup_printf(
        "%" G_GINT64_FORMAT " failed attempts; locked for %" G_GINT64_FORMAT " minutes%s",
        failures, minutes, per_source ? " from this source" : "");
    kcps__server_audit_locked(server, org, user_id, "account.locked", email, source, detail);
    /* A lock of the whole account ends its sessions. A lock of one source
     * (account_source) does not: else a stranger could still log the owner
     * out everywhere, the very thing that scope is there to prevent. */
    if (!per_source)
      ok = kcps__server_sessions_end_user_locked(server, user_id, &error);
  }
  if (!end_own(server, own, ok, &error) || !ok) {
    g_warning("kcps-server: lockout: %s", error ? error->message : "failed");
    return 0;
  }
  return lock ? now + minutes * 60 : 0;
}

void
kcps__server_respond_locked(kcps_http_req_t *req, unsigned status, gint64 until)
{
  gint64 after = MAX(until - kcps__server_now(), 1);
  g_autoptr(GDateTime) at = g_date_time_new_from_unix_utc(until);
  g_autofree char *at_text = at ? g_date_time_format(at, "%Y-%m-%dT%H:%M:%SZ") : NULL;
  g_autofree char *message =
      g_strdup_printf("too many failed attempts; try again after %s", at_text ? at_text : "");
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "error");
  json_builder_add_string_value(b, "account_locked");
  json_builder_set_member_name(b, "message");
  json_builder_add_string_value(b, message);
  json_builder_set_member_name(b, "retry_after");
  json_builder_add_int_value(b, after);
  json_builder_set_member_name(b, "retry_at");
  json_builder_add_string_value(b, at_text ? at_text : "");
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  char header[24];
  g_snprintf(header, sizeof header, "%" G_GINT64_FORMAT, after);
  kcps_http_req_add_header(req, "Retry-After", header);
  kcps_http_respond_json(req, status, root);
}

void
kcps__server_lockout_succeeded_locked(kcps_server_t *server, gint64 user_id,
                                      const char *source)
{
  gint64 now = kcps__server_now();
  if (!source)
    source = "unknown";
  if (user_id <= 0) {
    kcps_server_lockout_slot_t *slot = slot_find(server, source, false);
    if (slot && slot->locked_until <= now)
      memset(slot, 0, sizeof *slot);
    return;
  }
  /* Resets the count of this account (and source); a lock that is running
   * stays: only time lifts it. */
  g_autoptr(GError) error = NULL;
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "DELETE FROM lockouts WHERE user_id = ? AND source IN ('', ?) AND locked_until <= ?",
      &error);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, user_id);
    sqlite3_bind_text(stmt, 2, source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, now);
    kcps__server_db_step(server, stmt, &error);
  }
  sqlite3_finalize(stmt);
  if (error)
    g_warning("kcps-server: lockout reset: %s", error->message);
}

bool
kcps__server_sessions_end_user_locked(kcps_server_t *server, gint64 user_id, GError **error)
{
  static const char *const sql[] = {
    "DELETE FROM sessions WHERE user_id = ?",
    "DELETE FROM refresh_tokens WHERE user_id = ?",
  };
  bool own = false;
  bool ok = begin_own(server, &own, error);
  for (size_t i = 0; ok && i < G_N_ELEMENTS(sql); i++) {
    sqlite3_stmt *stmt = kcps__server_db_prepare(server, sql[i], error);
    ok = stmt != NULL;
    if (ok) {
      sqlite3_bind_int64(stmt, 1, user_id);
      ok = kcps__server_db_step(server, stmt, error) == SQLITE_DONE;
    }
    sqlite3_finalize(stmt);
  }
  return end_own(server, own, ok, error);
}

/* Routes ------------------------------------------------------------------ */

/* POST /api/v1/me/password {"current","new"}: the current password is
 * checked (failures count towards the lockout), the new one must meet the
 * organization's policy; then every session and refresh token of the user
 * ends, the caller's too. */
static void
route_me_password(kcps_server_t *server, kcps_http_req_t *req,
                  const kcps_server_session_t *session, const char *id)
{
  (void)id;
  static const char *const fields[] = {"current", "new", NULL};
  JsonObject *obj = kcps__server_req_object(req);
  if (!obj)
    return;
  g_autoptr(GError) error = NULL;
  const char *current = NULL, *fresh = NULL;
  if (!kcps__server_check_fields(obj, fields, &error) ||
      !kcps__server_field_string(obj, "current", 1, KCPS_SERVER_MAX_PASSWORD,
                                 KCPS_TEXT_CONTROL, &current, &error) ||
      !kcps__server_field_string(obj, "new", 1, KCPS_SERVER_MAX_PASSWORD, KCPS_TEXT_CONTROL,
                                 &fresh, &error)) {
    kcps__server_respond_bad(req, error);
    return;
  }

  /* The new password's rules first: they need no secret to check. */
  if (!kcps__server_password_acceptable_for(server, session->user_org_id, session->email, fresh,
                                            &error)) {
    g_prefix_error(&error, "field \"new\": ");
    kcps__server_respond_bad(req, error);
    return;
  }
  if (strcmp(current, fresh) == 0) {
    kcps_http_respond_error(req, 400, "bad_request",
                            "field \"new\": password rule \"different\": the new password must "
                            "differ from the current one");
    return;
  }

  g_mutex_lock(&server->lock);
  gint64 locked_until = kcps__server_lockout_until_locked(server, session->user_id,
                                                          session->source);
  bool locked = locked_until > 0;
  g_autofree char *hash = NULL;
  sqlite3_stmt *stmt =
      kcps__server_db_prepare(server, "SELECT password_hash FROM users WHERE id = ?", &error);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, session->user_id);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW)
      hash = kcps__server_db_dup_text(stmt, 0);
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&server->lock);
  if (error) {
    kcps__server_respond_internal(req, error);
    return;
  }

  /* A locked account is not even checked; the caller has a session, so
   * saying it is locked (and until when) tells nothing new. */
  kcps__server_hash_enter(server);
  bool ok = kcps__server_password_verify(locked || !hash ? server->dummy_hash : hash, current) &&
            !locked && hash;
  kcps__server_hash_leave(server);
  if (!ok) {
    if (!locked) {
      g_mutex_lock(&server->lock);
      bool txn = kcps__server_db_begin(server, NULL);
      kcps__server_audit_locked(server, session->user_org_id, session->user_id, "login.failed",
                                session->email, session->source,
                                "password change: wrong current password");
      locked_until =
          kcps__server_lockout_fail_until_locked(server, session->user_id, session->source);
      if (txn && !kcps__server_db_commit(server, &error))
        g_warning("kcps-server: password change failure not recorded: %s", error->message);
      g_mutex_unlock(&server->lock);
    }
    if (locked_until > 0)
      kcps__server_respond_locked(req, 403, locked_until);
    else
      kcps_http_respond_error(req, 403, "invalid_credentials", "the current password is wrong");
    return;
  }

  kcps__server_hash_enter(server);
  g_autofree char *new_hash = kcps__server_password_hash(fresh, &error);
  kcps__server_hash_leave(server);
  if (!new_hash) {
    kcps__server_respond_internal(req, error);
    return;
  }

  g_mutex_lock(&server->lock);
  bool done = kcps__server_db_begin(server, &error);
  if (done) {
    stmt = kcps__server_db_prepare(server, "UPDATE users SET password_hash = ? WHERE id = ?",
                                   &error);
    done = stmt != NULL;
    if (done) {
      sqlite3_bind_text(stmt, 1, new_hash, -1, SQLITE_STATIC);
      sqlite3_bind_int64(stmt, 2, session->user_id);
      done = kcps__server_db_step(server, stmt, &error) == SQLITE_DONE;
    }
    sqlite3_finalize(stmt);
  }
  if (done) {
    kcps__server_lockout_succeeded_locked(server, session->user_id, session->source);
    done = kcps__server_sessions_end_user_locked(server, session->user_id, &error);
  }
  if (done) {
    kcps__server_audit_locked(server, session->user_org_id, session->user_id, "password.changed",
                              session->email, session->source,
                              "every session and refresh token ended");
    done = kcps__server_db_commit(server, &error);
  } else {
    kcps__server_db_rollback(server);
  }
  g_mutex_unlock(&server->lock);
  if (!done)
    kcps__server_respond_internal(req, error);
  else
    kcps_http_respond_empty(req, 204);
}

/* GET /api/v1/me/policy: the rules a new password of the caller must meet,
 * the idle and lockout limits of her organization and its default spool
 * mode. */
static void
route_me_policy(kcps_server_t *server, kcps_http_req_t *req,
                const kcps_server_session_t *session, const char *id)
{
  (void)id;
  gint64 org = session->user_org_id;
  g_mutex_lock(&server->lock);
  gint64 preset = kcps__server_setting_locked(server, org, "password_policy");
  gint64 idle = kcps__server_setting_locked(server, org, "idle_logout_minutes");
  gint64 desktop = kcps__server_setting_locked(server, org, "desktop_idle_logout_minutes");
  gint64 threshold = kcps__server_setting_locked(server, org, "lockout_threshold");
  gint64 minutes = kcps__server_setting_locked(server, org, "lockout_minutes");
  gint64 mfa = kcps__server_setting_locked(server, org, "mfa_email");
  gint64 spool_mode = kcps__server_setting_locked(server, org, "default_spool_mode");
  bool spool_mode_set = kcps__server_setting_is_set_locked(server, org, "default_spool_mode");
  g_mutex_unlock(&server->lock);
  bool nist = preset == PRESET_NIST;

  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "password_policy");
  json_builder_add_string_value(b, nist ? "nist" : "kcps");
  json_builder_set_member_name(b, "password");
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "min_length");
  json_builder_add_int_value(b, nist ? 15 : 8);
  json_builder_set_member_name(b, "max_length");
  json_builder_add_int_value(b, 64);
  static const char *const classes[] = {"digit", "upper", "lower", "symbol", "english_only"};
  for (size_t i = 0; i < G_N_ELEMENTS(classes); i++) {
    json_builder_set_member_name(b, classes[i]);
    json_builder_add_boolean_value(b, !nist);
  }
  json_builder_set_member_name(b, "symbols");
  json_builder_add_string_value(b, nist ? "" : SYMBOLS);
  json_builder_set_member_name(b, "not_common");
  json_builder_add_boolean_value(b, nist);
  json_builder_set_member_name(b, "not_email");
  json_builder_add_boolean_value(b, nist);
  json_builder_end_object(b);
  json_builder_set_member_name(b, "idle_logout_minutes");
  json_builder_add_int_value(b, idle);
  json_builder_set_member_name(b, "desktop_idle_logout_minutes");
  json_builder_add_int_value(b, desktop);
  json_builder_set_member_name(b, "lockout_threshold");
  json_builder_add_int_value(b, threshold);
  json_builder_set_member_name(b, "lockout_minutes");
  json_builder_add_int_value(b, minutes);
  json_builder_set_member_name(b, "mfa_email");
  json_builder_add_boolean_value(b, mfa != 0);
  /* The desktop client's spool mode for users who chose none; kcpsd
   * follows it only when an organization set it (else its --spool-mode). */
  json_builder_set_member_name(b, "default_spool_mode");
  json_builder_add_string_value(b, spool_mode == 1 ? "cloud" : "local");
  json_builder_set_member_name(b, "default_spool_mode_set");
  json_builder_add_boolean_value(b, spool_mode_set);
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  kcps_http_respond_json(req, 200, root);
}

/* GET /api/v1/orgs/{id}/settings: effective values (own, inherited or
 * default) of every setting. */
static void
route_get_settings(kcps_server_t *server, kcps_http_req_t *req,
                   const kcps_server_session_t *session, const char *id)
{
  gint64 org = kcps__server_require(server, req, session, KCPS_DATA_POLICY, false, id);
  if (!org)
    return;
  g_mutex_lock(&server->lock);
  g_autoptr(JsonNode) root = kcps__server_settings_json_locked(server, org);
  g_mutex_unlock(&server->lock);
  kcps_http_respond_json(req, 200, root);
}

/* PATCH /api/v1/orgs/{id}/settings {key: value, ...}: all or nothing, in
 * one transaction; each change audited (policy.changed). */
static void
route_patch_settings(kcps_server_t *server, kcps_http_req_t *req,
                     const kcps_server_session_t *session, const char *id)
{
  gint64 org = kcps__server_require(server, req, session, KCPS_DATA_POLICY, true, id);
  if (!org)
    return;
  JsonObject *obj = kcps__server_req_object(req);
  if (!obj)
    return;
  if (json_object_get_size(obj) == 0) {
    kcps_http_respond_error(req, 400, "bad_request", "the body names no setting to change");
    return;
  }
  g_autoptr(GError) error = NULL;
  bool bad = false;
  g_mutex_lock(&server->lock);
  bool ok = kcps__server_db_begin(server, &error);
  GList *members = ok ? json_object_get_members(obj) : NULL;
  for (GList *m = members; ok && m; m = m->next) {
    const char *key = m->data;
    JsonNode *value = json_object_get_member(obj, key);
    if (!kcps__server_setting_store_locked(server, org, key, value, &error)) {
      ok = false;
      bad = g_error_matches(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_BAD_REQUEST);
      break;
    }
    g_autofree char *text = json_to_string(value, FALSE);
    g_autofree char *detail = g_strdup_printf("%s=%s", key, text);
    kcps__server_audit_locked(server, org, session->user_id, "policy.changed", key,
                              session->source, detail);
  }
  g_list_free(members);
  if (ok)
    ok = kcps__server_db_commit(server, &error);
  else
    kcps__server_db_rollback(server);
  g_autoptr(JsonNode) root = ok ? kcps__server_settings_json_locked(server, org) : NULL;
  g_mutex_unlock(&server->lock);
  if (bad)
    kcps__server_respond_bad(req, error);
  else if (!ok)
    kcps__server_respond_internal(req, error);
  else
    kcps_http_respond_json(req, 200, root);
}

const kcps_server_route_t kcps__server_routes_policy[] = {
  {"POST", "/api/v1/token/refresh", KCPS_NEED_NONE, kcps__server_route_token_refresh},
  {"POST", "/api/v1/me/password", KCPS_NEED_USER, route_me_password},
  {"GET", "/api/v1/me/policy", KCPS_NEED_USER, route_me_policy},
  {"GET", "/api/v1/orgs/*/settings", KCPS_NEED_USER, route_get_settings},
  {"PATCH", "/api/v1/orgs/*/settings", KCPS_NEED_USER, route_patch_settings},
  {NULL, NULL, KCPS_NEED_NONE, NULL},
};
