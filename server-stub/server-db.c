/* The server's SQLite database: opening (0600, WAL, foreign keys), the
 * schema and its versions, and small statement helpers. One connection,
 * guarded by server->lock; every function here expects the caller to hold it
 * (except open/close, called before and after serving). */
#include "server-private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The schema grows by appending a step; user_version counts the steps run.
 * Organizations form the tree of white paper section 3 (root provider →
 * providers → customers); users, devices, sessions, jobs, tickets and job
 * logs hang off it. */
static const char *const schema_steps[] = {
  /* 1 */
  "CREATE TABLE orgs ("
  "  id INTEGER PRIMARY KEY,"
  "  name TEXT NOT NULL,"
  "  type TEXT NOT NULL CHECK (type IN ('root', 'provider', 'customer')),"
  "  parent_id INTEGER REFERENCES orgs(id),"
  "  created INTEGER NOT NULL,"
  "  CHECK ((type = 'root') = (parent_id IS NULL)),"
  "  UNIQUE (parent_id, name));"
  "CREATE TABLE users ("
  "  id INTEGER PRIMARY KEY,"
  "  public_id TEXT NOT NULL UNIQUE,"
  "  org_id INTEGER NOT NULL REFERENCES orgs(id),"
  "  email TEXT NOT NULL UNIQUE COLLATE NOCASE,"
  "  name TEXT NOT NULL,"
  "  role TEXT NOT NULL CHECK (role IN ('provider_admin', 'provider_support',"
  "    'customer_admin', 'print_manager', 'customer_user', 'guest_user')),"
  "  password_hash TEXT,"
  "  pin_hmac TEXT,"
  "  active INTEGER NOT NULL DEFAULT 1,"
  "  created INTEGER NOT NULL,"
  "  UNIQUE (org_id, pin_hmac));"
  "CREATE TABLE devices ("
  "  id INTEGER PRIMARY KEY,"
  "  org_id INTEGER NOT NULL REFERENCES orgs(id),"
  "  name TEXT NOT NULL UNIQUE,"
  "  secret_hash TEXT NOT NULL,"
  "  active INTEGER NOT NULL DEFAULT 1,"
  "  created INTEGER NOT NULL);"
  "CREATE TABLE sessions ("
  "  token_hash TEXT PRIMARY KEY,"
  "  kind TEXT NOT NULL CHECK (kind IN ('user', 'device', 'user_device')),"
  "  user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,"
  "  device_id INTEGER REFERENCES devices(id) ON DELETE CASCADE,"
  "  created INTEGER NOT NULL,"
  "  expires INTEGER NOT NULL,"
  "  CHECK ((kind = 'device') = (user_id IS NULL)),"
  "  CHECK ((kind = 'user') = (device_id IS NULL)));"
  "CREATE INDEX sessions_expires ON sessions(expires);"
  "CREATE TABLE jobs ("
  "  id INTEGER PRIMARY KEY,"
  "  public_id TEXT NOT NULL UNIQUE,"
  "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
  "  org_id INTEGER NOT NULL REFERENCES orgs(id),"
  "  client_job_id TEXT NOT NULL,"
  "  name TEXT NOT NULL,"
  "  pages INTEGER NOT NULL CHECK (pages >= 1),"
  "  size INTEGER NOT NULL CHECK (size >= 0),"
  "  sha256 TEXT NOT NULL CHECK (length(sha256) = 64),"
  "  spool TEXT NOT NULL DEFAULT 'local' CHECK (spool IN ('local', 'cloud')),"
  "  pull_url TEXT,"
  "  pull_pin TEXT,"
  "  state TEXT NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'printed', 'failed')),"
  "  created INTEGER NOT NULL,"
  "  updated INTEGER NOT NULL,"
  "  UNIQUE (user_id, client_job_id));"
  "CREATE INDEX jobs_user_state ON jobs(user_id, state);"
  "CREATE TABLE tickets ("
  "  tid TEXT PRIMARY KEY,"
  "  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
  "  device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,"
  "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
  "  issued INTEGER NOT NULL,"
  "  expires INTEGER NOT NULL);"
  "CREATE INDEX tickets_job ON tickets(job_id, device_id);"
  "CREATE TABLE job_logs ("
  "  id INTEGER PRIMARY KEY,"
  "  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
  "  device_id INTEGER NOT NULL REFERENCES devices(id),"
  "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
  "  org_id INTEGER NOT NULL REFERENCES orgs(id),"
  "  pages INTEGER NOT NULL CHECK (pages >= 0),"
  "  color_pages INTEGER NOT NULL CHECK (color_pages >= 0 AND color_pages <= pages),"
  "  duplex INTEGER NOT NULL,"
  "  status TEXT NOT NULL CHECK (status IN ('completed', 'failed')),"
  "  created INTEGER NOT NULL);"
  "CREATE INDEX job_logs_user ON job_logs(user_id, status);",
  /* 2: public ids for organizations, settings, the audit log, session
   * clients and idle times, and the record of feature schema parts. */
  "ALTER TABLE orgs ADD COLUMN public_id TEXT;"
  "UPDATE orgs SET public_id = lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4'"
  "  || substr(hex(randomblob(2)), 2) || '-a' || substr(hex(randomblob(2)), 2) || '-'"
  "  || hex(randomblob(6)));"
  "CREATE UNIQUE INDEX orgs_public_id ON orgs(public_id);"
  "CREATE TABLE org_settings ("
  "  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,"
  "  key TEXT NOT NULL,"
  "  value INTEGER NOT NULL,"
  "  PRIMARY KEY (org_id, key));"
  "CREATE TABLE audit ("
  "  id INTEGER PRIMARY KEY,"
  "  org_id INTEGER REFERENCES orgs(id) ON DELETE CASCADE,"
  "  user_id INTEGER,"
  "  event TEXT NOT NULL,"
  "  subject TEXT,"
  "  source TEXT,"
  "  detail TEXT,"
  "  created INTEGER NOT NULL);"
  "CREATE INDEX audit_org ON audit(org_id, id);"
  "ALTER TABLE sessions ADD COLUMN client TEXT NOT NULL DEFAULT 'web';"
  "ALTER TABLE sessions ADD COLUMN last_seen INTEGER NOT NULL DEFAULT 0;"
  "CREATE TABLE schema_parts (name TEXT PRIMARY KEY, applied INTEGER NOT NULL);",
};

