/* Cloud spool (issue 5): resumable chunked uploads of a user's document that
 * become a cloud job, the document fetch of a device holding a ticket, and
 * retention of the stored documents. Files live in DATA/cloud (0700). */
#include "server-private.h"

#include "common/crypto.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The largest chunk a PUT may carry; the create answer tells the client.
 * Its body is streamed to the upload's file (bounded memory), not buffered. */
#define CHUNK_MAX (8 * 1024 * 1024)
/* How long a chunk waits for another PUT of the same upload to end (e.g.
 * the one of a killed client whose connection the server has not seen
 * close yet) before it is refused with 409. */
#define CLAIM_WAIT_S 15
#define MAX_IDEMPOTENCY_KEY 128
#define MB (G_GINT64_CONSTANT(1024) * 1024)

const char kcps__server_schema_uploads[] =
    "CREATE TABLE uploads ("
    "  id INTEGER PRIMARY KEY,"
    "  public_id TEXT NOT NULL UNIQUE,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  org_id INTEGER NOT NULL REFERENCES orgs(id),"
    "  idempotency_key TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  pages INTEGER NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  sha256 TEXT NOT NULL,"
    "  received INTEGER NOT NULL DEFAULT 0," /* body bytes of every PUT, re-sent ones too */
    "  created INTEGER NOT NULL,"
    "  expires INTEGER NOT NULL,"
    "  UNIQUE (user_id, idempotency_key));"
    "CREATE TABLE cloud_documents ("
    "  job_id INTEGER PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,"
    "  size INTEGER NOT NULL,"
    "  expires INTEGER NOT NULL);"
    "CREATE TABLE cloud_ticket_uses (tid TEXT PRIMARY KEY, used INTEGER NOT NULL);";

/* Paths ------------------------------------------------------------------ */

static char *
cloud_dir(kcps_server_t *server, const char *sub)
{
  return g_build_filename(server->data_dir, "cloud", sub, NULL);
}

static bool
ensure_dirs(kcps_server_t *server, GError **error)
{
  const char *subs[] = {"uploads", "documents"};
  g_autofree char *top = cloud_dir(server, NULL);
  if (g_mkdir_with_parents(top, 0700) != 0 || chmod(top, 0700) != 0) {
    g_set_error(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_IO, "cannot make %s: %s", top,
                g_strerror(errno));
    return false;
  }
  for (size_t i = 0; i < G_N_ELEMENTS(subs); i++) {
    g_autofree char *dir = cloud_dir(server, subs[i]);
    if (g_mkdir_with_parents(dir, 0700) != 0) {
      g_set_error(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_IO, "cannot make %s: %s", dir,
                  g_strerror(errno));
      return false;
    }
  }
  return true;
}

static char *
part_path(kcps_server_t *server, const char *upload_id)
{
  g_autofree char *name = g_strconcat(upload_id, ".part", NULL);
  return g_build_filename(server->data_dir, "cloud", "uploads", name, NULL);
}

static char *
document_path(kcps_server_t *server, const char *job_id)
{
  g_autofree char *name = g_strconcat(job_id, ".pdf", NULL);
  return g_build_filename(server->data_dir, "cloud", "documents", name, NULL);
}

char *
kcps__server_cloud_document_path(kcps_server_t *server, const char *job_id)
{
  return document_path(server, job_id);
}

/* Bytes the server holds of an upload (0 when the part file is not there). */
static gint64
part_size(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0 ? (gint64)st.st_size : 0;
}

/* A chunk being received (its body streams to the upload's file). */
typedef struct {
  kcps_server_t *server;
  char *id;         /* upload public id */
  gint64 row;       /* uploads.id */
  int fd;           /* the part file */
  gint64 have;      /* bytes accepted before this chunk */
  gint64 off, len;  /* the chunk */
  gint64 pos;       /* bytes of it received */
  bool differs;     /* a byte sent again is not the one held */
  int write_errno;  /* writing failed (errno) */
  bool done;        /* the handler accepted or refused it; else it broke off */
} put_t;

/* Chunks being received, one at a time per upload: upload public id ->
 * put_t. While one runs, the upload's file may hold more bytes than are
 * accepted; the offset answered is the one from before it. Lock order:
 * server->lock, then claims_lock. */
static GMutex claims_lock;
static GCond claims_cond;
static GHashTable *claims;

/* Bytes the server holds and accepted of an upload. */
static gint64
committed_size(const char *upload_id, const char *path)
{
  g_mutex_lock(&claims_lock);
  const put_t *put = claims ? g_hash_table_lookup(claims, upload_id) : NULL;
  gint64 have = put ? put->have : part_size(path);
  g_mutex_unlock(&claims_lock);
  return have;
}

static void
fsync_dir(const char *file_path)
{
  g_autofree char *dir = g_path_get_dirname(file_path);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
}

/* Retention -------------------------------------------------------------- */

/* Deletes documents and unfinished uploads whose time is over; a job that
 * never printed goes with its document, a printed one stays for the
 * reports. Caller holds the lock. */
