/* The spool object: open/close, job queries, and the kcps_job_t helpers.
 * The index lives in spool-db.c, the durable files in spool-files.c and
 * the streaming writer in spool-writer.c. */
#include "spool/spool-private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_MAX_SIZE ((gint64)2 * 1024 * 1024 * 1024)

G_DEFINE_QUARK(kcps-spool-error-quark, kcps_spool_error)

void kcps__spool_lock(kcps_spool_t *spool) { g_mutex_lock(&spool->lock); }
void kcps__spool_unlock(kcps_spool_t *spool) { g_mutex_unlock(&spool->lock); }

kcps_spool_t *kcps_spool_open(const char *dir, GError **error) {
  g_return_val_if_fail(dir != NULL && *dir != '\0', NULL);

  if (!kcps__spool_make_private_dir(dir, error))
    return NULL;

  kcps_spool_t *spool = g_new0(kcps_spool_t, 1);
  g_mutex_init(&spool->lock);
  /* Absolute, so that the documents stay found (and poppler, which wants an
   * absolute path, can check them) whatever the working folder is now or later. */
  spool->dir = g_canonicalize_filename(dir, NULL);
  spool->max_size = DEFAULT_MAX_SIZE;

  if (!kcps__spool_db_open(spool, error) || !kcps__spool_sweep(spool, error)) {
    kcps_spool_close(spool);
    return NULL;
  }
  return spool;
}

void kcps_spool_close(kcps_spool_t *spool) {
  if (spool == NULL)
    return;
  kcps__spool_db_close(spool);
  g_mutex_clear(&spool->lock);
  g_free(spool->dir);
  g_free(spool);
}

void kcps_spool_set_max_size(kcps_spool_t *spool, gint64 max_size) {
  g_return_if_fail(spool != NULL);
  kcps__spool_lock(spool);
  spool->max_size = max_size > 0 ? max_size : 0;
  kcps__spool_unlock(spool);
}

gint64 kcps_spool_get_max_size(kcps_spool_t *spool) {
  g_return_val_if_fail(spool != NULL, 0);
  kcps__spool_lock(spool);
  gint64 max_size = spool->max_size;
  kcps__spool_unlock(spool);
  return max_size;
}

GPtrArray *kcps_spool_list_jobs(kcps_spool_t *spool, uid_t owner_uid, GError **error) {
  g_return_val_if_fail(spool != NULL, NULL);
  kcps__spool_lock(spool);
  GPtrArray *jobs = kcps__spool_db_list_locked(spool, owner_uid, false, error);
  kcps__spool_unlock(spool);
  return jobs;
}

kcps_job_t *kcps_spool_get_job(kcps_spool_t *spool, const char *id, GError **error) {
  g_return_val_if_fail(spool != NULL, NULL);
  if (id == NULL) {
    g_set_error(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_NOT_FOUND, "no job id given");
    return NULL;
  }
  kcps__spool_lock(spool);
  kcps_job_t *job = kcps__spool_db_get_locked(spool, id, error);
  kcps__spool_unlock(spool);
  return job;
}

int kcps_spool_open_document(kcps_spool_t *spool, const kcps_job_t *job, GError **error) {
  g_return_val_if_fail(spool != NULL && job != NULL, -1);
  if (job->state == KCPS_JOB_STATE_DELETED) {
    g_set_error(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_NOT_FOUND, "job %s was deleted",
                job->id);
    return -1;
  }
  g_autofree char *path = kcps__spool_job_path(spool, job->owner_uid, job->id);
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    int err = errno;
    g_set_error(error, KCPS_SPOOL_ERROR,
                err == ENOENT ? KCPS_SPOOL_ERROR_NOT_FOUND : KCPS_SPOOL_ERROR_IO,
                "cannot open %s: %s", path, g_strerror(err));
  }
  return fd;
}

bool kcps_spool_set_state(kcps_spool_t *spool, const char *id, kcps_job_state_t state,
                          GError **error) {
  g_return_val_if_fail(spool != NULL && id != NULL, false);
  if (state < KCPS_JOB_STATE_SPOOLED || state > KCPS_JOB_STATE_DELETED) {
    g_set_error(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_DB, "invalid job state %d",
                (int)state);
    return false;
  }
  /* Look the owner up first: a deleted job's document goes away with it. */
  g_autoptr(kcps_job_t) job = kcps_spool_get_job(spool, id, error);
  if (job == NULL)
    return false;

  kcps__spool_lock(spool);
  bool ok = kcps__spool_db_set_state_locked(spool, id, state, error);
  kcps__spool_unlock(spool);
  if (ok && state == KCPS_JOB_STATE_DELETED)
    kcps__spool_remove_document(spool, job->owner_uid, job->id);
  return ok;
}

const char *kcps_job_state_string(kcps_job_state_t state) {
  switch (state) {
  case KCPS_JOB_STATE_SPOOLED: return "spooled";
  case KCPS_JOB_STATE_REGISTERED: return "registered";
  case KCPS_JOB_STATE_PULLED: return "pulled";
  case KCPS_JOB_STATE_PRINTED: return "printed";
  case KCPS_JOB_STATE_DELETED: return "deleted";
  }
  return "unknown";
}

kcps_job_t *kcps_job_copy(const kcps_job_t *job) {
  if (job == NULL)
    return NULL;
  kcps_job_t *copy = g_new0(kcps_job_t, 1);
  *copy = *job;
  copy->id = g_strdup(job->id);
  copy->owner_name = g_strdup(job->owner_name);
  copy->name = g_strdup(job->name);
  copy->format = g_strdup(job->format);
  copy->server_id = g_strdup(job->server_id);
  copy->server_user = g_strdup(job->server_user);
  return copy;
}

void kcps_job_free(kcps_job_t *job) {
  if (job == NULL)
    return;
  g_free(job->id);
  g_free(job->owner_name);
  g_free(job->name);
  g_free(job->format);
  g_free(job->server_id);
  g_free(job->server_user);
  g_free(job);
}
