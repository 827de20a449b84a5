/* Who may see what: the roles of the white paper, its Table 2-1 and the
 * organization tree (section 3). Every route that reaches data of an
 * organization asks kcps__server_may_locked() or kcps__server_require();
 * docs/access.md says the same in a table, and tests/test-server-access.c
 * walks it. */
#include "server-private.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static const char *const role_names[] = {
  [KCPS_ROLE_NONE] = "none",
  [KCPS_ROLE_PROVIDER_ADMIN] = "provider_admin",
  [KCPS_ROLE_PROVIDER_SUPPORT] = "provider_support",
  [KCPS_ROLE_CUSTOMER_ADMIN] = "customer_admin",
  [KCPS_ROLE_PRINT_MANAGER] = "print_manager",
  [KCPS_ROLE_CUSTOMER_USER] = "customer_user",
  [KCPS_ROLE_GUEST_USER] = "guest_user",
};

kcps_server_role_t
kcps__server_role_parse(const char *name)
{
  for (size_t i = 1; name && i < G_N_ELEMENTS(role_names); i++)
    if (strcmp(name, role_names[i]) == 0)
      return (kcps_server_role_t)i;
  return KCPS_ROLE_NONE;
}

const char *
kcps__server_role_name(kcps_server_role_t role)
{
  return (size_t)role < G_N_ELEMENTS(role_names) ? role_names[role] : "none";
}

void
kcps__server_req_source(kcps_http_req_t *req, char *buf, size_t len)
{
  const struct sockaddr *sa = kcps_http_req_peer(req);
  const char *ok = NULL;
  if (sa && sa->sa_family == AF_INET)
    ok = inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf,
                   (socklen_t)len);
  else if (sa && sa->sa_family == AF_INET6)
    ok = inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, buf,
                   (socklen_t)len);
  if (!ok)
    g_strlcpy(buf, "unknown", len);
}

bool
kcps__server_org_within_locked(kcps_server_t *server, gint64 ancestor, gint64 org)
{
  if (ancestor <= 0 || org <= 0)
    return false;
  if (ancestor == org)
    return true;
  /* Walk up from org; the tree is shallow (RHQ, sales, dealer, customer). */
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "WITH RECURSIVE up(id) AS (SELECT parent_id FROM orgs WHERE id = ?"
      " UNION SELECT o.parent_id FROM orgs o JOIN up ON o.id = up.id"
      " WHERE o.parent_id IS NOT NULL)"
      " SELECT 1 FROM up WHERE id = ? LIMIT 1",
      NULL);
  if (!stmt)
    return false;
  sqlite3_bind_int64(stmt, 1, org);
  sqlite3_bind_int64(stmt, 2, ancestor);
  bool within = kcps__server_db_step(server, stmt, NULL) == SQLITE_ROW;
  sqlite3_finalize(stmt);
  return within;
}

char *
kcps__server_org_type_locked(kcps_server_t *server, gint64 org)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(server, "SELECT type FROM orgs WHERE id = ?", NULL);
  if (!stmt)
    return NULL;
  sqlite3_bind_int64(stmt, 1, org);
  char *type = kcps__server_db_step(server, stmt, NULL) == SQLITE_ROW
                   ? kcps__server_db_dup_text(stmt, 0) : NULL;
  sqlite3_finalize(stmt);
  return type;
}

gint64
kcps__server_org_id_locked(kcps_server_t *server, const char *public_id)
{
  if (!public_id || !*public_id)
    return 0;
  sqlite3_stmt *stmt =
      kcps__server_db_prepare(server, "SELECT id FROM orgs WHERE public_id = ?", NULL);
  if (!stmt)
    return 0;
  sqlite3_bind_text(stmt, 1, public_id, -1, SQLITE_STATIC);
  gint64 id = kcps__server_db_step(server, stmt, NULL) == SQLITE_ROW
                  ? sqlite3_column_int64(stmt, 0) : 0;
  sqlite3_finalize(stmt);
  return id;
}

