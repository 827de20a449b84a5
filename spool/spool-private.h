/* What the spool's own files share: the spool object, the writer, and the
 * helpers of the index (spool-db.c) and of the durable files (spool-files.c). */
#pragma once

#include <glib.h>
#include <sqlite3.h>
#include <stdbool.h>

#include "spool/spool.h"

/* A document renamed into place, waiting for its folder's fsync and its
 * row (spool-writer.c's group commit). */
typedef struct kcps__spool_pending_s kcps__spool_pending_t;

struct kcps_spool_s {
  GMutex lock;      /* guards db and max_size */
  sqlite3 *db;
  char *dir;        /* the spool folder */
  gint64 max_size;  /* bytes; 0 = no limit */
  sqlite3_stmt *insert_st; /* prepared once (under lock); finalized on close */
  /* Group commit: writers that renamed their document queue here; one of
   * them (the leader) fsyncs each folder once and inserts every queued
   * row in one transaction (one WAL sync) for all. Guarded by commit_lock,
   * which is taken before lock, never while holding it. */
  GMutex commit_lock;
  GCond commit_cond;
  bool commit_ready;       /* commit_lock and commit_cond initialized */
  bool commit_leader;      /* a leader is at work */
  GQueue commit_queue;     /* of kcps__spool_pending_t*, not yet taken */
};

void kcps__spool_lock(kcps_spool_t *spool);
void kcps__spool_unlock(kcps_spool_t *spool);

/* spool-db.c */
bool kcps__spool_db_open(kcps_spool_t *spool, GError **error);
void kcps__spool_db_close(kcps_spool_t *spool);
bool kcps__spool_db_insert_locked(kcps_spool_t *spool, const kcps_job_t *job, GError **error);
/* One transaction around several inserts (group commit). */
bool kcps__spool_db_begin_locked(kcps_spool_t *spool, GError **error);
bool kcps__spool_db_commit_locked(kcps_spool_t *spool, GError **error);
void kcps__spool_db_rollback_locked(kcps_spool_t *spool);
/* id -> owner uid (GUINT_TO_POINTER) of every job not deleted: the sweep's
 * view of which documents must exist. */
GHashTable *kcps__spool_db_live_ids_locked(kcps_spool_t *spool, GError **error);
/* All jobs (deleted ones too when with_deleted) of owner_uid ((uid_t)-1: all). */
GPtrArray *kcps__spool_db_list_locked(kcps_spool_t *spool, uid_t owner_uid, bool with_deleted,
                                      GError **error);
/* One job by id (deleted ones too), or NULL + KCPS_SPOOL_ERROR_NOT_FOUND. */
kcps_job_t *kcps__spool_db_get_locked(kcps_spool_t *spool, const char *id, GError **error);
bool kcps__spool_db_set_state_locked(kcps_spool_t *spool, const char *id,
                                     kcps_job_state_t state, GError **error);

/* spool-files.c */
/* Creates dir (0700) if missing and makes sure it is 0700. */
bool kcps__spool_make_private_dir(const char *dir, GError **error);
/* DIR/<uid>; caller g_frees. */
char *kcps__spool_owner_dir(const kcps_spool_t *spool, uid_t owner_uid);
/* DIR/<uid>/<id>.pdf; caller g_frees. */
char *kcps__spool_job_path(const kcps_spool_t *spool, uid_t owner_uid, const char *id);
bool kcps__spool_fsync_dir(const char *dir, GError **error);
/* The PDF check: opens with poppler, at least one page. */
bool kcps__spool_check_pdf(const char *path, int *pages, GError **error);
/* On open: removes temporary and orphan files, marks jobs whose file
 * vanished as deleted. One pass over the folders' names and the index's
 * ids (no stat per job), so that start-up stays fast with a long history. */
bool kcps__spool_sweep(kcps_spool_t *spool, GError **error);
/* Removes a job's document (if present) and syncs its folder. */
void kcps__spool_remove_document(kcps_spool_t *spool, uid_t owner_uid, const char *id);

#define KCPS__SPOOL_TMP_PREFIX ".tmp-"
