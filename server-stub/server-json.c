/* Small pieces every route file needs: JSON members, RFC 3339 times and
 * bad-request errors. */
#include "server-private.h"

void
kcps__server_json_string(JsonBuilder *b, const char *name, const char *value)
{
  json_builder_set_member_name(b, name);
  if (value)
    json_builder_add_string_value(b, value);
  else
    json_builder_add_null_value(b);
}

void
kcps__server_json_int(JsonBuilder *b, const char *name, gint64 value)
{
  json_builder_set_member_name(b, name);
  json_builder_add_int_value(b, value);
}

void
kcps__server_json_bool(JsonBuilder *b, const char *name, bool value)
{
  json_builder_set_member_name(b, name);
  json_builder_add_boolean_value(b, value);
}

char *
kcps__server_iso_time(gint64 t)
{
  g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);
  return dt ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ") : g_strdup("");
}

bool
kcps__server_set_bad(GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error_literal(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_BAD_REQUEST, msg);
  return false;
}

void
kcps__server_respond_rows(kcps_server_t *server, kcps_http_req_t *req, const char *member,
                          const char *sql, gint64 param, kcps_server_row_fn_t add)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, member);
  json_builder_begin_array(b);
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(server, sql, &error);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, param);
    while (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW)
      add(b, stmt);
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&server->lock);
  json_builder_end_array(b);
  json_builder_end_object(b);
  if (error) {
    kcps__server_respond_internal(req, error);
    return;
  }
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  kcps_http_respond_json(req, 200, root);
}
