/* The spool index: one SQLite database (WAL, synchronous=FULL) holding a
 * row per job and the pull tickets already used. Callers hold the lock. */
#include "spool/spool-private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define SCHEMA_VERSION 1

static const char schema_sql[] =
  "CREATE TABLE IF NOT EXISTS jobs ("
  "  id TEXT PRIMARY KEY NOT NULL,"
  "  owner_uid INTEGER NOT NULL,"
  "  owner_name TEXT,"
  "  name TEXT,"
  "  format TEXT,"
  "  pages INTEGER NOT NULL,"
  "  size INTEGER NOT NULL,"
  "  sha256 TEXT NOT NULL,"
  "  state INTEGER NOT NULL,"
  "  created INTEGER NOT NULL,"
  "  server_id TEXT,"
  "  server_user TEXT);"
  "CREATE INDEX IF NOT EXISTS jobs_owner ON jobs(owner_uid, created);"
  "CREATE TABLE IF NOT EXISTS used_tickets ("
  "  id TEXT PRIMARY KEY NOT NULL,"
  "  expires INTEGER NOT NULL);";

static const char job_columns[] =
  "id, owner_uid, owner_name, name, format, pages, size, sha256, state, created, "
  "server_id, server_user";

/* SQLite's own "database or disk is full" is a full disk to the sender. */
static bool db_fail(kcps_spool_t *spool, const char *what, GError **error) {
  bool full = spool->db != NULL && (sqlite3_extended_errcode(spool->db) & 0xff) == SQLITE_FULL;
  g_set_error(error, KCPS_SPOOL_ERROR, full ? KCPS_SPOOL_ERROR_NO_SPACE : KCPS_SPOOL_ERROR_DB,
              "spool index %s/spool.db: %s: %s",
              spool->dir, what, spool->db != NULL ? sqlite3_errmsg(spool->db) : "no database");
  return false;
}

static bool exec_sql(kcps_spool_t *spool, const char *sql, const char *what, GError **error) {
  if (sqlite3_exec(spool->db, sql, NULL, NULL, NULL) != SQLITE_OK)
    return db_fail(spool, what, error);
  return true;
}

