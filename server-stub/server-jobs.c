/* Jobs: registration of locally spooled jobs, the owner's and the device's
 * job lists, pull tickets, job logs and the usage they add up to. A caller
 * only ever sees its own jobs; anyone else's answer 404 as if absent. */
#include "server-private.h"

#include "common/crypto.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

/* The columns job_json() reads, in its order. */
#define JOB_COLUMNS                                                                      \
  "j.public_id, j.client_job_id, j.name, j.pages, j.size, j.sha256, j.state, j.spool,"  \
  " j.pull_url, j.pull_pin, u.email, j.created"
#define JOB_FROM " FROM jobs j JOIN users u ON u.id = j.user_id"

static void
add_job(JsonBuilder *b, sqlite3_stmt *stmt)
{
  json_builder_begin_object(b);
  kcps__server_json_string(b, "id", (const char *)sqlite3_column_text(stmt, 0));
  kcps__server_json_string(b, "client_job_id", (const char *)sqlite3_column_text(stmt, 1));
  kcps__server_json_string(b, "name", (const char *)sqlite3_column_text(stmt, 2));
  kcps__server_json_int(b, "pages", sqlite3_column_int64(stmt, 3));
  kcps__server_json_int(b, "size", sqlite3_column_int64(stmt, 4));
  kcps__server_json_string(b, "sha256", (const char *)sqlite3_column_text(stmt, 5));
  kcps__server_json_string(b, "state", (const char *)sqlite3_column_text(stmt, 6));
  kcps__server_json_string(b, "spool", (const char *)sqlite3_column_text(stmt, 7));
  kcps__server_json_string(b, "pull_url", (const char *)sqlite3_column_text(stmt, 8));
  kcps__server_json_string(b, "pull_pin", (const char *)sqlite3_column_text(stmt, 9));
  kcps__server_json_string(b, "owner", (const char *)sqlite3_column_text(stmt, 10));
  g_autofree char *created = kcps__server_iso_time(sqlite3_column_int64(stmt, 11));
  kcps__server_json_string(b, "created", created);
  json_builder_end_object(b);
}

/* One job by its public id as a JSON node, or NULL (error set on failure
 * only); owner_id > 0: only that user's job. Caller holds the lock. */
static JsonNode *
owned_job_node_locked(kcps_server_t *server, const char *public_id, gint64 owner_id,
                      GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "SELECT " JOB_COLUMNS JOB_FROM " WHERE j.public_id = ?1 AND (?2 = 0 OR j.user_id = ?2)",
      error);
  if (!stmt)
    return NULL;
  sqlite3_bind_text(stmt, 1, public_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 2, owner_id);
  JsonNode *node = NULL;
  if (kcps__server_db_step(server, stmt, error) == SQLITE_ROW) {
    g_autoptr(JsonBuilder) b = json_builder_new();
    add_job(b, stmt);
    node = json_builder_get_root(b);
  }
  sqlite3_finalize(stmt);
  return node;
}

/* One job by its public id, whoever owns it; caller holds the lock. */
static JsonNode *
job_node_locked(kcps_server_t *server, const char *public_id, GError **error)
{
  return owned_job_node_locked(server, public_id, 0, error);
}

/* Answers {"jobs":[...]} from a prepared, bound SELECT JOB_COLUMNS. */
static void
respond_job_list_locked(kcps_server_t *server, kcps_http_req_t *req, sqlite3_stmt *stmt,
                        GError **error)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "jobs");
  json_builder_begin_array(b);
  int rc;
  while ((rc = kcps__server_db_step(server, stmt, error)) == SQLITE_ROW)
    add_job(b, stmt);
  json_builder_end_array(b);
  json_builder_end_object(b);
  if (rc < 0)
    return;
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  kcps_http_respond_json(req, 200, root);
}

