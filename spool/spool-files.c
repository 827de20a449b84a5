/* The spool's files: private folders, fsync of folders, the PDF check and
 * the sweep on open that removes what a crash left half-done. */
#include "spool/spool-private.h"

#include <errno.h>
#include <fcntl.h>
#include <poppler.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool io_fail(GError **error, const char *what, const char *path, int err) {
  g_set_error(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_IO, "cannot %s %s: %s", what, path,
              g_strerror(err));
  return false;
}

bool kcps__spool_make_private_dir(const char *dir, GError **error) {
  struct stat st;
  bool created = false;
  if (lstat(dir, &st) != 0) {
    if (errno != ENOENT)
      return io_fail(error, "inspect", dir, errno);
    if (g_mkdir_with_parents(dir, 0700) != 0)
      return io_fail(error, "create folder", dir, errno);
    if (lstat(dir, &st) != 0)
      return io_fail(error, "inspect", dir, errno);
    created = true;
  }
  if (!S_ISDIR(st.st_mode))
    return io_fail(error, "use folder", dir, ENOTDIR);
  /* An existing folder we own is tightened; another owner's is refused. */
  if (st.st_uid != geteuid()) {
    g_set_error(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_IO,
                "spool folder %s belongs to uid %u, not to us (%u)", dir, (unsigned)st.st_uid,
                (unsigned)geteuid());
    return false;
  }
  if ((st.st_mode & 07777) != 0700 && chmod(dir, 0700) != 0)
    return io_fail(error, "make private (0700)", dir, errno);
  /* A new folder (an owner's first job) is durable only once its parent's
   * entry for it is: else a power cut after the commit could lose the job. */
  if (created) {
    g_autofree char *parent = g_path_get_dirname(dir);
    if (!kcps__spool_fsync_dir(parent, error))
      return false;
  }
  return true;
}

char *kcps__spool_owner_dir(const kcps_spool_t *spool, uid_t owner_uid) {
  return g_strdup_printf("%s/%u", spool->dir, (unsigned)owner_uid);
}

char *kcps__spool_job_path(const kcps_spool_t *spool, uid_t owner_uid, const char *id) {
  return g_strdup_printf("%s/%u/%s.pdf", spool->dir, (unsigned)owner_uid, id);
}

bool kcps__spool_fsync_dir(const char *dir, GError **error) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return io_fail(error, "open folder", dir, errno);
  if (fsync(fd) != 0) {
    int err = errno;
    close(fd);
    return io_fail(error, "sync folder", dir, err);
  }
  close(fd);
  return true;
}

bool kcps__spool_check_pdf(const char *path, int *pages, GError **error) {
  g_autoptr(GError) perr = NULL;
  g_autofree char *uri = g_filename_to_uri(path, NULL, &perr);
  if (uri == NULL) {
    g_set_error(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_IO, "bad path %s: %s", path,
                perr->message);
    return false;
  }
  PopplerDocument *doc = poppler_document_new_from_file(uri, NULL, &perr);
  if (doc == NULL) {
    if (perr != NULL && g_error_matches(perr, POPPLER_ERROR, POPPLER_ERROR_ENCRYPTED))
      g_set_error(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_PASSWORD,
                  "document is a PDF that needs a password to open");
    else
      g_set_error(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_BAD_DOCUMENT,
                  "document is not a readable PDF (damaged or truncated)");
    return false;
  }
  int n = poppler_document_get_n_pages(doc);
  g_object_unref(doc);
  if (n < 1) {
    g_set_error(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_BAD_DOCUMENT,
                "document is a PDF without pages");
    return false;
  }
  *pages = n;
  return true;
}

void kcps__spool_remove_document(kcps_spool_t *spool, uid_t owner_uid, const char *id) {
  g_autofree char *path = kcps__spool_job_path(spool, owner_uid, id);
  g_autofree char *dir = kcps__spool_owner_dir(spool, owner_uid);
  if (unlink(path) == 0) {
    g_autoptr(GError) error = NULL;
    if (!kcps__spool_fsync_dir(dir, &error))
      g_warning("spool: %s", error->message);
  } else if (errno != ENOENT) {
    g_warning("spool: cannot remove %s: %s", path, g_strerror(errno));
  }
}

static bool is_uid_name(const char *name) {
  if (*name == '\0')
    return false;
  for (const char *p = name; *p != '\0'; p++)
    if (!g_ascii_isdigit(*p))
      return false;
  return strlen(name) <= 10;
}

/* Removes temporary files and documents without a live job from one
 * owner's folder. */
static void sweep_owner_dir(const char *dir, GHashTable *live) {
  GDir *d = g_dir_open(dir, 0, NULL);
  if (d == NULL)
    return;
  bool removed = false;
  const char *name;
  while ((name = g_dir_read_name(d)) != NULL) {
    bool stray = g_str_has_prefix(name, KCPS__SPOOL_TMP_PREFIX);
    if (!stray && g_str_has_suffix(name, ".pdf")) {
      g_autofree char *id = g_strndup(name, strlen(name) - 4);
      stray = !g_hash_table_contains(live, id);
    }
    if (!stray)
      continue;
    g_autofree char *path = g_build_filename(dir, name, NULL);
    if (unlink(path) == 0) {
      removed = true;
      g_info("spool: removed stray file %s", path);
    } else {
      g_warning("spool: cannot remove stray file %s: %s", path, g_strerror(errno));
    }
  }
  g_dir_close(d);
  if (removed)
    kcps__spool_fsync_dir(dir, NULL);
}

bool kcps__spool_sweep(kcps_spool_t *spool, GError **error) {
  kcps__spool_lock(spool);
  GPtrArray *jobs = kcps__spool_db_list_locked(spool, (uid_t)-1, false, error);
  bool ok = jobs != NULL;

  /* Jobs whose document vanished can never be pulled: mark them deleted. */
  g_autoptr(GHashTable) live = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; ok && i < jobs->len; i++) {
    kcps_job_t *job = g_ptr_array_index(jobs, i);
    g_autofree char *path = kcps__spool_job_path(spool, job->owner_uid, job->id);
    struct stat st;
    if (lstat(path, &st) != 0 && errno == ENOENT) {
      g_warning("spool: document of job %s vanished; marking it deleted", job->id);
      ok = kcps__spool_db_set_state_locked(spool, job->id, KCPS_JOB_STATE_DELETED, error);
    } else {
      g_hash_table_add(live, g_strdup(job->id));
    }
  }
  kcps__spool_unlock(spool);
  if (jobs != NULL)
    g_ptr_array_unref(jobs);
  if (!ok)
    return false;

  /* Temporary files of interrupted writers, and documents renamed into place
   * whose row never got written (the sender was not answered, so it resends). */
  GDir *d = g_dir_open(spool->dir, 0, NULL);
  if (d == NULL)
    return io_fail(error, "read folder", spool->dir, errno);
  const char *name;
  while ((name = g_dir_read_name(d)) != NULL) {
    if (!is_uid_name(name))
      continue;
    g_autofree char *owner_dir = g_build_filename(spool->dir, name, NULL);
    if (g_file_test(owner_dir, G_FILE_TEST_IS_DIR) &&
        !g_file_test(owner_dir, G_FILE_TEST_IS_SYMLINK))
      sweep_owner_dir(owner_dir, live);
  }
  g_dir_close(d);
  return true;
}