/* Feature parts, run once each after the core steps (server-private.h). */
static const struct {
  const char *name;
  const char *sql;
} schema_parts[] = {
  {"policy", kcps__server_schema_policy},   {"mfa", kcps__server_schema_mfa},
  {"orgs", kcps__server_schema_orgs},       {"reports", kcps__server_schema_reports},
  {"devices", kcps__server_schema_devices}, {"oidc", kcps__server_schema_oidc},
  {"uploads", kcps__server_schema_uploads},
  {"usage", kcps__server_schema_usage},
  {"groups", kcps__server_schema_groups},
  {"oidc_domain", kcps__server_schema_oidc_domain},
};

static void
set_db_error(kcps_server_t *server, GError **error, const char *step)
{
  g_set_error(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_DB, "database: %s: %s", step,
              server->db ? sqlite3_errmsg(server->db) : "not open");
}

bool
kcps__server_db_exec(kcps_server_t *server, const char *sql, GError **error)
{
  char *msg = NULL;
  if (sqlite3_exec(server->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    g_set_error(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_DB, "database: %s",
                msg ? msg : sqlite3_errmsg(server->db));
    sqlite3_free(msg);
    return false;
  }
  return true;
}

sqlite3_stmt *
kcps__server_db_prepare(kcps_server_t *server, const char *sql, GError **error)
{
  sqlite3_stmt *stmt = NULL;
  if (sqlite3_prepare_v2(server->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
    set_db_error(server, error, "prepare");
    return NULL;
  }
  return stmt;
}

int
kcps__server_db_step(kcps_server_t *server, sqlite3_stmt *stmt, GError **error)
{
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW || rc == SQLITE_DONE)
    return rc;
  set_db_error(server, error, "step");
  return -1;
}

bool
kcps__server_db_begin(kcps_server_t *server, GError **error)
{
  return kcps__server_db_exec(server, "BEGIN IMMEDIATE", error);
}

bool
kcps__server_db_commit(kcps_server_t *server, GError **error)
{
  if (kcps__server_db_exec(server, "COMMIT", error))
    return true;
  kcps__server_db_rollback(server);
  return false;
}

void
kcps__server_db_rollback(kcps_server_t *server)
{
  if (!sqlite3_get_autocommit(server->db))
    sqlite3_exec(server->db, "ROLLBACK", NULL, NULL, NULL);
}

char *
kcps__server_db_dup_text(sqlite3_stmt *stmt, int col)
{
  const unsigned char *text = sqlite3_column_text(stmt, col);
  return text ? g_strdup((const char *)text) : NULL;
}

/* Creates the file 0600 before SQLite does, so that the database (and the
 * -wal and -shm files, which SQLite gives the database's mode) are never
 * readable by others, whatever the umask. */
static bool
create_private(const char *path, GError **error)
{
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0 || fchmod(fd, 0600) != 0) {
    int err = errno;
    if (fd >= 0)
      close(fd);
    g_set_error(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_IO, "cannot create %s: %s", path,
                g_strerror(err));
    return false;
  }
  close(fd);
  return true;
}