void
kcps__server_route_register_job(kcps_server_t *server, kcps_http_req_t *req,
                                const kcps_server_session_t *session, const char *id)
{
  (void)id;
  JsonObject *obj = kcps__server_req_object(req);
  if (!obj)
    return;
  g_autoptr(GError) error = NULL;
  kcps_server_job_req_t in;
  if (!kcps__server_check_job(obj, &in, &error)) {
    kcps__server_respond_bad(req, error);
    return;
  }

  unsigned status = 0;
  g_autoptr(JsonNode) node = NULL;
  g_autofree char *public_id = NULL;
  g_mutex_lock(&server->lock);

  /* A retry of a registration finds the job it made the first time. */
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT public_id, sha256, size FROM jobs WHERE user_id = ? AND client_job_id = ?",
      &error);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, session->user_id);
    sqlite3_bind_text(stmt, 2, in.client_job_id, -1, SQLITE_STATIC);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW) {
      public_id = kcps__server_db_dup_text(stmt, 0);
      bool same = g_strcmp0((const char *)sqlite3_column_text(stmt, 1), in.sha256) == 0 &&
                  sqlite3_column_int64(stmt, 2) == in.size;
      status = same ? 200 : 409;
    }
  }
  sqlite3_finalize(stmt);

  /* The same document again: where to pull it from may have changed (the
   * desktop's address or its 5571 certificate), so a job not yet printed
   * takes the new pull_url and pull_pin. */
  if (!error && status == 200) {
    stmt = kcps__server_db_prepare(
        server,
        "UPDATE jobs SET pull_url = ?1, pull_pin = ?2, updated = ?3"
        " WHERE public_id = ?4 AND state <> 'printed'"
        "   AND (pull_url IS NOT ?1 OR pull_pin IS NOT ?2)",
        &error);
    if (stmt) {
      sqlite3_bind_text(stmt, 1, in.pull_url, -1, SQLITE_STATIC);
      sqlite3_bind_text(stmt, 2, in.pull_pin, -1, SQLITE_STATIC);
      sqlite3_bind_int64(stmt, 3, kcps__server_now());
      sqlite3_bind_text(stmt, 4, public_id, -1, SQLITE_STATIC);
      kcps__server_db_step(server, stmt, &error);
    }
    sqlite3_finalize(stmt);
  }

  if (!error && status == 0) {
    gint64 now = kcps__server_now();
    public_id = g_uuid_string_random();
    stmt = kcps__server_db_prepare(
        server,
        "INSERT INTO jobs (public_id, user_id, org_id, client_job_id, name, pages, size,"
        " sha256, spool, pull_url, pull_pin, state, created, updated)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'local', ?, ?, 'waiting', ?, ?)",
        &error);
    if (stmt) {
      sqlite3_bind_text(stmt, 1, public_id, -1, SQLITE_STATIC);
      sqlite3_bind_int64(stmt, 2, session->user_id);
      sqlite3_bind_int64(stmt, 3, session->user_org_id);
      sqlite3_bind_text(stmt, 4, in.client_job_id, -1, SQLITE_STATIC);
      sqlite3_bind_text(stmt, 5, in.name, -1, SQLITE_STATIC);
      sqlite3_bind_int64(stmt, 6, in.pages);
      sqlite3_bind_int64(stmt, 7, in.size);
      sqlite3_bind_text(stmt, 8, in.sha256, -1, SQLITE_STATIC);
      sqlite3_bind_text(stmt, 9, in.pull_url, -1, SQLITE_STATIC);
      sqlite3_bind_text(stmt, 10, in.pull_pin, -1, SQLITE_STATIC);
      sqlite3_bind_int64(stmt, 11, now);
      sqlite3_bind_int64(stmt, 12, now);
      if (kcps__server_db_step(server, stmt, &error) == SQLITE_DONE)
        status = 201;
    }
    sqlite3_finalize(stmt);
  }
  if (!error && status != 409)
    node = job_node_locked(server, public_id, &error);
  g_mutex_unlock(&server->lock);

  if (error)
    kcps__server_respond_internal(req, error);
  else if (status == 409)
    kcps_http_respond_error(req, 409, "conflict",
                            "client_job_id \"%s\" is registered already for another document",
                            in.client_job_id);
  else if (!node)
    kcps_http_respond_error(req, 500, "internal", "the job vanished after registration");
  else
    kcps_http_respond_json(req, status, node);
}