bool
kcps__server_may_locked(kcps_server_t *server, const kcps_server_session_t *session,
                        kcps_server_data_t data, gint64 org, bool write)
{
  if (!session || session->kind != KCPS_SESSION_USER || session->user_id <= 0 || org <= 0)
    return false;
  kcps_server_role_t role = kcps__server_role_parse(session->role);
  gint64 own = session->user_org_id;
  bool same = org == own;
  g_autofree char *type = kcps__server_org_type_locked(server, org);
  if (!type)
    return false;
  bool customer = strcmp(type, "customer") == 0;

  switch (role) {
  case KCPS_ROLE_PROVIDER_ADMIN:
  case KCPS_ROLE_PROVIDER_SUPPORT: {
    /* Providers manage their subtree; support only looks. */
    bool admin = role == KCPS_ROLE_PROVIDER_ADMIN;
    bool below = kcps__server_org_within_locked(server, own, org);
    switch (data) {
    case KCPS_DATA_ORGS:
    case KCPS_DATA_CONTRACTS:
    case KCPS_DATA_POLICY:
      return below && (admin || !write);
    case KCPS_DATA_DEVICES:
      return below && customer && (admin || !write);
    case KCPS_DATA_USERS:
      /* Users of customer organizations: never (Table 2-1). Their own
       * provider organization's staff: the provider admin. */
      return same && admin;
    case KCPS_DATA_AUDIT:
      return same && admin && !write;
    case KCPS_DATA_API:
      return below && customer && admin;
    case KCPS_DATA_USER_QUOTA:
    case KCPS_DATA_REPORTS:
      return false;
    }
    return false;
  }
  case KCPS_ROLE_CUSTOMER_ADMIN:
    if (!same)
      return false;
    switch (data) {
    case KCPS_DATA_USERS:
    case KCPS_DATA_USER_QUOTA:
    case KCPS_DATA_DEVICES:
    case KCPS_DATA_POLICY:
    case KCPS_DATA_API:
      return true;
    case KCPS_DATA_ORGS:
    case KCPS_DATA_REPORTS:
    case KCPS_DATA_CONTRACTS:
    case KCPS_DATA_AUDIT:
      return !write;
    }
    return false;
  case KCPS_ROLE_PRINT_MANAGER:
    return same && (data == KCPS_DATA_USER_QUOTA || (data == KCPS_DATA_POLICY && !write) ||
                    (data == KCPS_DATA_ORGS && !write));
  case KCPS_ROLE_CUSTOMER_USER:
  case KCPS_ROLE_GUEST_USER:
    /* Their own jobs only (asked elsewhere); the policy of their own
     * organization may be read (which rules a new password must meet, how
     * long an idle session lasts). */
    return same && !write && (data == KCPS_DATA_POLICY || data == KCPS_DATA_ORGS);
  case KCPS_ROLE_NONE:
    return false;
  }
  return false;
}

bool
kcps__server_may(kcps_server_t *server, const kcps_server_session_t *session,
                 kcps_server_data_t data, gint64 org, bool write)
{
  g_mutex_lock(&server->lock);
  bool may = kcps__server_may_locked(server, session, data, org, write);
  g_mutex_unlock(&server->lock);
  return may;
}

gint64
kcps__server_require(kcps_server_t *server, kcps_http_req_t *req,
                     const kcps_server_session_t *session, kcps_server_data_t data, bool write,
                     const char *org_public_id)
{
  g_mutex_lock(&server->lock);
  gint64 org = kcps__server_org_id_locked(server, org_public_id);
  /* An organization the caller has no business with looks absent. */
  bool visible = org > 0 && session && session->kind == KCPS_SESSION_USER &&
                 kcps__server_org_within_locked(server, session->user_org_id, org);
  bool may = visible && kcps__server_may_locked(server, session, data, org, write);
  g_mutex_unlock(&server->lock);
  if (!visible) {
    kcps_http_respond_error(req, 404, "not_found", "no such organization");
    return 0;
  }
  if (!may) {
    kcps_http_respond_error(req, 403, "forbidden", "your role may not %s this here",
                            write ? "change" : "see");
    return 0;
  }
  return org;
}