static bool
migrate(kcps_server_t *server, GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(server, "PRAGMA user_version", error);
  if (!stmt)
    return false;
  gint64 version = kcps__server_db_step(server, stmt, NULL) == SQLITE_ROW
                       ? sqlite3_column_int64(stmt, 0) : -1;
  sqlite3_finalize(stmt);
  gint64 latest = (gint64)G_N_ELEMENTS(schema_steps);
  if (version < 0 || version > latest) {
    g_set_error(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_DB,
                "database: schema version %" G_GINT64_FORMAT " is not one this kcps-server "
                "knows (1..%" G_GINT64_FORMAT ")", version, latest);
    return false;
  }
  /* Each step and its version bump commit together. */
  for (gint64 v = version; v < latest; v++) {
    g_autofree char *bump = g_strdup_printf("PRAGMA user_version = %" G_GINT64_FORMAT, v + 1);
    if (!kcps__server_db_begin(server, error))
      return false;
    if (!kcps__server_db_exec(server, schema_steps[v], error) ||
        !kcps__server_db_exec(server, bump, error)) {
      kcps__server_db_rollback(server);
      return false;
    }
    if (!kcps__server_db_commit(server, error))
      return false;
  }

  for (size_t i = 0; i < G_N_ELEMENTS(schema_parts); i++) {
    if (!kcps__server_db_begin(server, error))
      return false;
    stmt = kcps__server_db_prepare(server, "SELECT 1 FROM schema_parts WHERE name = ?", error);
    if (!stmt) {
      kcps__server_db_rollback(server);
      return false;
    }
    sqlite3_bind_text(stmt, 1, schema_parts[i].name, -1, SQLITE_STATIC);
    int rc = kcps__server_db_step(server, stmt, error);
    sqlite3_finalize(stmt);
    if (rc < 0) {
      kcps__server_db_rollback(server);
      return false;
    }
    if (rc == SQLITE_ROW) {
      kcps__server_db_rollback(server);
      continue;
    }
    stmt = kcps__server_db_prepare(server,
                                   "INSERT INTO schema_parts (name, applied) VALUES (?, ?)",
                                   error);
    if (!stmt) {
      kcps__server_db_rollback(server);
      return false;
    }
    sqlite3_bind_text(stmt, 1, schema_parts[i].name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, kcps__server_now());
    rc = kcps__server_db_step(server, stmt, error);
    sqlite3_finalize(stmt);
    if (rc < 0 || (*schema_parts[i].sql && !kcps__server_db_exec(server, schema_parts[i].sql,
                                                                  error))) {
      g_prefix_error(error, "schema part %s: ", schema_parts[i].name);
      kcps__server_db_rollback(server);
      return false;
    }
    if (!kcps__server_db_commit(server, error))
      return false;
  }
  return true;
}

bool
kcps__server_db_open(kcps_server_t *server, const char *path, GError **error)
{
  if (!create_private(path, error))
    return false;
  if (sqlite3_open_v2(path, &server->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
      SQLITE_OK) {
    set_db_error(server, error, "open");
    kcps__server_db_close(server);
    return false;
  }
  sqlite3_extended_result_codes(server->db, 1);
  sqlite3_busy_timeout(server->db, 5000);

  /* WAL for concurrent readers and cheap commits; FULL sync so a commit
   * survives power loss; foreign keys hold the tree together; secure_delete
   * overwrites removed session hashes and secrets. */
  sqlite3_stmt *stmt = kcps__server_db_prepare(server, "PRAGMA journal_mode = WAL", error);
  if (!stmt) {
    kcps__server_db_close(server);
    return false;
  }
  bool wal = kcps__server_db_step(server, stmt, NULL) == SQLITE_ROW &&
             g_ascii_strcasecmp((const char *)sqlite3_column_text(stmt, 0), "wal") == 0;
  sqlite3_finalize(stmt);
  if (!wal) {
    g_set_error(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_DB,
                "database: %s cannot use write-ahead logging", path);
    kcps__server_db_close(server);
    return false;
  }
  if (!kcps__server_db_exec(server,
                            "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;"
                            "PRAGMA secure_delete = ON; PRAGMA trusted_schema = OFF;",
                            error) ||
      !migrate(server, error)) {
    kcps__server_db_close(server);
    return false;
  }
  return true;
}

void
kcps__server_db_close(kcps_server_t *server)
{
  if (server->db) {
    sqlite3_close_v2(server->db);
    server->db = NULL;
  }
}

gint64
kcps__server_db_count_rows(kcps_server_t *server, const char *table)
{
  g_mutex_lock(&server->lock);
  gint64 n = -1;
  /* Only a name the schema knows goes into the statement. */
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", NULL);
  bool known = false;
  if (stmt) {
    sqlite3_bind_text(stmt, 1, table, -1, SQLITE_STATIC);
    known = kcps__server_db_step(server, stmt, NULL) == SQLITE_ROW;
  }
  sqlite3_finalize(stmt);
  if (known) {
    g_autofree char *sql = g_strdup_printf("SELECT count(*) FROM \"%s\"", table);
    stmt = kcps__server_db_prepare(server, sql, NULL);
    if (stmt && kcps__server_db_step(server, stmt, NULL) == SQLITE_ROW)
      n = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
  }
  g_mutex_unlock(&server->lock);
  return n;
}

char *
kcps__server_db_password_hash(kcps_server_t *server, const char *email)
{
  char *hash = NULL;
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt =
      kcps__server_db_prepare(server, "SELECT password_hash FROM users WHERE email = ?", NULL);
  if (stmt) {
    sqlite3_bind_text(stmt, 1, email, -1, SQLITE_TRANSIENT);
    if (kcps__server_db_step(server, stmt, NULL) == SQLITE_ROW)
      hash = kcps__server_db_dup_text(stmt, 0);
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&server->lock);
  return hash;
}