/* A route on one job that takes no body: the id is a job id (else 404 as
 * for an unknown job) and no body came (else 400). False once answered. */
static bool
job_id_without_body(kcps_http_req_t *req, const char *id)
{
  if (!kcps__server_is_job_id(id)) {
    kcps_http_respond_error(req, 404, "not_found", "no such job");
    return false;
  }
  return kcps__server_body_none(req);
}

/* DELETE /api/v1/jobs/{id}: the owner withdraws a job that is not printed
 * (she deleted it on her computer): no device lists it or gets a ticket for
 * it any more, and a cloud job's document is deleted at once. A job some
 * device already logged (a failed attempt) keeps its row for the reports,
 * without its pull address; any other goes entirely. */
void
kcps__server_route_withdraw_job(kcps_server_t *server, kcps_http_req_t *req,
                                const kcps_server_session_t *session, const char *id)
{
  if (!job_id_without_body(req, id))
    return;
  char source[64];
  kcps__server_req_source(req, source, sizeof source);
  g_autoptr(GError) error = NULL;
  gint64 job = 0;
  bool printed = false, logged = false, ok = false;
  g_autofree char *spool = NULL;
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "SELECT id, state, spool, EXISTS (SELECT 1 FROM job_logs l WHERE l.job_id = jobs.id)"
      " FROM jobs WHERE public_id = ? AND user_id = ? AND pull_url IS NOT NULL",
      &error);
  if (stmt) {
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, session->user_id);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW) {
      job = sqlite3_column_int64(stmt, 0);
      printed = g_strcmp0((const char *)sqlite3_column_text(stmt, 1), "printed") == 0;
      spool = kcps__server_db_dup_text(stmt, 2);
      logged = sqlite3_column_int64(stmt, 3) != 0;
    }
  }
  sqlite3_finalize(stmt);
  if (job > 0 && !printed && kcps__server_db_begin(server, &error)) {
    stmt = kcps__server_db_prepare(
        server,
        logged ? "UPDATE jobs SET pull_url = NULL, pull_pin = NULL, updated = ?2 WHERE id = ?1"
               : "DELETE FROM jobs WHERE id = ?1",
        &error);
    if (stmt) {
      sqlite3_bind_int64(stmt, 1, job);
      if (logged)
        sqlite3_bind_int64(stmt, 2, kcps__server_now());
      ok = kcps__server_db_step(server, stmt, &error) == SQLITE_DONE;
    }
    sqlite3_finalize(stmt);
    stmt = ok ? kcps__server_db_prepare(server, "DELETE FROM cloud_documents WHERE job_id = ?",
                                        &error)
              : NULL;
    if (stmt) {
      sqlite3_bind_int64(stmt, 1, job);
      ok = kcps__server_db_step(server, stmt, &error) == SQLITE_DONE;
    }
    sqlite3_finalize(stmt);
    if (ok) {
      kcps__server_audit_locked(server, session->user_org_id, session->user_id, "job.withdrawn",
                                id, source, logged ? "kept for the reports" : "deleted");
      ok = kcps__server_db_commit(server, &error);
    }
    if (!ok)
      kcps__server_db_rollback(server);
  }
  g_mutex_unlock(&server->lock);
  if (ok && g_strcmp0(spool, "cloud") == 0) {
    g_autofree char *doc = kcps__server_cloud_document_path(server, id);
    if (g_unlink(doc) != 0 && errno != ENOENT)
      g_warning("kcps-server: cannot delete a withdrawn job's document: %s", g_strerror(errno));
  }
  if (error)
    kcps__server_respond_internal(req, error);
  else if (job <= 0)
    kcps_http_respond_error(req, 404, "not_found", "no such job");
  else if (printed)
    kcps_http_respond_error(req, 409, "conflict",
                            "the job was printed; it stays in the records for the reports");
  else
    kcps_http_respond_empty(req, 204);
}