static void
expire_locked(kcps_server_t *server, gint64 now)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server,
      "SELECT j.public_id, j.id, j.org_id, j.user_id FROM cloud_documents d"
      " JOIN jobs j ON j.id = d.job_id WHERE d.expires <= ?",
      &error);
  g_autoptr(GArray) jobs = g_array_new(FALSE, FALSE, sizeof(gint64));
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, now);
    while (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW) {
      g_ptr_array_add(files, document_path(server, (const char *)sqlite3_column_text(stmt, 0)));
      gint64 id = sqlite3_column_int64(stmt, 1);
      g_array_append_val(jobs, id);
      kcps__server_audit_locked(server, sqlite3_column_int64(stmt, 2),
                                sqlite3_column_int64(stmt, 3), "cloud_document_expired",
                                (const char *)sqlite3_column_text(stmt, 0), NULL, NULL);
    }
  }
  sqlite3_finalize(stmt);
  stmt = kcps__server_db_prepare(server, "SELECT public_id FROM uploads WHERE expires <= ?",
                                 &error);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, now);
    while (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW)
      g_ptr_array_add(files, part_path(server, (const char *)sqlite3_column_text(stmt, 0)));
  }
  sqlite3_finalize(stmt);

  for (guint i = 0; i < jobs->len; i++) {
    gint64 id = g_array_index(jobs, gint64, i);
    stmt = kcps__server_db_prepare(
        server,
        "DELETE FROM jobs WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM job_logs WHERE job_id = ?1)",
        &error);
    if (stmt) {
      sqlite3_bind_int64(stmt, 1, id);
      kcps__server_db_step(server, stmt, &error);
    }
    sqlite3_finalize(stmt);
    /* A job kept for the reports (a device logged it) has nothing left to
     * print: no device lists it or gets a ticket for it any more. */
    stmt = kcps__server_db_prepare(
        server, "UPDATE jobs SET pull_url = NULL, pull_pin = NULL WHERE id = ?", &error);
    if (stmt) {
      sqlite3_bind_int64(stmt, 1, id);
      kcps__server_db_step(server, stmt, &error);
    }
    sqlite3_finalize(stmt);
    stmt = kcps__server_db_prepare(server, "DELETE FROM cloud_documents WHERE job_id = ?",
                                   &error);
    if (stmt) {
      sqlite3_bind_int64(stmt, 1, id);
      kcps__server_db_step(server, stmt, &error);
    }
    sqlite3_finalize(stmt);
  }
  stmt = kcps__server_db_prepare(server, "DELETE FROM uploads WHERE expires <= ?", &error);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, now);
    kcps__server_db_step(server, stmt, &error);
  }
  sqlite3_finalize(stmt);
  for (guint i = 0; i < files->len; i++)
    if (g_unlink(g_ptr_array_index(files, i)) != 0 && errno != ENOENT)
      g_warning("kcps-server: cannot delete an expired cloud file: %s", g_strerror(errno));
  if (error)
    g_warning("kcps-server: cloud retention: %s", error->message);
}

void
kcps__server_uploads_expire(kcps_server_t *server, gint64 now)
{
  g_mutex_lock(&server->lock);
  expire_locked(server, now);
  g_mutex_unlock(&server->lock);
}

void
kcps_server_expire(kcps_server_t *server)
{
  kcps__server_uploads_expire(server, kcps__server_now());
}

/* Uploads ------------------------------------------------------------------ */

typedef struct {
  gint64 id;
  char *public_id;
  char *key;
  char *name;
  gint64 pages;
  gint64 size;
  char *sha256;
  gint64 received;
  gint64 expires;
} upload_t;

static void
upload_clear(upload_t *u)
{
  g_free(u->public_id);
  g_free(u->key);
  g_free(u->name);
  g_free(u->sha256);
  memset(u, 0, sizeof *u);
}

#define UPLOAD_COLUMNS "id, public_id, idempotency_key, name, pages, size, sha256, received, expires"

static void
upload_read(sqlite3_stmt *stmt, upload_t *u)
{
  u->id = sqlite3_column_int64(stmt, 0);
  u->public_id = kcps__server_db_dup_text(stmt, 1);
  u->key = kcps__server_db_dup_text(stmt, 2);
  u->name = kcps__server_db_dup_text(stmt, 3);
  u->pages = sqlite3_column_int64(stmt, 4);
  u->size = sqlite3_column_int64(stmt, 5);
  u->sha256 = kcps__server_db_dup_text(stmt, 6);
  u->received = sqlite3_column_int64(stmt, 7);
  u->expires = sqlite3_column_int64(stmt, 8);
}

/* The session user's upload by public id (another user's is not found). */
static bool
find_upload_locked(kcps_server_t *server, const kcps_server_session_t *session,
                   const char *public_id, upload_t *out, GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT " UPLOAD_COLUMNS " FROM uploads WHERE public_id = ? AND user_id = ?",
      error);
  if (!stmt)
    return false;
  sqlite3_bind_text(stmt, 1, public_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 2, session->user_id);
  bool found = kcps__server_db_step(server, stmt, error) == SQLITE_ROW;
  if (found)
    upload_read(stmt, out);
  sqlite3_finalize(stmt);
  return found;
}

/* The user's job made from idempotency key (its public id, sha256, size). */
static char *
find_job_locked(kcps_server_t *server, gint64 user_id, const char *key, char **sha256,
                gint64 *size, GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT public_id, sha256, size FROM jobs WHERE user_id = ? AND client_job_id = ?",
      error);
  if (!stmt)
    return NULL;
  sqlite3_bind_int64(stmt, 1, user_id);
  sqlite3_bind_text(stmt, 2, key, -1, SQLITE_STATIC);
  char *id = NULL;
  if (kcps__server_db_step(server, stmt, error) == SQLITE_ROW) {
    id = kcps__server_db_dup_text(stmt, 0);
    *sha256 = kcps__server_db_dup_text(stmt, 1);
    *size = sqlite3_column_int64(stmt, 2);
  }
  sqlite3_finalize(stmt);
  return id;
}

/* {id, idempotency_key, name, size, sha256, offset, received, state, job_id,
 * chunk_max, expires}; state "open" or "complete" (then id is null when the
 * upload record is gone and only the job remains). */