bool kcps__spool_db_open(kcps_spool_t *spool, GError **error) {
  g_autofree char *path = g_build_filename(spool->dir, "spool.db", NULL);

  g_mutex_init(&spool->commit_lock);
  g_cond_init(&spool->commit_cond);
  g_queue_init(&spool->commit_queue);
  spool->commit_ready = true;

  /* Create the file ourselves so that it (and the -wal/-shm files SQLite
   * derives from it) are 0600 whatever the umask. */
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    int err = errno;
    g_set_error(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_IO, "cannot open %s: %s", path,
                g_strerror(err));
    return false;
  }
  close(fd);

  if (sqlite3_open_v2(path, &spool->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX,
                      NULL) != SQLITE_OK)
    return db_fail(spool, "open", error);
  sqlite3_busy_timeout(spool->db, 5000);

  if (!exec_sql(spool, "PRAGMA journal_mode=WAL;", "journal_mode=WAL", error) ||
      !exec_sql(spool, "PRAGMA synchronous=FULL;", "synchronous=FULL", error) ||
      !exec_sql(spool, schema_sql, "create schema", error))
    return false;

  sqlite3_stmt *st = NULL;
  int version = 0;
  if (sqlite3_prepare_v2(spool->db, "PRAGMA user_version;", -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    version = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  if (version > SCHEMA_VERSION) {
    g_set_error(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_DB,
                "spool index %s has schema version %d, newer than this program's %d", path,
                version, SCHEMA_VERSION);
    return false;
  }
  if (version < SCHEMA_VERSION) {
    g_autofree char *sql = g_strdup_printf("PRAGMA user_version=%d;", SCHEMA_VERSION);
    if (!exec_sql(spool, sql, "set schema version", error))
      return false;
  }
  return true;
}

void kcps__spool_db_close(kcps_spool_t *spool) {
  g_clear_pointer(&spool->insert_st, sqlite3_finalize);
  if (spool->db != NULL)
    sqlite3_close_v2(spool->db);
  spool->db = NULL;
  if (spool->commit_ready) {
    /* Every writer has returned by now (the caller's contract): empty. */
    g_warn_if_fail(g_queue_is_empty(&spool->commit_queue));
    g_mutex_clear(&spool->commit_lock);
    g_cond_clear(&spool->commit_cond);
    spool->commit_ready = false;
  }
}

bool kcps__spool_db_begin_locked(kcps_spool_t *spool, GError **error) {
  return exec_sql(spool, "BEGIN IMMEDIATE;", "begin", error);
}

bool kcps__spool_db_commit_locked(kcps_spool_t *spool, GError **error) {
  return exec_sql(spool, "COMMIT;", "commit", error);
}

void kcps__spool_db_rollback_locked(kcps_spool_t *spool) {
  if (!sqlite3_get_autocommit(spool->db))
    sqlite3_exec(spool->db, "ROLLBACK;", NULL, NULL, NULL);
}

GHashTable *kcps__spool_db_live_ids_locked(kcps_spool_t *spool, GError **error) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(spool->db, "SELECT id, owner_uid FROM jobs WHERE state <> ?", -1,
                         &st, NULL) != SQLITE_OK) {
    db_fail(spool, "prepare live ids", error);
    return NULL;
  }
  sqlite3_bind_int(st, 1, KCPS_JOB_STATE_DELETED);
  GHashTable *live = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const unsigned char *id = sqlite3_column_text(st, 0);
    if (id != NULL)
      g_hash_table_insert(live, g_strdup((const char *)id),
                          GUINT_TO_POINTER((guint)sqlite3_column_int64(st, 1)));
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    db_fail(spool, "read live ids", error);
    g_hash_table_unref(live);
    return NULL;
  }
  return live;
}

static void bind_text_or_null(sqlite3_stmt *st, int col, const char *text) {
  if (text != NULL)
    sqlite3_bind_text(st, col, text, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null(st, col);
}

bool kcps__spool_db_insert_locked(kcps_spool_t *spool, const kcps_job_t *job, GError **error) {
  if (spool->insert_st == NULL) {
    g_autofree char *sql =
      g_strdup_printf("INSERT INTO jobs (%s) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", job_columns);
    if (sqlite3_prepare_v2(spool->db, sql, -1, &spool->insert_st, NULL) != SQLITE_OK)
      return db_fail(spool, "prepare insert", error);
  }
  sqlite3_stmt *st = spool->insert_st;
  bind_text_or_null(st, 1, job->id);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)job->owner_uid);
  bind_text_or_null(st, 3, job->owner_name);
  bind_text_or_null(st, 4, job->name);
  bind_text_or_null(st, 5, job->format);
  sqlite3_bind_int(st, 6, job->pages);
  sqlite3_bind_int64(st, 7, job->size);
  bind_text_or_null(st, 8, job->sha256);
  sqlite3_bind_int(st, 9, (int)job->state);
  sqlite3_bind_int64(st, 10, job->created);
  bind_text_or_null(st, 11, job->server_id);
  bind_text_or_null(st, 12, job->server_user);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE)
    db_fail(spool, "insert job", error);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc == SQLITE_DONE;
}

static char *column_dup(sqlite3_stmt *st, int col) {
  const unsigned char *text = sqlite3_column_text(st, col);
  return text != NULL ? g_strdup((const char *)text) : NULL;
}

