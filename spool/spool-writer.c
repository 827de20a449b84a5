/* The spool writer: streams a document into a private temporary file in the
 * owner's folder (bounded memory), then checks it and makes it durable. */
#include "spool/spool-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PDF_MAGIC "%PDF-"
#define PDF_MAGIC_LEN 5

struct kcps_spool_writer_s {
  kcps_spool_t *spool;
  uid_t owner_uid;
  char *owner_name;
  char *job_name;
  char *format;
  char *owner_dir;
  char *tmp_path;  /* NULL once removed or renamed */
  int fd;
  gint64 size;
  gint64 max_size;
  GChecksum *sha256;
  char head[PDF_MAGIC_LEN];
  size_t head_len;
  GError *failure; /* first write error; commit reports it */
  bool fd_handed_out; /* a converter wrote the file: commit reads it back */
};

/* ENOSPC and EDQUOT get an error of their own: the IPP layer tells the
 * sender the disk is full rather than "internal error". */
static int io_code(int err) {
  return err == ENOSPC || err == EDQUOT ? KCPS_SPOOL_ERROR_NO_SPACE : KCPS_SPOOL_ERROR_IO;
}

static void writer_free(kcps_spool_writer_t *w) {
  if (w->fd >= 0)
    close(w->fd);
  if (w->tmp_path != NULL && unlink(w->tmp_path) != 0 && errno != ENOENT)
    g_warning("spool: cannot remove %s: %s", w->tmp_path, g_strerror(errno));
  g_free(w->owner_name);
  g_free(w->job_name);
  g_free(w->format);
  g_free(w->owner_dir);
  g_free(w->tmp_path);
  if (w->sha256 != NULL)
    g_checksum_free(w->sha256);
  g_clear_error(&w->failure);
  g_free(w);
}

/* Closes and removes the temporary file early (e.g. once it is too large),
 * keeping the writer for the commit to report. */
static void writer_drop_file(kcps_spool_writer_t *w) {
  if (w->fd >= 0)
    close(w->fd);
  w->fd = -1;
  if (w->tmp_path != NULL)
    unlink(w->tmp_path);
  g_clear_pointer(&w->tmp_path, g_free);
}

kcps_spool_writer_t *kcps_spool_writer_new(kcps_spool_t *spool, uid_t owner_uid,
                                           const char *owner_name, const char *job_name,
                                           const char *format, GError **error) {
  g_return_val_if_fail(spool != NULL, NULL);
  if (owner_uid == (uid_t)-1) {
    g_set_error(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_IO, "no owner given for the job");
    return NULL;
  }

  kcps_spool_writer_t *w = g_new0(kcps_spool_writer_t, 1);
  w->spool = spool;
  w->fd = -1;
  w->owner_uid = owner_uid;
  w->owner_name = g_strdup(owner_name);
  w->job_name = g_strdup(job_name);
  w->format = g_strdup(format != NULL ? format : "application/pdf");
  w->owner_dir = kcps__spool_owner_dir(spool, owner_uid);
  w->sha256 = g_checksum_new(G_CHECKSUM_SHA256);
  kcps__spool_lock(spool);
  w->max_size = spool->max_size;
  kcps__spool_unlock(spool);

  if (!kcps__spool_make_private_dir(w->owner_dir, error)) {
    writer_free(w);
    return NULL;
  }
  g_autofree char *suffix = g_uuid_string_random();
  w->tmp_path = g_strdup_printf("%s/" KCPS__SPOOL_TMP_PREFIX "%s", w->owner_dir, suffix);
  w->fd = open(w->tmp_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (w->fd < 0) {
    int err = errno;
    g_set_error(error, KCPS_SPOOL_ERROR, io_code(err), "cannot create %s: %s", w->tmp_path,
                g_strerror(err));
    g_clear_pointer(&w->tmp_path, g_free);
    writer_free(w);
    return NULL;
  }
  return w;
}

bool kcps_spool_writer_write(kcps_spool_writer_t *writer, const void *data, size_t len,
                             GError **error) {
  g_return_val_if_fail(writer != NULL, false);
  if (writer->failure != NULL) {
    g_propagate_error(error, g_error_copy(writer->failure));
    return false;
  }
  if (len == 0)
    return true;

  if (writer->max_size > 0 && (gint64)len > writer->max_size - writer->size) {
    g_set_error(&writer->failure, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_TOO_LARGE,
                "document is larger than the limit of %" G_GINT64_FORMAT " bytes",
                writer->max_size);
    writer_drop_file(writer);
    g_propagate_error(error, g_error_copy(writer->failure));
    return false;
  }

  /* Keep the first bytes for the format check at commit. */
  if (writer->head_len < PDF_MAGIC_LEN) {
    size_t n = MIN(len, PDF_MAGIC_LEN - writer->head_len);
    memcpy(writer->head + writer->head_len, data, n);
    writer->head_len += n;
  }
  g_checksum_update(writer->sha256, data, (gssize)len);

  const char *p = data;
  size_t left = len;
  while (left > 0) {
    ssize_t n = write(writer->fd, p, left);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int err = errno;
      g_set_error(&writer->failure, KCPS_SPOOL_ERROR, io_code(err), "cannot write %s: %s",
                  writer->tmp_path, g_strerror(err));
      writer_drop_file(writer);
      g_propagate_error(error, g_error_copy(writer->failure));
      return false;
    }
    p += n;
    left -= (size_t)n;
  }
  writer->size += (gint64)len;
  return true;
}