static JsonNode *
upload_node(const upload_t *u, gint64 offset, const char *job_id)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  kcps__server_json_string(b, "id", u->public_id);
  kcps__server_json_string(b, "idempotency_key", u->key);
  kcps__server_json_string(b, "name", u->name);
  kcps__server_json_int(b, "pages", u->pages);
  kcps__server_json_int(b, "size", u->size);
  kcps__server_json_string(b, "sha256", u->sha256);
  kcps__server_json_int(b, "offset", offset);
  kcps__server_json_int(b, "received", u->received);
  kcps__server_json_string(b, "state", job_id ? "complete" : "open");
  kcps__server_json_string(b, "job_id", job_id);
  kcps__server_json_int(b, "chunk_max", CHUNK_MAX);
  if (u->expires) {
    g_autofree char *expires = kcps__server_iso_time(u->expires);
    kcps__server_json_string(b, "expires", expires);
  }
  json_builder_end_object(b);
  return json_builder_get_root(b);
}

static bool
idempotency_key_ok(const char *key)
{
  for (const char *p = key; *p; p++)
    if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_' && *p != '.')
      return false;
  return true;
}

typedef struct {
  const char *key;
  const char *name;
  gint64 pages;
  gint64 size;
  char sha256[65];
} create_req_t;

/* The body of POST /api/v1/uploads (unknown fields refused). */
bool
kcps__server_check_upload(JsonObject *obj, const char **key, const char **name, gint64 *pages,
                          gint64 *size, char sha256[65], GError **error)
{
  static const char *const allowed[] = {"idempotency_key", "name", "pages", "size", "sha256",
                                        NULL};
  const char *hex = NULL;
  if (!kcps__server_check_fields(obj, allowed, error) ||
      !kcps__server_field_string(obj, "idempotency_key", 1, MAX_IDEMPOTENCY_KEY,
                                 KCPS_TEXT_PLAIN, key, error))
    return false;
  if (!idempotency_key_ok(*key))
    return kcps__server_set_bad(error, "field \"idempotency_key\" may hold only letters, digits, "
                                       "'-', '_' and '.'");
  if (!kcps__server_field_string(obj, "name", 0, KCPS_SERVER_MAX_NAME,
                                 KCPS_TEXT_PLAIN | KCPS_TEXT_OPTIONAL, name, error) ||
      !kcps__server_field_int(obj, "pages", false, 1, KCPS_SERVER_MAX_PAGES, 1, pages, error) ||
      !kcps__server_field_int(obj, "size", true, 1, KCPS_SERVER_MAX_SIZE, 0, size, error) ||
      !kcps__server_field_string(obj, "sha256", 64, 64, KCPS_TEXT_PLAIN, &hex, error))
    return false;
  for (int i = 0; i < 64; i++) {
    if (!g_ascii_isxdigit(hex[i]))
      return kcps__server_set_bad(error, "field \"sha256\" must be 64 hexadecimal digits");
    sha256[i] = g_ascii_tolower(hex[i]);
  }
  sha256[64] = '\0';
  if (!*name)
    *name = "";
  return true;
}

static void
route_create(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
             const char *id)
{
  (void)id;
  JsonObject *obj = kcps__server_req_object(req);
  if (!obj)
    return;
  g_autoptr(GError) error = NULL;
  create_req_t in;
  if (!kcps__server_check_upload(obj, &in.key, &in.name, &in.pages, &in.size, in.sha256,
                                 &error)) {
    kcps__server_respond_bad(req, error);
    return;
  }

  unsigned status = 0;
  gint64 limit = 0, offset = 0;
  g_autofree char *job_id = NULL;
  g_autofree char *job_sha = NULL;
  gint64 job_size = 0;
  upload_t u = {0};
  gint64 now = kcps__server_now();
  g_mutex_lock(&server->lock);
  expire_locked(server, now);
  if (!ensure_dirs(server, &error))
    goto out;
  /* A retry after the job was made: the same job, never a second one. */
  job_id = find_job_locked(server, session->user_id, in.key, &job_sha, &job_size, &error);
  if (error)
    goto out;
  if (job_id) {
    bool same = g_strcmp0(job_sha, in.sha256) == 0 && job_size == in.size;
    status = same ? 200 : 409;
    if (same) {
      /* The upload record, when it is still there, is the one answered. */
      sqlite3_stmt *stmt = kcps__server_db_prepare(
          server,
          "SELECT " UPLOAD_COLUMNS " FROM uploads WHERE user_id = ? AND idempotency_key = ?",
          &error);
      if (stmt) {
        sqlite3_bind_int64(stmt, 1, session->user_id);
        sqlite3_bind_text(stmt, 2, in.key, -1, SQLITE_STATIC);
        if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW)
          upload_read(stmt, &u);
      }
      sqlite3_finalize(stmt);
      if (!u.key) {
        u.key = g_strdup(in.key);
        u.name = g_strdup(in.name);
        u.pages = in.pages;
        u.sha256 = g_strdup(in.sha256);
      }
      u.size = in.size;
      offset = in.size;
    }
    goto out;
  }
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "SELECT " UPLOAD_COLUMNS " FROM uploads WHERE user_id = ? AND idempotency_key = ?",
      &error);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, session->user_id);
    sqlite3_bind_text(stmt, 2, in.key, -1, SQLITE_STATIC);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW)
      upload_read(stmt, &u);
  }
  sqlite3_finalize(stmt);
  if (error)
    goto out;
  if (u.public_id) {
    bool same = g_strcmp0(u.sha256, in.sha256) == 0 && u.size == in.size;
    status = same ? 200 : 409;
    g_autofree char *path = part_path(server, u.public_id);
    offset = committed_size(u.public_id, path);
    goto out;
  }

  /* A new upload: the declared size must fit the organization's limit
   * before any byte is sent. */
  limit = kcps__server_setting_locked(server, session->user_org_id, "cloud_max_document_mb") * MB;
  if (in.size > limit) {
    status = 413;
    kcps__server_audit_locked(server, session->user_org_id, session->user_id,
                              "cloud_upload_refused", session->email, session->source,
                              "declared size above the organization's limit");
    goto out;
  }
  gint64 hours = kcps__server_setting_locked(server, session->user_org_id, "cloud_retention_hours");
  u.public_id = g_uuid_string_random();
  u.key = g_strdup(in.key);
  u.name = g_strdup(in.name);
  u.pages = in.pages;
  u.size = in.size;
  u.sha256 = g_strdup(in.sha256);
  u.expires = now + hours * 3600;
  stmt = kcps__server_db_prepare(
      server,
      "INSERT INTO uploads (public_id, user_id, org_id, idempotency_key, name, pages, size,"
      " sha256, created, expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      &error);
  if (stmt) {
    sqlite3_bind_text(stmt, 1, u.public_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, session->user_id);
    sqlite3_bind_int64(stmt, 3, session->user_org_id);
    sqlite3_bind_text(stmt, 4, u.key, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 5, u.name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 6, u.pages);
    sqlite3_bind_int64(stmt, 7, u.size);
    sqlite3_bind_text(stmt, 8, u.sha256, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 9, now);
    sqlite3_bind_int64(stmt, 10, u.expires);
    if (kcps__server_db_step(server, stmt, &error) == SQLITE_DONE)
      status = 201;
  }
  sqlite3_finalize(stmt);
  if (status == 201)
    kcps__server_audit_locked(server, session->user_org_id, session->user_id,
                              "cloud_upload_created", u.public_id, session->source, NULL);
out:
  g_mutex_unlock(&server->lock);
  if (error)
    kcps__server_respond_internal(req, error);
  else if (status == 409)
    kcps_http_respond_error(req, 409, "conflict",
                            "idempotency_key \"%s\" is in use already for another document",
                            in.key);
  else if (status == 413)
    kcps_http_respond_error(req, 413, "too_large",
                            "the document (%" G_GINT64_FORMAT " bytes) is larger than the "
                            "organization's limit for cloud documents (%" G_GINT64_FORMAT
                            " bytes, setting cloud_max_document_mb)",
                            in.size, limit);
  else {
    g_autoptr(JsonNode) node = upload_node(&u, offset, job_id);
    kcps_http_respond_json(req, status, node);
  }
  upload_clear(&u);
}