static kcps_job_t *job_from_row(sqlite3_stmt *st) {
  kcps_job_t *job = g_new0(kcps_job_t, 1);
  job->id = column_dup(st, 0);
  job->owner_uid = (uid_t)sqlite3_column_int64(st, 1);
  job->owner_name = column_dup(st, 2);
  job->name = column_dup(st, 3);
  job->format = column_dup(st, 4);
  job->pages = sqlite3_column_int(st, 5);
  job->size = sqlite3_column_int64(st, 6);
  const unsigned char *sha = sqlite3_column_text(st, 7);
  g_strlcpy(job->sha256, sha != NULL ? (const char *)sha : "", sizeof job->sha256);
  job->state = (kcps_job_state_t)sqlite3_column_int(st, 8);
  job->created = sqlite3_column_int64(st, 9);
  job->server_id = column_dup(st, 10);
  job->server_user = column_dup(st, 11);
  return job;
}

GPtrArray *kcps__spool_db_list_locked(kcps_spool_t *spool, uid_t owner_uid, bool with_deleted,
                                      GError **error) {
  /* Two statements, not "(?1 < 0 OR owner_uid = ?1)": SQLite picks the
   * index on owner_uid only for a plain equality, and one user's list must
   * stay fast with a long history of everyone's jobs. */
  g_autofree char *sql = g_strdup_printf(
    "SELECT %s FROM jobs WHERE %s (?2 OR state <> ?3) ORDER BY created, rowid", job_columns,
    owner_uid == (uid_t)-1 ? "" : "owner_uid = ?1 AND");
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(spool->db, sql, -1, &st, NULL) != SQLITE_OK) {
    db_fail(spool, "prepare list", error);
    return NULL;
  }
  if (owner_uid != (uid_t)-1)
    sqlite3_bind_int64(st, 1, (sqlite3_int64)owner_uid);
  sqlite3_bind_int(st, 2, with_deleted ? 1 : 0);
  sqlite3_bind_int(st, 3, KCPS_JOB_STATE_DELETED);

  GPtrArray *jobs = g_ptr_array_new_with_free_func((GDestroyNotify)kcps_job_free);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    g_ptr_array_add(jobs, job_from_row(st));
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    db_fail(spool, "list jobs", error);
    g_ptr_array_unref(jobs);
    return NULL;
  }
  return jobs;
}

GPtrArray *kcps_spool_list_withdrawals(kcps_spool_t *spool, uid_t owner_uid, GError **error) {
  g_return_val_if_fail(spool != NULL, NULL);
  g_autofree char *sql = g_strdup_printf(
    "SELECT %s FROM jobs WHERE owner_uid = ?1 AND state = ?2 AND server_id IS NOT NULL"
    " ORDER BY created, rowid",
    job_columns);
  kcps__spool_lock(spool);
  sqlite3_stmt *st = NULL;
  GPtrArray *jobs = NULL;
  if (sqlite3_prepare_v2(spool->db, sql, -1, &st, NULL) != SQLITE_OK) {
    db_fail(spool, "prepare withdrawals", error);
  } else {
    sqlite3_bind_int64(st, 1, (sqlite3_int64)owner_uid);
    sqlite3_bind_int(st, 2, KCPS_JOB_STATE_DELETED);
    jobs = g_ptr_array_new_with_free_func((GDestroyNotify)kcps_job_free);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
      g_ptr_array_add(jobs, job_from_row(st));
    if (rc != SQLITE_DONE) {
      db_fail(spool, "list withdrawals", error);
      g_clear_pointer(&jobs, g_ptr_array_unref);
    }
  }
  sqlite3_finalize(st);
  kcps__spool_unlock(spool);
  return jobs;
}

kcps_job_t *kcps__spool_db_get_locked(kcps_spool_t *spool, const char *id, GError **error) {
  g_autofree char *sql = g_strdup_printf("SELECT %s FROM jobs WHERE id = ?", job_columns);
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(spool->db, sql, -1, &st, NULL) != SQLITE_OK) {
    db_fail(spool, "prepare get", error);
    return NULL;
  }
  sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
  kcps_job_t *job = NULL;
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW)
    job = job_from_row(st);
  else if (rc == SQLITE_DONE)
    g_set_error(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_NOT_FOUND, "no job %s in the spool",
                id);
  else
    db_fail(spool, "get job", error);
  sqlite3_finalize(st);
  return job;
}