/* GET /api/v1/jobs/{id}: the caller's own job, as the list shows it. */
void
kcps__server_route_get_job(kcps_server_t *server, kcps_http_req_t *req,
                           const kcps_server_session_t *session, const char *id)
{
  if (!job_id_without_body(req, id))
    return;
  g_autoptr(GError) error = NULL;
  g_mutex_lock(&server->lock);
  g_autoptr(JsonNode) node = owned_job_node_locked(server, id, session->user_id, &error);
  g_mutex_unlock(&server->lock);
  kcps__server_respond_found(req, error, node, 200, "no such job");
}

void
kcps__server_route_list_jobs(kcps_server_t *server, kcps_http_req_t *req,
                             const kcps_server_session_t *session, const char *id)
{
  (void)id;
  g_autoptr(GError) error = NULL;
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT " JOB_COLUMNS JOB_FROM " WHERE j.user_id = ? ORDER BY j.id", &error);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, session->user_id);
    respond_job_list_locked(server, req, stmt, &error);
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&server->lock);
  if (error)
    kcps__server_respond_internal(req, error);
}

void
kcps__server_route_usage(kcps_server_t *server, kcps_http_req_t *req,
                         const kcps_server_session_t *session, const char *id)
{
  (void)id;
  g_autoptr(GError) error = NULL;
  gint64 jobs = 0, pages = 0, color = 0;
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "SELECT count(*), coalesce(sum(pages), 0), coalesce(sum(color_pages), 0)"
      " FROM job_logs WHERE user_id = ? AND status = 'completed'",
      &error);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, session->user_id);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW) {
      jobs = sqlite3_column_int64(stmt, 0);
      pages = sqlite3_column_int64(stmt, 1);
      color = sqlite3_column_int64(stmt, 2);
    }
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&server->lock);
  if (error) {
    kcps__server_respond_internal(req, error);
    return;
  }
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  kcps__server_json_string(b, "email", session->email);
  kcps__server_json_int(b, "jobs", jobs);
  kcps__server_json_int(b, "pages", pages);
  kcps__server_json_int(b, "color_pages", color);
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  kcps_http_respond_json(req, 200, root);
}

void
kcps__server_route_device_jobs(kcps_server_t *server, kcps_http_req_t *req,
                               const kcps_server_session_t *session, const char *id)
{
  (void)id;
  g_autoptr(GError) error = NULL;
  g_mutex_lock(&server->lock);
  /* Not yet printed: waiting, or failed at a device and so printable again. */
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "SELECT " JOB_COLUMNS JOB_FROM
      " WHERE j.user_id = ? AND j.org_id = ? AND j.state IN ('waiting', 'failed')"
      " AND j.pull_url IS NOT NULL ORDER BY j.id",
      &error);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, session->user_id);
    sqlite3_bind_int64(stmt, 2, session->device_org_id);
    respond_job_list_locked(server, req, stmt, &error);
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&server->lock);
  if (error)
    kcps__server_respond_internal(req, error);
}

/* The device user's job with this public id, in the device's organization.
 * Caller holds the lock. False with no error when there is none. */
typedef struct {
  gint64 id;
  char *client_job_id;
  char *state;
  char *pull_url;
  char *pull_pin;
} device_job_t;

static void
device_job_clear(device_job_t *job)
{
  g_free(job->client_job_id);
  g_free(job->state);
  g_free(job->pull_url);
  g_free(job->pull_pin);
}