static void
route_status(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
             const char *id)
{
  if (!kcps__server_is_uuid(id)) {
    kcps_http_respond_error(req, 404, "not_found", "no such upload");
    return;
  }
  g_autoptr(GError) error = NULL;
  upload_t u = {0};
  g_autofree char *job_id = NULL;
  g_autofree char *job_sha = NULL;
  gint64 job_size = 0, offset = 0;
  g_mutex_lock(&server->lock);
  expire_locked(server, kcps__server_now());
  bool found = find_upload_locked(server, session, id, &u, &error);
  if (found) {
    job_id = find_job_locked(server, session->user_id, u.key, &job_sha, &job_size, &error);
    g_autofree char *path = part_path(server, id);
    offset = job_id ? u.size : committed_size(id, path);
  }
  g_mutex_unlock(&server->lock);
  if (error)
    kcps__server_respond_internal(req, error);
  else if (!found)
    kcps_http_respond_error(req, 404, "not_found", "no such upload");
  else {
    g_autofree char *text = g_strdup_printf("%" G_GINT64_FORMAT, offset);
    kcps_http_req_add_header(req, "Upload-Offset", text);
    g_autoptr(JsonNode) node = upload_node(&u, offset, job_id);
    kcps_http_respond_json(req, 200, node);
  }
  upload_clear(&u);
}

/* The offset of a chunk: ?offset=N, or the first number of
 * "Content-Range: bytes N-M/T" (M and T are checked against the body and the
 * declared size). -1 when neither is there or they are malformed. */
gint64
kcps__server_chunk_offset(const char *query, const char *range, gint64 len, gint64 size)
{
  gint64 off = -1;
  if (query) {
    if (!*query || strlen(query) > 19)
      return -1;
    for (const char *p = query; *p; p++)
      if (!g_ascii_isdigit(*p))
        return -1;
    off = g_ascii_strtoll(query, NULL, 10);
  }
  if (range) {
    gint64 a = 0, b = 0, t = 0;
    char tail = 0;
    int n = sscanf(range, "bytes %" G_GINT64_FORMAT "-%" G_GINT64_FORMAT "/%" G_GINT64_FORMAT "%c",
                   &a, &b, &t, &tail);
    if (n != 3 || a < 0 || b < a || t != size || b - a + 1 != len)
      return -1;
    if (off >= 0 && off != a)
      return -1;
    off = a;
  }
  return off;
}

static bool
write_all_at(int fd, const char *data, gint64 len, gint64 at)
{
  while (len > 0) {
    ssize_t n = pwrite(fd, data, (size_t)len, (off_t)at);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    data += n;
    len -= n;
    at += n;
  }
  return true;
}

/* Do the bytes at [at, at+len) of fd equal data? */
static bool
same_at(int fd, const char *data, gint64 len, gint64 at)
{
  char buf[16384];
  while (len > 0) {
    size_t want = (size_t)MIN(len, (gint64)sizeof buf);
    ssize_t n = pread(fd, buf, want, (off_t)at);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0 || memcmp(buf, data, (size_t)n) != 0)
      return false;
    data += n;
    len -= n;
    at += n;
  }
  return true;
}

/* Parses a Content-Length: digits only, at most 19 of them; -1 otherwise. */
static gint64
content_length(const char *value)
{
  if (!value || !*value || strlen(value) > 18)
    return -1;
  for (const char *p = value; *p; p++)
    if (!g_ascii_isdigit(*p))
      return -1;
  return g_ascii_strtoll(value, NULL, 10);
}

/* Waits (at most CLAIM_WAIT_S) until no other chunk of the upload is being
 * received, then makes put the one. False when the other did not end. */
