/* Login policies (white paper 4.1-4.3): password rules, lockout, session
 * lifetimes and refresh tokens, and the settings routes. (Skeleton: the
 * policy helper fills this in.) */
#include "server-private.h"

#include <string.h>

const char kcps__server_schema_policy[] = "";

const kcps_server_route_t kcps__server_routes_policy[] = {
  {NULL, NULL, KCPS_NEED_NONE, NULL},
};

bool
kcps__server_password_acceptable(kcps_server_t *server, gint64 org, const char *password,
                                 GError **error)
{
  (void)server;
  (void)org;
  size_t len = password ? strlen(password) : 0;
  if (len < 8 || len > 64) {
    g_set_error_literal(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_BAD_REQUEST,
                        "password must be 8 to 64 characters long");
    return false;
  }
  return true;
}

bool
kcps__server_lockout_locked(kcps_server_t *server, gint64 user_id, const char *source)
{
  (void)server;
  (void)user_id;
  (void)source;
  return false;
}

void
kcps__server_lockout_failed_locked(kcps_server_t *server, gint64 user_id, const char *source)
{
  (void)server;
  (void)user_id;
  (void)source;
}

void
kcps__server_lockout_succeeded_locked(kcps_server_t *server, gint64 user_id,
                                      const char *source)
{
  (void)server;
  (void)user_id;
  (void)source;
}

bool
kcps__server_sessions_end_user_locked(kcps_server_t *server, gint64 user_id, GError **error)
{
  sqlite3_stmt *stmt =
      kcps__server_db_prepare(server, "DELETE FROM sessions WHERE user_id = ?", error);
  if (!stmt)
    return false;
  sqlite3_bind_int64(stmt, 1, user_id);
  bool ok = kcps__server_db_step(server, stmt, error) == SQLITE_DONE;
  sqlite3_finalize(stmt);
  return ok;
}
