/* Retention: jobs left in the spool longer than the retention period are
 * deleted (row marked deleted, document removed), a batch at a time. */
#include "spool/spool-private.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* Rows marked per transaction: one fsync'd commit each, and a bounded list
 * of documents to remove in memory. */
#define EXPIRE_BATCH 500

typedef struct {
  char *id;
  uid_t owner_uid;
} expired_t;

static void expired_clear(void *data) {
  expired_t *e = data;
  g_free(e->id);
}

static bool expire_fail(kcps_spool_t *spool, const char *what, GError **error) {
  g_set_error(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_DB, "spool index %s/spool.db: %s: %s",
              spool->dir, what, sqlite3_errmsg(spool->db));
  return false;
}

/* Marks up to EXPIRE_BATCH expired jobs deleted in one transaction and
 * appends them to out. Caller holds the lock. */
static bool mark_batch_locked(kcps_spool_t *spool, gint64 cutoff, GArray *out,
                              GError **error) {
  if (sqlite3_exec(spool->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
    return expire_fail(spool, "begin expiry", error);

  sqlite3_stmt *st = NULL;
  bool ok = sqlite3_prepare_v2(spool->db,
                               "SELECT id, owner_uid FROM jobs WHERE state <> ? AND created <= ? "
                               "ORDER BY created LIMIT ?",
                               -1, &st, NULL) == SQLITE_OK;
  if (!ok) {
    expire_fail(spool, "prepare expiry", error);
  } else {
    sqlite3_bind_int(st, 1, KCPS_JOB_STATE_DELETED);
    sqlite3_bind_int64(st, 2, cutoff);
    sqlite3_bind_int(st, 3, EXPIRE_BATCH);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      const unsigned char *id = sqlite3_column_text(st, 0);
      if (id == NULL)
        continue;
      expired_t e = {g_strdup((const char *)id), (uid_t)sqlite3_column_int64(st, 1)};
      g_array_append_val(out, e);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
      ok = expire_fail(spool, "list expired jobs", error);
  }

  for (guint i = 0; ok && i < out->len; i++)
    ok = kcps__spool_db_set_state_locked(spool, g_array_index(out, expired_t, i).id,
                                         KCPS_JOB_STATE_DELETED, error);

  if (ok && sqlite3_exec(spool->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
    ok = expire_fail(spool, "commit expiry", error);
  if (!ok) {
    sqlite3_exec(spool->db, "ROLLBACK", NULL, NULL, NULL);
    g_array_set_size(out, 0);
  }
  return ok;
}

/* Removes the documents of a committed batch, syncing each owner's folder
 * once. A document that stays (an error) is an orphan the next open sweeps. */
static void remove_documents(kcps_spool_t *spool, GArray *batch) {
  g_autoptr(GHashTable) dirs = g_hash_table_new(g_direct_hash, g_direct_equal);
  for (guint i = 0; i < batch->len; i++) {
    const expired_t *e = &g_array_index(batch, expired_t, i);
    g_autofree char *path = kcps__spool_job_path(spool, e->owner_uid, e->id);
    if (unlink(path) == 0)
      g_hash_table_add(dirs, GUINT_TO_POINTER(e->owner_uid));
    else if (errno != ENOENT)
      g_warning("spool: cannot remove expired %s: %s", path, g_strerror(errno));
  }
  GHashTableIter iter;
  void *key;
  g_hash_table_iter_init(&iter, dirs);
  while (g_hash_table_iter_next(&iter, &key, NULL)) {
    g_autofree char *dir = kcps__spool_owner_dir(spool, GPOINTER_TO_UINT(key));
    g_autoptr(GError) error = NULL;
    if (!kcps__spool_fsync_dir(dir, &error))
      g_warning("spool: %s", error->message);
  }
}

bool kcps_spool_expire(kcps_spool_t *spool, gint64 now, gint64 max_age, guint *n,
                       GError **error) {
  g_return_val_if_fail(spool != NULL, false);
  if (n != NULL)
    *n = 0;
  if (max_age <= 0)
    return true;

  gint64 cutoff = now - max_age;
  g_autoptr(GArray) batch = g_array_new(FALSE, FALSE, sizeof(expired_t));
  g_array_set_clear_func(batch, expired_clear);
  for (;;) {
    g_array_set_size(batch, 0);
    /* The row first: a crash before the unlink leaves an orphan document
     * the next open removes, never a live job without its document. */
    kcps__spool_lock(spool);
    bool ok = mark_batch_locked(spool, cutoff, batch, error);
    kcps__spool_unlock(spool);
    if (!ok)
      return false;
    remove_documents(spool, batch);
    if (n != NULL)
      *n += batch->len;
    if (batch->len < EXPIRE_BATCH)
      return true;
  }
}
