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

/* The smallest PDF poppler opens without complaint: one empty page. */
static const char keep_alive_pdf[] =
  "%PDF-1.4\n"
  "1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
  "2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
  "3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 10 10] >> endobj\n"
  "trailer << /Root 1 0 R >>\n"
  "%%EOF\n";

/* poppler-glib builds its global tables (encodings, Unicode maps: about
 * half the CPU time of a small job's check) when the first document opens
 * and frees them when the last one closes, so a check per job rebuilt
 * them every time. One small document kept open for the whole process
 * keeps them built. */
static gpointer keep_poppler_globals(gpointer data) {
  (void)data;
  GBytes *bytes = g_bytes_new_static(keep_alive_pdf, sizeof keep_alive_pdf - 1);
  PopplerDocument *doc = poppler_document_new_from_bytes(bytes, NULL, NULL);
  g_bytes_unref(bytes);
  if (doc == NULL)
    g_info("spool: poppler's tables are not kept between checks");
  return doc; /* held until exit, on purpose */
}

bool kcps__spool_check_pdf(const char *path, int *pages, GError **error) {
  static GOnce keep_once = G_ONCE_INIT;
  g_once(&keep_once, keep_poppler_globals, NULL);

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
 * owner's folder. live maps id -> owner uid; each document found for its
 * own owner is taken out of it, so that what stays are jobs whose document
 * vanished. */
static void sweep_owner_dir(const char *dir, uid_t owner_uid, GHashTable *live) {
  GDir *d = g_dir_open(dir, 0, NULL);
  if (d == NULL)
    return;
  bool removed = false;
  const char *name;
  while ((name = g_dir_read_name(d)) != NULL) {
    bool stray = g_str_has_prefix(name, KCPS__SPOOL_TMP_PREFIX);
    if (!stray && g_str_has_suffix(name, ".pdf")) {
      g_autofree char *id = g_strndup(name, strlen(name) - 4);
      gpointer uid = NULL;
      stray = !g_hash_table_lookup_extended(live, id, NULL, &uid) ||
              GPOINTER_TO_UINT(uid) != (guint)owner_uid;
      if (!stray)
        g_hash_table_remove(live, id);
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
  g_autoptr(GHashTable) live = kcps__spool_db_live_ids_locked(spool, error);
  kcps__spool_unlock(spool);
  if (live == NULL)
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
    guint64 uid = g_ascii_strtoull(name, NULL, 10);
    if (uid >= (guint64)(uid_t)-1)
      continue;
    g_autofree char *owner_dir = g_build_filename(spool->dir, name, NULL);
    if (g_file_test(owner_dir, G_FILE_TEST_IS_DIR) &&
        !g_file_test(owner_dir, G_FILE_TEST_IS_SYMLINK))
      sweep_owner_dir(owner_dir, (uid_t)uid, live);
  }
  g_dir_close(d);

  /* Jobs whose document vanished can never be pulled: mark them deleted,
   * all in one transaction. Each is looked at once more first (a folder
   * that could not be read is no proof of a missing file). */
  if (g_hash_table_size(live) == 0)
    return true;
  kcps__spool_lock(spool);
  bool ok = kcps__spool_db_begin_locked(spool, error);
  GHashTableIter it;
  gpointer key, value;
  g_hash_table_iter_init(&it, live);
  while (ok && g_hash_table_iter_next(&it, &key, &value)) {
    g_autofree char *path = kcps__spool_job_path(spool, (uid_t)GPOINTER_TO_UINT(value), key);
    struct stat st;
    if (lstat(path, &st) == 0 || errno != ENOENT)
      continue;
    g_warning("spool: document of job %s vanished; marking it deleted", (const char *)key);
    ok = kcps__spool_db_set_state_locked(spool, key, KCPS_JOB_STATE_DELETED, error);
  }
  if (ok)
    ok = kcps__spool_db_commit_locked(spool, error);
  else
    kcps__spool_db_rollback_locked(spool);
  kcps__spool_unlock(spool);
  return ok;
}
