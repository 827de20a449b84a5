/* The security event log of each organization (logins, failures, locks,
 * role and policy changes, API key use). Entries name who, what, from
 * where and when; never a password, PIN, code or token. */
#include "server-private.h"

void
kcps__server_audit_locked(kcps_server_t *server, gint64 org, gint64 user_id, const char *event,
                          const char *subject, const char *source, const char *detail)
{
  g_autoptr(GError) error = NULL;
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "INSERT INTO audit (org_id, user_id, event, subject, source, detail, created)"
      " VALUES (?, ?, ?, ?, ?, ?, ?)",
      &error);
  if (stmt) {
    if (org > 0)
      sqlite3_bind_int64(stmt, 1, org);
    if (user_id > 0)
      sqlite3_bind_int64(stmt, 2, user_id);
    sqlite3_bind_text(stmt, 3, event, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, subject, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 5, source, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 6, detail, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 7, kcps__server_now());
    kcps__server_db_step(server, stmt, &error);
  }
  sqlite3_finalize(stmt);
  if (error)
    g_warning("kcps-server: audit event %s not written: %s", event, error->message);
}

void
kcps__server_audit(kcps_server_t *server, gint64 org, gint64 user_id, const char *event,
                   const char *subject, const char *source, const char *detail)
{
  g_mutex_lock(&server->lock);
  kcps__server_audit_locked(server, org, user_id, event, subject, source, detail);
  g_mutex_unlock(&server->lock);
}