static bool
claim(put_t *put)
{
  gint64 until = g_get_monotonic_time() + CLAIM_WAIT_S * G_USEC_PER_SEC;
  bool ok = true;
  g_mutex_lock(&claims_lock);
  if (!claims)
    claims = g_hash_table_new(g_str_hash, g_str_equal);
  while (ok && g_hash_table_contains(claims, put->id))
    ok = g_cond_wait_until(&claims_cond, &claims_lock, until);
  if (ok && !g_hash_table_contains(claims, put->id))
    g_hash_table_insert(claims, put->id, put);
  else
    ok = false;
  g_mutex_unlock(&claims_lock);
  return ok;
}

static void
unclaim(put_t *put)
{
  g_mutex_lock(&claims_lock);
  if (claims && g_hash_table_lookup(claims, put->id) == put) {
    g_hash_table_remove(claims, put->id);
    g_cond_broadcast(&claims_cond);
  }
  g_mutex_unlock(&claims_lock);
}

/* The sink: bytes the server has must come again the same; the rest is
 * written at its place. False stops taking the body. */
static bool
put_write(void *data, const char *buf, size_t n)
{
  put_t *put = data;
  gint64 at = put->off + put->pos;
  gint64 same = at < put->have ? MIN((gint64)n, put->have - at) : 0;
  if (same > 0 && !same_at(put->fd, buf, same, at)) {
    put->differs = true;
    return false;
  }
  if ((gint64)n > same && !write_all_at(put->fd, buf + same, (gint64)n - same, at + same)) {
    put->write_errno = errno ? errno : EIO;
    return false;
  }
  put->pos += (gint64)n;
  return true;
}

/* Puts the file back to the bytes accepted before the chunk (durable). */
static void
put_cut_back(put_t *put)
{
  struct stat st;
  if (fstat(put->fd, &st) == 0 && st.st_size > put->have) {
    if (ftruncate(put->fd, (off_t)put->have) != 0 || fdatasync(put->fd) != 0)
      g_warning("kcps-server: cannot cut back upload %s: %s", put->id, g_strerror(errno));
  }
}

static void
add_received_locked(kcps_server_t *server, gint64 row, gint64 n, GError **error)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(
      server, "UPDATE uploads SET received = received + ? WHERE id = ?", error);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, n);
    sqlite3_bind_int64(stmt, 2, row);
    kcps__server_db_step(server, stmt, error);
  }
  sqlite3_finalize(stmt);
}

/* The end of a request that carried a chunk. When it broke off mid-body
 * (the handler never ran), the bytes of it are cut off again: the upload
 * stays at its last whole, fsync'd offset, and they count as received. */
static void
put_free(void *data)
{
  put_t *put = data;
  if (!put->done) {
    g_message("kcps-server: upload %s: a chunk broke off after %" G_GINT64_FORMAT " of %"
              G_GINT64_FORMAT " bytes; the upload stays at %" G_GINT64_FORMAT " bytes",
              put->id, put->pos, put->len, put->have);
    put_cut_back(put);
    if (put->pos > 0) {
      g_autoptr(GError) error = NULL;
      g_mutex_lock(&put->server->lock);
      add_received_locked(put->server, put->row, put->pos, &error);
      g_mutex_unlock(&put->server->lock);
      if (error)
        g_warning("kcps-server: upload %s: %s", put->id, error->message);
    }
  }
  unclaim(put);
  close(put->fd);
  g_free(put->id);
  g_free(put);
}

static void
refuse_chunk(kcps_http_req_t *req, unsigned status, gint64 have, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);

static void
refuse_chunk(kcps_http_req_t *req, unsigned status, gint64 have, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *text = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_autofree char *offset = g_strdup_printf("%" G_GINT64_FORMAT, have);
  kcps_http_req_add_header(req, "Upload-Offset", offset);
  kcps_http_respond_error(req, status,
                          status == 409   ? "conflict"
                          : status == 413 ? "too_large"
                          : status == 411 ? "length_required"
                                          : "bad_request",
                          "%s (the server has %" G_GINT64_FORMAT " bytes)", text, have);
}

void
kcps__server_upload_chunk_headers(kcps_server_t *server, kcps_http_req_t *req, const char *id)
{
  if (!kcps__server_is_uuid(id)) {
    kcps_http_respond_error(req, 404, "not_found", "no such upload");
    return;
  }
  /* Who is asking, before one byte of the body is read. */
  g_autoptr(kcps_server_session_t) session = kcps__server_authenticate(server, req);
  if (!session)
    return;
  if (session->kind != KCPS_SESSION_USER) {
    kcps_http_respond_error(req, 403, "forbidden", "this route needs a user session");
    return;
  }
  gint64 len = content_length(kcps_http_req_header(req, "Content-Length"));

  put_t *put = g_new0(put_t, 1);
  put->server = server;
  put->id = g_strdup(id);
  put->fd = -1;
  put->len = len;
  g_autoptr(GError) error = NULL;
  upload_t u = {0};
  g_autofree char *job_id = NULL;
  g_autofree char *job_sha = NULL;
  gint64 job_size = 0;
  unsigned status = 0;
  const char *refusal = NULL;
  bool claimed = false;
  g_autofree char *path = part_path(server, id);

  g_mutex_lock(&server->lock);
  bool found = find_upload_locked(server, session, id, &u, &error);
  g_mutex_unlock(&server->lock);
  if (!found || error)
    goto out;
  if (!claim(put)) {
    status = 409;
    refusal = "another chunk of this upload is still being received; ask for the offset "
              "and send again";
    put->have = committed_size(id, path);
    goto out;
  }
  claimed = true;
  g_mutex_lock(&server->lock);
  upload_clear(&u);
  found = find_upload_locked(server, session, id, &u, &error);
  if (found)
    job_id = find_job_locked(server, session->user_id, u.key, &job_sha, &job_size, &error);
  put->have = part_size(path);
  g_mutex_unlock(&server->lock);
  if (!found || error)
    goto out;
  put->row = u.id;
  if (job_id) {
    put->have = u.size;
    status = 409;
    refusal = "the upload is complete already";
    goto out;
  }
  put->off = kcps__server_chunk_offset(kcps_http_req_query(req, "offset"),
                                       kcps_http_req_header(req, "Content-Range"), len, u.size);
  if (len < 0) {
    status = 411;
    refusal = "send the chunk with a Content-Length";
  } else if (put->off < 0) {
    status = 400;
    refusal = "give the chunk's offset: ?offset=N or Content-Range: bytes N-M/SIZE";
  } else if (len == 0) {
    status = 400;
    refusal = "the chunk is empty";
  } else if (len > CHUNK_MAX) {
    status = 413;
    refusal = "the chunk is larger than chunk_max (8388608 bytes)";
  } else if (put->off + len > u.size) {
    status = 400;
    refusal = "the chunk ends beyond the declared size";
  } else if (put->off > put->have) {
    status = 409;
    refusal = "the chunk leaves a gap: send from the offset the server has";
  }
  if (refusal)
    goto out;
  if (!ensure_dirs(server, &error))
    goto out;
  put->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (put->fd < 0) {
    g_set_error(&error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_IO, "cannot open %s: %s", path,
                g_strerror(errno));
    goto out;
  }
  /* The body goes to the file as it arrives; route_put_chunk answers. */
  upload_clear(&u);
  kcps_http_req_sink(req, (guint64)len, put_write, put, put_free);
  return;

out:
  if (claimed)
    unclaim(put);
  if (error)
    kcps__server_respond_internal(req, error);
  else if (!found)
    kcps_http_respond_error(req, 404, "not_found", "no such upload");
  else
    refuse_chunk(req, status, put->have, "%s", refusal);
  g_free(put->id);
  g_free(put);
  upload_clear(&u);
}