static bool
find_device_job_locked(kcps_server_t *server, const kcps_server_session_t *session,
                       const char *public_id, device_job_t *out, GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "SELECT id, client_job_id, state, pull_url, pull_pin FROM jobs"
      " WHERE public_id = ? AND user_id = ? AND org_id = ?",
      error);
  if (!stmt)
    return false;
  sqlite3_bind_text(stmt, 1, public_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 2, session->user_id);
  sqlite3_bind_int64(stmt, 3, session->device_org_id);
  bool found = kcps__server_db_step(server, stmt, error) == SQLITE_ROW;
  if (found) {
    out->id = sqlite3_column_int64(stmt, 0);
    out->client_job_id = kcps__server_db_dup_text(stmt, 1);
    out->state = kcps__server_db_dup_text(stmt, 2);
    out->pull_url = kcps__server_db_dup_text(stmt, 3);
    out->pull_pin = kcps__server_db_dup_text(stmt, 4);
  }
  sqlite3_finalize(stmt);
  return found;
}

void
kcps__server_route_ticket(kcps_server_t *server, kcps_http_req_t *req,
                          const kcps_server_session_t *session, const char *id)
{
  if (!job_id_without_body(req, id))
    return;
  g_autoptr(GError) error = NULL;
  device_job_t job = {0};
  g_autofree char *text = NULL;
  g_autofree char *tid = kcps_crypto_random_token(16);
  gint64 now = kcps__server_now();
  kcps_ticket_t ticket = {
    .tid = tid,
    .job = (char *)id,
    .user = session->email,
    .device = session->device_name,
    .exp = now + KCPS_SERVER_TICKET_TTL,
  };

  g_mutex_lock(&server->lock);
  bool found = find_device_job_locked(server, session, id, &job, &error);
  bool printable = found && g_strcmp0(job.state, "printed") != 0 && job.pull_url;
  if (printable && tid) {
    ticket.cjob = job.client_job_id;
    text = kcps_ticket_sign(server->ticket_key, &ticket, &error);
  }
  if (text) {
    /* Recorded so a job log can be matched to a ticket this device got. */
    sqlite3_stmt *stmt = kcps__server_db_prepare(
        server,
        "INSERT INTO tickets (tid, job_id, device_id, user_id, issued, expires)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        &error);
    if (stmt) {
      sqlite3_bind_text(stmt, 1, tid, -1, SQLITE_STATIC);
      sqlite3_bind_int64(stmt, 2, job.id);
      sqlite3_bind_int64(stmt, 3, session->device_id);
      sqlite3_bind_int64(stmt, 4, session->user_id);
      sqlite3_bind_int64(stmt, 5, now);
      sqlite3_bind_int64(stmt, 6, ticket.exp);
      kcps__server_db_step(server, stmt, &error);
    }
    sqlite3_finalize(stmt);
  }
  g_mutex_unlock(&server->lock);

  if (!tid && !error)
    g_set_error_literal(&error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_CRYPTO,
                        "ticket: no random id");
  if (error)
    kcps__server_respond_internal(req, error);
  else if (!found)
    kcps_http_respond_error(req, 404, "not_found", "no such job");
  else if (!printable && !job.pull_url && g_strcmp0(job.state, "printed") != 0)
    kcps_http_respond_error(req, 410, "gone", "the job was withdrawn by its owner");
  else if (!printable)
    kcps_http_respond_error(req, 409, "conflict", "the job was printed already");
  else {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    kcps__server_json_string(b, "ticket", text);
    kcps__server_json_string(b, "pull_url", job.pull_url);
    kcps__server_json_string(b, "pull_pin", job.pull_pin);
    kcps__server_json_int(b, "expires_in", KCPS_SERVER_TICKET_TTL);
    json_builder_end_object(b);
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    kcps_http_respond_json(req, 201, root);
  }
  device_job_clear(&job);
}

void
kcps__server_route_job_log(kcps_server_t *server, kcps_http_req_t *req,
                           const kcps_server_session_t *session, const char *id)
{
  if (!kcps__server_is_job_id(id)) {
    kcps_http_respond_error(req, 404, "not_found", "no such job");
    return;
  }
  JsonObject *obj = kcps__server_req_object(req);
  if (!obj)
    return;
  g_autoptr(GError) error = NULL;
  kcps_server_log_req_t in;
  if (!kcps__server_check_log(obj, &in, &error)) {
    kcps__server_respond_bad(req, error);
    return;
  }

  device_job_t job = {0};
  const char *refusal = NULL;
  g_autoptr(JsonNode) node = NULL;
  gint64 now = kcps__server_now();
  g_mutex_lock(&server->lock);
  bool found = find_device_job_locked(server, session, id, &job, &error);
  if (found && g_strcmp0(job.state, "printed") == 0)
    refusal = "the job was printed already";

  /* Only a device that was given a ticket for the job can have printed it. */
  if (found && !refusal && !error) {
    sqlite3_stmt *stmt = kcps__server_db_prepare(
        server, "SELECT 1 FROM tickets WHERE job_id = ? AND device_id = ? LIMIT 1", &error);
    if (stmt) {
      sqlite3_bind_int64(stmt, 1, job.id);
      sqlite3_bind_int64(stmt, 2, session->device_id);
      if (kcps__server_db_step(server, stmt, &error) == SQLITE_DONE && !error)
        refusal = "this device was never given a ticket for the job";
    }
    sqlite3_finalize(stmt);
  }

  /* The log and the job's new state commit together. */
  if (found && !refusal && !error && kcps__server_db_begin(server, &error)) {
    sqlite3_stmt *stmt = kcps__server_db_prepare(
        server,
        "INSERT INTO job_logs (job_id, device_id, user_id, org_id, pages, color_pages, duplex,"
        " status, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &error);
    if (stmt) {
      sqlite3_bind_int64(stmt, 1, job.id);
      sqlite3_bind_int64(stmt, 2, session->device_id);
      sqlite3_bind_int64(stmt, 3, session->user_id);
      sqlite3_bind_int64(stmt, 4, session->device_org_id);
      sqlite3_bind_int64(stmt, 5, in.pages);
      sqlite3_bind_int64(stmt, 6, in.color_pages);
      sqlite3_bind_int(stmt, 7, in.duplex ? 1 : 0);
      sqlite3_bind_text(stmt, 8, in.completed ? "completed" : "failed", -1, SQLITE_STATIC);
      sqlite3_bind_int64(stmt, 9, now);
      kcps__server_db_step(server, stmt, &error);
    }
    sqlite3_finalize(stmt);
    if (!error) {
      stmt = kcps__server_db_prepare(server,
                                     "UPDATE jobs SET state = ?, updated = ? WHERE id = ?",
                                     &error);
      if (stmt) {
        sqlite3_bind_text(stmt, 1, in.completed ? "printed" : "failed", -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 2, now);
        sqlite3_bind_int64(stmt, 3, job.id);
        kcps__server_db_step(server, stmt, &error);
      }
      sqlite3_finalize(stmt);
    }
    if (error)
      kcps__server_db_rollback(server);
    else if (kcps__server_db_commit(server, &error))
      node = job_node_locked(server, id, &error);
  }
  g_mutex_unlock(&server->lock);

  if (error)
    kcps__server_respond_internal(req, error);
  else if (!found)
    kcps_http_respond_error(req, 404, "not_found", "no such job");
  else if (refusal)
    kcps_http_respond_error(req, 409, "conflict", "%s", refusal);
  else if (!node)
    kcps_http_respond_error(req, 500, "internal", "the job vanished after its log");
  else
    kcps_http_respond_json(req, 201, node);
  device_job_clear(&job);
}