int kcps_spool_writer_fd(kcps_spool_writer_t *writer) {
  g_return_val_if_fail(writer != NULL, -1);
  writer->fd_handed_out = true;
  return writer->fd;
}

/* After a converter wrote the file through the descriptor: its size, its
 * first bytes and its SHA-256, read back (from the page cache). */
static bool measure_written(kcps_spool_writer_t *w, GError **error) {
  if (w->fd < 0)
    return true; /* dropped earlier; the failure is recorded */
  g_autofree char *buffer = g_malloc(64 * 1024);
  off_t offset = 0;
  for (;;) {
    ssize_t n = pread(w->fd, buffer, 64 * 1024, offset);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int err = errno;
      g_set_error(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_IO, "cannot read back %s: %s",
                  w->tmp_path, g_strerror(err));
      return false;
    }
    if (n == 0)
      break;
    if (offset == 0) {
      w->head_len = MIN((size_t)n, PDF_MAGIC_LEN);
      memcpy(w->head, buffer, w->head_len);
    }
    g_checksum_update(w->sha256, (const guchar *)buffer, n);
    offset += n;
  }
  w->size = offset;
  if (w->max_size > 0 && w->size > w->max_size) {
    g_set_error(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_TOO_LARGE,
                "document is larger than the limit of %" G_GINT64_FORMAT " bytes", w->max_size);
    return false;
  }
  return true;
}

/* Steps of the commit that may fail; on false the caller frees the writer,
 * which removes whatever temporary file is left. */
static bool commit_steps(kcps_spool_writer_t *w, kcps_job_t *job, GError **error) {
  if (w->failure != NULL) {
    g_propagate_error(error, g_error_copy(w->failure));
    return false;
  }
  if (w->size == 0) {
    g_set_error(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_BAD_DOCUMENT, "document is empty");
    return false;
  }
  /* Never echo the document's bytes: say only what was expected. */
  if (w->head_len < PDF_MAGIC_LEN || memcmp(w->head, PDF_MAGIC, PDF_MAGIC_LEN) != 0) {
    g_set_error(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_BAD_DOCUMENT,
                "document is not a PDF (it does not start with %%PDF-)");
    return false;
  }

  if (fsync(w->fd) != 0) {
    int err = errno;
    g_set_error(error, KCPS_SPOOL_ERROR, io_code(err), "cannot sync %s: %s", w->tmp_path,
                g_strerror(err));
    return false;
  }
  close(w->fd);
  w->fd = -1;

  if (!kcps__spool_check_pdf(w->tmp_path, &job->pages, error))
    return false;

  g_autofree char *final_path = kcps__spool_job_path(w->spool, w->owner_uid, job->id);
  if (rename(w->tmp_path, final_path) != 0) {
    int err = errno;
    g_set_error(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_IO, "cannot rename %s to %s: %s",
                w->tmp_path, final_path, g_strerror(err));
    return false;
  }
  g_clear_pointer(&w->tmp_path, g_free);

  /* From here a failure must remove the renamed document again. */
  bool ok = kcps__spool_fsync_dir(w->owner_dir, error);
  if (ok) {
    kcps__spool_lock(w->spool);
    ok = kcps__spool_db_insert_locked(w->spool, job, error);
    kcps__spool_unlock(w->spool);
  }
  if (!ok)
    kcps__spool_remove_document(w->spool, w->owner_uid, job->id);
  return ok;
}

kcps_job_t *kcps_spool_writer_commit(kcps_spool_writer_t *writer, GError **error) {
  g_return_val_if_fail(writer != NULL, NULL);
  bool ok = true;
  if (writer->fd_handed_out && writer->failure == NULL)
    ok = measure_written(writer, error);

  kcps_job_t *job = g_new0(kcps_job_t, 1);
  job->id = g_uuid_string_random();
  job->owner_uid = writer->owner_uid;
  job->owner_name = g_strdup(writer->owner_name);
  job->name = g_strdup(writer->job_name);
  job->format = g_strdup(writer->format);
  job->size = writer->size;
  g_strlcpy(job->sha256, g_checksum_get_string(writer->sha256), sizeof job->sha256);
  job->state = KCPS_JOB_STATE_SPOOLED;
  job->created = g_get_real_time() / G_USEC_PER_SEC;

  ok = ok && commit_steps(writer, job, error);
  writer_free(writer);
  if (!ok) {
    kcps_job_free(job);
    return NULL;
  }
  return job;
}

void kcps_spool_writer_abort(kcps_spool_writer_t *writer) {
  if (writer != NULL)
    writer_free(writer);
}