/* The chunk's body is in (the sink of kcps__server_upload_chunk_headers):
 * durable first, then counted and answered. */
static void
route_put_chunk(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
                const char *id)
{
  put_t *put = kcps_http_req_sink_data(req);
  if (!put || g_strcmp0(put->id, id) != 0) {
    kcps_http_respond_error(req, 500, "internal", "the chunk was not streamed");
    return;
  }
  put->done = true;
  if (put->differs) {
    refuse_chunk(req, 409, put->have, "the chunk differs from the bytes the server has at that "
                                      "offset");
    return;
  }
  g_autoptr(GError) error = NULL;
  if (put->write_errno || put->pos != put->len || fdatasync(put->fd) != 0) {
    g_set_error(&error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_IO,
                "cannot write upload %s: %s", id,
                g_strerror(put->write_errno ? put->write_errno : errno ? errno : EIO));
    put_cut_back(put);
    kcps__server_respond_internal(req, error);
    return;
  }
  upload_t u = {0};
  g_autofree char *job_id = NULL;
  g_autofree char *job_sha = NULL;
  gint64 job_size = 0;
  gint64 have = MAX(put->have, put->off + put->len);
  g_mutex_lock(&server->lock);
  bool found = find_upload_locked(server, session, id, &u, &error);
  if (found)
    job_id = find_job_locked(server, session->user_id, u.key, &job_sha, &job_size, &error);
  if (found && !error && !job_id) {
    add_received_locked(server, u.id, put->len, &error);
    u.received += put->len;
  }
  /* Accepted: the offset answered from now on is the file's. */
  if (!error)
    put->have = have;
  unclaim(put);
  g_mutex_unlock(&server->lock);

  if (error)
    kcps__server_respond_internal(req, error);
  else if (!found)
    kcps_http_respond_error(req, 404, "not_found", "no such upload");
  else if (job_id)
    refuse_chunk(req, 409, u.size, "the upload is complete already");
  else {
    g_autofree char *text = g_strdup_printf("%" G_GINT64_FORMAT, have);
    kcps_http_req_add_header(req, "Upload-Offset", text);
    g_autoptr(JsonNode) node = upload_node(&u, have, NULL);
    kcps_http_respond_json(req, 200, node);
  }
  upload_clear(&u);
}

/* Deletes an upload whose document did not match what was declared. */
static void
drop_upload_locked(kcps_server_t *server, const upload_t *u, const char *path)
{
  sqlite3_stmt *stmt = kcps__server_db_prepare(server, "DELETE FROM uploads WHERE id = ?", NULL);
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, u->id);
    kcps__server_db_step(server, stmt, NULL);
  }
  sqlite3_finalize(stmt);
  (void)g_unlink(path);
}