/* Runs an UPDATE that must touch exactly one job row. */
static bool update_one(kcps_spool_t *spool, sqlite3_stmt *st, const char *id, GError **error) {
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE)
    return db_fail(spool, "update job", error);
  if (sqlite3_changes(spool->db) == 0) {
    g_set_error(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_NOT_FOUND, "no job %s in the spool",
                id);
    return false;
  }
  return true;
}

bool kcps__spool_db_set_state_locked(kcps_spool_t *spool, const char *id,
                                     kcps_job_state_t state, GError **error) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(spool->db, "UPDATE jobs SET state = ? WHERE id = ?", -1, &st, NULL) !=
      SQLITE_OK)
    return db_fail(spool, "prepare update", error);
  sqlite3_bind_int(st, 1, (int)state);
  sqlite3_bind_text(st, 2, id, -1, SQLITE_TRANSIENT);
  return update_one(spool, st, id, error);
}

bool kcps_spool_set_registered(kcps_spool_t *spool, const char *id, const char *server_id,
                               const char *server_user, GError **error) {
  g_return_val_if_fail(spool != NULL && id != NULL, false);
  kcps__spool_lock(spool);
  sqlite3_stmt *st = NULL;
  bool ok;
  /* A job already pulled or printed keeps its later state. */
  if (sqlite3_prepare_v2(spool->db,
                         "UPDATE jobs SET server_id = ?, server_user = ?, "
                         "state = CASE WHEN state = ? THEN ? ELSE state END WHERE id = ?",
                         -1, &st, NULL) != SQLITE_OK) {
    ok = db_fail(spool, "prepare update", error);
  } else {
    bind_text_or_null(st, 1, server_id);
    bind_text_or_null(st, 2, server_user);
    sqlite3_bind_int(st, 3, KCPS_JOB_STATE_SPOOLED);
    sqlite3_bind_int(st, 4, KCPS_JOB_STATE_REGISTERED);
    sqlite3_bind_text(st, 5, id, -1, SQLITE_TRANSIENT);
    ok = update_one(spool, st, id, error);
  }
  kcps__spool_unlock(spool);
  return ok;
}

bool kcps_spool_use_ticket(kcps_spool_t *spool, const char *ticket_id, gint64 expires,
                           GError **error) {
  g_return_val_if_fail(spool != NULL, false);
  if (ticket_id == NULL || *ticket_id == '\0') {
    g_set_error(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_DB, "empty ticket id");
    return false;
  }
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  bool ok = true;
  kcps__spool_lock(spool);

  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(spool->db, "DELETE FROM used_tickets WHERE expires < ?", -1, &st,
                         NULL) != SQLITE_OK) {
    ok = db_fail(spool, "prepare purge", error);
  } else {
    sqlite3_bind_int64(st, 1, now);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
      ok = db_fail(spool, "purge used tickets", error);
  }

  if (ok && sqlite3_prepare_v2(spool->db, "INSERT INTO used_tickets (id, expires) VALUES (?,?)",
                               -1, &st, NULL) != SQLITE_OK) {
    ok = db_fail(spool, "prepare ticket insert", error);
  } else if (ok) {
    sqlite3_bind_text(st, 1, ticket_id, -1, SQLITE_TRANSIENT);
    /* Keep the entry at least until it expires; a ticket already past its
     * expiry is kept a little while so a replay still finds it. */
    sqlite3_bind_int64(st, 2, MAX(expires, now + 60));
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_CONSTRAINT) {
      g_set_error(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_TICKET_USED,
                  "this ticket was used before");
      ok = false;
    } else if (rc != SQLITE_DONE) {
      ok = db_fail(spool, "record used ticket", error);
    }
  }
  kcps__spool_unlock(spool);
  return ok;
}