static void
route_complete(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
               const char *id)
{
  if (!kcps__server_is_uuid(id)) {
    kcps_http_respond_error(req, 404, "not_found", "no such upload");
    return;
  }
  if (!kcps__server_body_none(req))
    return;
  g_autoptr(GError) error = NULL;
  upload_t u = {0};
  g_autofree char *job_id = NULL;
  g_autofree char *job_sha = NULL;
  gint64 job_size = 0, have = 0;
  const char *refusal = NULL;
  unsigned status = 200;
  char got[65] = "";
  gint64 now = kcps__server_now();
  g_mutex_lock(&server->lock);
  bool found = find_upload_locked(server, session, id, &u, &error);
  if (found)
    job_id = find_job_locked(server, session->user_id, u.key, &job_sha, &job_size, &error);
  g_autofree char *path = found ? part_path(server, id) : NULL;
  if (found && !error && !job_id) {
    have = committed_size(id, path);
    if (have != u.size) {
      status = 409;
      refusal = "the upload is not whole yet";
    } else if (!kcps_crypto_sha256_file(path, got, &error)) {
      /* error set */
    } else if (!kcps_crypto_streq(got, u.sha256)) {
      /* Nothing of a document that is not the one declared is kept. */
      drop_upload_locked(server, &u, path);
      kcps__server_audit_locked(server, session->user_org_id, session->user_id,
                                "cloud_upload_refused", u.public_id, session->source,
                                "sha256 does not match");
      status = 422;
      refusal = "the document's sha256 does not match the declared one; the upload is deleted";
    } else {
      /* The part file was made durable chunk by chunk: rename it into
       * place, then record the job and its document together. */
      job_id = g_uuid_string_random();
      g_autofree char *doc = document_path(server, job_id);
      gint64 hours =
          kcps__server_setting_locked(server, session->user_org_id, "cloud_retention_hours");
      g_autofree char *pull_url =
          g_strdup_printf("%s/api/v1/device/jobs/%s/document", server->url, job_id);
      if (chmod(path, 0600) != 0 || rename(path, doc) != 0) {
        g_set_error(&error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_IO, "cannot store %s: %s", doc,
                    g_strerror(errno));
      } else {
        fsync_dir(doc);
      }
      if (!error && kcps__server_db_begin(server, &error)) {
        sqlite3_stmt *stmt = kcps__server_db_prepare(
            server,
            "INSERT INTO jobs (public_id, user_id, org_id, client_job_id, name, pages, size,"
            " sha256, spool, pull_url, state, created, updated)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'cloud', ?, 'waiting', ?, ?)",
            &error);
        if (stmt) {
          sqlite3_bind_text(stmt, 1, job_id, -1, SQLITE_STATIC);
          sqlite3_bind_int64(stmt, 2, session->user_id);
          sqlite3_bind_int64(stmt, 3, session->user_org_id);
          sqlite3_bind_text(stmt, 4, u.key, -1, SQLITE_STATIC);
          sqlite3_bind_text(stmt, 5, u.name, -1, SQLITE_STATIC);
          sqlite3_bind_int64(stmt, 6, u.pages);
          sqlite3_bind_int64(stmt, 7, u.size);
          sqlite3_bind_text(stmt, 8, u.sha256, -1, SQLITE_STATIC);
          sqlite3_bind_text(stmt, 9, pull_url, -1, SQLITE_STATIC);
          sqlite3_bind_int64(stmt, 10, now);
          sqlite3_bind_int64(stmt, 11, now);
          kcps__server_db_step(server, stmt, &error);
        }
        sqlite3_finalize(stmt);
        if (!error) {
          stmt = kcps__server_db_prepare(
              server,
              "INSERT INTO cloud_documents (job_id, size, expires)"
              " SELECT id, size, ? FROM jobs WHERE public_id = ?",
              &error);
          if (stmt) {
            sqlite3_bind_int64(stmt, 1, now + hours * 3600);
            sqlite3_bind_text(stmt, 2, job_id, -1, SQLITE_STATIC);
            kcps__server_db_step(server, stmt, &error);
          }
          sqlite3_finalize(stmt);
        }
        if (error) {
          kcps__server_db_rollback(server);
          (void)g_unlink(doc);
        } else if (!kcps__server_db_commit(server, &error)) {
          (void)g_unlink(doc);
        }
      }
      if (error) {
        g_clear_pointer(&job_id, g_free);
      } else {
        status = 201;
        have = u.size;
        kcps__server_audit_locked(server, session->user_org_id, session->user_id,
                                  "cloud_job_created", job_id, session->source, NULL);
      }
    }
  } else if (found && job_id) {
    have = u.size;
  }
  g_mutex_unlock(&server->lock);

  if (error)
    kcps__server_respond_internal(req, error);
  else if (!found)
    kcps_http_respond_error(req, 404, "not_found", "no such upload");
  else if (refusal)
    kcps_http_respond_error(req, status, status == 422 ? "sha256_mismatch" : "conflict",
                            "%s (the server has %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT
                            " bytes)",
                            refusal, have, u.size);
  else {
    g_autoptr(JsonNode) node = upload_node(&u, have, job_id);
    kcps_http_respond_json(req, status, node);
  }
  upload_clear(&u);
}

/* Device fetch ------------------------------------------------------------ */

/* "bytes=A-B", "bytes=A-" or "bytes=-N" against size: [*start, *end]
 * inclusive. False when it is malformed or unsatisfiable (one range only). */
bool
kcps__server_parse_range(const char *value, gint64 size, gint64 *start, gint64 *end)
{
  if (!value || !g_str_has_prefix(value, "bytes=") || size <= 0)
    return false;
  const char *p = value + 6;
  const char *dash = strchr(p, '-');
  if (!dash || strchr(p, ',') || dash - p > 19 || strlen(dash + 1) > 19)
    return false;
  for (const char *q = p; q < dash; q++)
    if (!g_ascii_isdigit(*q))
      return false;
  for (const char *q = dash + 1; *q; q++)
    if (!g_ascii_isdigit(*q))
      return false;
  bool has_a = dash > p, has_b = dash[1] != '\0';
  gint64 a = has_a ? g_ascii_strtoll(p, NULL, 10) : 0;
  gint64 b = has_b ? g_ascii_strtoll(dash + 1, NULL, 10) : 0;
  if (has_a) {
    if (a >= size || (has_b && b < a))
      return false;
    *start = a;
    *end = has_b ? MIN(b, size - 1) : size - 1;
    return true;
  }
  if (!has_b || b == 0)
    return false;
  *start = size - MIN(b, size);
  *end = size - 1;
  return true;
}

/* A file holding [start, end] of the document (an unlinked copy): the
 * shared streamer serves a file from its start. -1 on failure. */
static int
slice_fd(kcps_server_t *server, int src, gint64 start, gint64 end)
{
  g_autofree char *dir = cloud_dir(server, "documents");
  int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0)
    return -1;
  loff_t in = (loff_t)start;
  gint64 left = end - start + 1;
  while (left > 0) {
    ssize_t n = copy_file_range(src, &in, fd, NULL, (size_t)left, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      close(fd);
      return -1;
    }
    left -= n;
  }
  return fd;
}

static void
route_document(kcps_server_t *server, kcps_http_req_t *req, const kcps_server_session_t *session,
               const char *id)
{
  (void)session;
  static const char scheme[] = "KCPS-Ticket ";
  const char *auth = kcps_http_req_header(req, "Authorization");
  if (!kcps__server_is_uuid(id)) {
    kcps_http_respond_error(req, 404, "not_found", "no such job");
    return;
  }
  if (!auth || g_ascii_strncasecmp(auth, scheme, sizeof scheme - 1) != 0 || strlen(auth) > 4096) {
    kcps_http_respond_error(req, 401, "invalid_ticket",
                            "no ticket: send Authorization: KCPS-Ticket <ticket>");
    return;
  }
  gint64 now = kcps__server_now();
  g_autoptr(GError) error = NULL;
  kcps_ticket_t *ticket = kcps_ticket_verify(server->ticket_key, auth + sizeof scheme - 1, now,
                                             &error);
  if (!ticket) {
    /* The ticket itself is never logged or echoed. */
    kcps_http_respond_error(req, 401, "invalid_ticket", "the ticket does not verify");
    return;
  }
  g_clear_error(&error);
  const char *refusal = NULL;
  unsigned status = 401;
  gint64 size = 0;
  g_autofree char *doc = NULL;
  g_mutex_lock(&server->lock);
  expire_locked(server, now);
  if (g_strcmp0(ticket->job, id) != 0) {
    refusal = "the ticket is for another job";
  } else {
    /* The ticket was issued here, for this cloud job, and not used yet. */
    sqlite3_stmt *stmt = kcps__server_db_prepare(
        server,
        "SELECT j.org_id, j.user_id, d.size, t.expires FROM tickets t JOIN jobs j ON j.id = t.job_id"
        " LEFT JOIN cloud_documents d ON d.job_id = j.id"
        " WHERE t.tid = ? AND j.public_id = ?",
        &error);
    gint64 org = 0, user = 0;
    bool have_doc = false;
    if (stmt) {
      sqlite3_bind_text(stmt, 1, ticket->tid, -1, SQLITE_STATIC);
      sqlite3_bind_text(stmt, 2, id, -1, SQLITE_STATIC);
      if (kcps__server_db_step(server, stmt, &error) == SQLITE_ROW) {
        org = sqlite3_column_int64(stmt, 0);
        user = sqlite3_column_int64(stmt, 1);
        have_doc = sqlite3_column_type(stmt, 2) != SQLITE_NULL;
        size = sqlite3_column_int64(stmt, 2);
        if (sqlite3_column_int64(stmt, 3) < now)
          refusal = "the ticket has expired";
      } else if (!error) {
        refusal = "the ticket was not issued for this job";
      }
    }
    sqlite3_finalize(stmt);
    if (!error && !refusal && !have_doc) {
      status = 410;
      refusal = "the job has no cloud document (local job, or its retention is over)";
    }
    if (!error && !refusal) {
      stmt = kcps__server_db_prepare(
          server, "INSERT INTO cloud_ticket_uses (tid, used) VALUES (?, ?) ON CONFLICT DO NOTHING",
          &error);
      if (stmt) {
        sqlite3_bind_text(stmt, 1, ticket->tid, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 2, now);
        if (kcps__server_db_step(server, stmt, &error) == SQLITE_DONE &&
            sqlite3_changes(server->db) == 0)
          refusal = "the ticket was used already";
      }
      sqlite3_finalize(stmt);
    }
    if (!error && !refusal) {
      doc = document_path(server, id);
      kcps__server_audit_locked(server, org, user, "cloud_document_fetched", id, NULL,
                                ticket->device);
    }
  }
  g_mutex_unlock(&server->lock);
  kcps_ticket_free(ticket);

  if (error) {
    kcps__server_respond_internal(req, error);
    return;
  }
  if (refusal) {
    kcps_http_respond_error(req, status, status == 410 ? "gone" : "invalid_ticket", "%s",
                            refusal);
    return;
  }
  int fd = open(doc, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    kcps_http_respond_error(req, 410, "gone", "the document is no longer stored");
    return;
  }
  kcps_http_req_add_header(req, "Accept-Ranges", "bytes");
  const char *range = kcps_http_req_header(req, "Range");
  if (!range) {
    kcps_http_respond_fd(req, 200, "application/pdf", fd, (guint64)size);
    return;
  }
  gint64 start = 0, end = 0;
  if (!kcps__server_parse_range(range, size, &start, &end)) {
    close(fd);
    g_autofree char *cr = g_strdup_printf("bytes */%" G_GINT64_FORMAT, size);
    kcps_http_req_add_header(req, "Content-Range", cr);
    kcps_http_respond_error(req, 416, "range_not_satisfiable",
                            "the range is malformed or beyond the document's %" G_GINT64_FORMAT
                            " bytes",
                            size);
    return;
  }
  int slice = slice_fd(server, fd, start, end);
  close(fd);
  if (slice < 0) {
    kcps_http_respond_error(req, 500, "internal", "cannot read the document");
    return;
  }
  g_autofree char *cr = g_strdup_printf("bytes %" G_GINT64_FORMAT "-%" G_GINT64_FORMAT
                                        "/%" G_GINT64_FORMAT,
                                        start, end, size);
  kcps_http_req_add_header(req, "Content-Range", cr);
  kcps_http_respond_fd(req, 206, "application/pdf", slice, (guint64)(end - start + 1));
}

const kcps_server_route_t kcps__server_routes_uploads[] = {
  {"POST", "/api/v1/uploads", KCPS_NEED_USER, route_create},
  {"GET", "/api/v1/uploads/*", KCPS_NEED_USER, route_status},
  {"PUT", "/api/v1/uploads/*", KCPS_NEED_USER, route_put_chunk},
  {"POST", "/api/v1/uploads/*/complete", KCPS_NEED_USER, route_complete},
  {"GET", "/api/v1/device/jobs/*/document", KCPS_NEED_NONE, route_document},
  {NULL, NULL, KCPS_NEED_NONE, NULL},
};
