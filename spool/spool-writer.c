/* The spool writer: streams a document into a private temporary file in the
 * owner's folder (bounded memory), then checks it and makes it durable. */
#include "spool/spool-private.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PDF_MAGIC "%PDF-"
#define PDF_MAGIC_LEN 5
/* A large document is handed to the disk every WRITEBACK_STEP bytes while
 * it arrives, and dropped from the page cache once written: the final
 * fsync then has little left to do, and a 1 GiB job does not push other
 * files out of memory. */
#define WRITEBACK_STEP ((off_t)8 * 1024 * 1024)

/* A large document is hashed by a helper thread, in blocks copied from
 * what arrives, so that receiving and writing (one thread) and SHA-256
 * (the other) overlap: on a 1 GiB job the hash is about a third of the
 * work. At most HASH_BLOCKS blocks exist (bounded memory); the writer
 * waits for a free one when the hash falls behind. */
#define HASH_THREAD_FROM ((gint64)4 * 1024 * 1024)
#define HASH_BLOCK_SIZE ((size_t)1024 * 1024)
#define HASH_BLOCKS 4

typedef struct {
  size_t len;
  unsigned char data[];
} hash_block_t;

typedef struct {
  GThread *thread;
  GAsyncQueue *full;  /* blocks to hash, then stop_block */
  GAsyncQueue *empty; /* blocks free for the writer */
  hash_block_t *blocks[HASH_BLOCKS];
  hash_block_t *cur;  /* being filled by the writer, or NULL */
  EVP_MD_CTX *ctx;    /* the writer's; only the thread touches it meanwhile */
} hasher_t;

static hash_block_t stop_block;

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
  EVP_MD_CTX *sha256; /* OpenSSL's: several times glib's speed (SHA-NI) */
  hasher_t *hasher;   /* large documents: the hash runs in a helper thread */
  off_t synced;       /* bytes handed to the disk so far (WRITEBACK_STEP) */
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

static gpointer hash_thread(gpointer data) {
  hasher_t *h = data;
  for (;;) {
    hash_block_t *b = g_async_queue_pop(h->full);
    if (b == &stop_block)
      return NULL;
    EVP_DigestUpdate(h->ctx, b->data, b->len);
    g_async_queue_push(h->empty, b);
  }
}

/* Starts the helper thread; NULL (the writer hashes inline) when no
 * thread can be had. */
static hasher_t *hasher_new(EVP_MD_CTX *ctx) {
  hasher_t *h = g_new0(hasher_t, 1);
  h->ctx = ctx;
  h->full = g_async_queue_new();
  h->empty = g_async_queue_new();
  for (int i = 0; i < HASH_BLOCKS; i++) {
    h->blocks[i] = g_malloc(sizeof(hash_block_t) + HASH_BLOCK_SIZE);
    g_async_queue_push(h->empty, h->blocks[i]);
  }
  h->thread = g_thread_try_new("kcps-spool-hash", hash_thread, h, NULL);
  if (h->thread == NULL) {
    for (int i = 0; i < HASH_BLOCKS; i++)
      g_free(h->blocks[i]);
    g_async_queue_unref(h->full);
    g_async_queue_unref(h->empty);
    g_free(h);
    return NULL;
  }
  return h;
}

static void hasher_feed(hasher_t *h, const void *data, size_t len) {
  const unsigned char *p = data;
  while (len > 0) {
    if (h->cur == NULL) {
      h->cur = g_async_queue_pop(h->empty);
      h->cur->len = 0;
    }
    size_t n = MIN(len, HASH_BLOCK_SIZE - h->cur->len);
    memcpy(h->cur->data + h->cur->len, p, n);
    h->cur->len += n;
    p += n;
    len -= n;
    if (h->cur->len == HASH_BLOCK_SIZE) {
      g_async_queue_push(h->full, h->cur);
      h->cur = NULL;
    }
  }
}

/* Hands over the last block, waits for the thread and frees it all; the
 * context then holds the hash of everything fed. */
static void hasher_finish(hasher_t *h) {
  if (h->cur != NULL && h->cur->len > 0)
    g_async_queue_push(h->full, h->cur);
  h->cur = NULL;
  g_async_queue_push(h->full, &stop_block);
  g_thread_join(h->thread);
  for (int i = 0; i < HASH_BLOCKS; i++)
    g_free(h->blocks[i]);
  g_async_queue_unref(h->full);
  g_async_queue_unref(h->empty);
  g_free(h);
}

static void writer_free(kcps_spool_writer_t *w) {
  if (w->hasher != NULL)
    hasher_finish(w->hasher);
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
    EVP_MD_CTX_free(w->sha256);
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
  w->sha256 = EVP_MD_CTX_new();
  if (w->sha256 == NULL || EVP_DigestInit_ex(w->sha256, EVP_sha256(), NULL) != 1) {
    g_set_error(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_IO, "cannot start a SHA-256");
    writer_free(w);
    return NULL;
  }
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

/* Starts the disk on what was written since the last call (all of it
 * when final, else whole WRITEBACK_STEPs), and for a large document waits
 * for the step before and drops it from the page cache. Only a hint: the
 * fsync at commit is what makes the document durable, so errors here are
 * left for it to report. */
static void writeback(kcps_spool_writer_t *w, bool final) {
  off_t size = (off_t)w->size;
  if (w->fd < 0 || (!final && size - w->synced < WRITEBACK_STEP))
    return;
  off_t end = final ? size : size - size % WRITEBACK_STEP;
  if (end > w->synced)
    sync_file_range(w->fd, w->synced, end - w->synced, SYNC_FILE_RANGE_WRITE);
  if (!final && w->synced >= WRITEBACK_STEP) {
    off_t done = w->synced - WRITEBACK_STEP;
    sync_file_range(w->fd, done, WRITEBACK_STEP,
                    SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                      SYNC_FILE_RANGE_WAIT_AFTER);
    posix_fadvise(w->fd, done, WRITEBACK_STEP, POSIX_FADV_DONTNEED);
  }
  w->synced = end;
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
  if (writer->hasher == NULL && writer->size + (gint64)len > HASH_THREAD_FROM)
    writer->hasher = hasher_new(writer->sha256);
  if (writer->hasher != NULL)
    hasher_feed(writer->hasher, data, len);
  else
    EVP_DigestUpdate(writer->sha256, data, len);

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
  writeback(writer, false);
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
    EVP_DigestUpdate(w->sha256, buffer, (size_t)n);
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

/* ---- group commit ---------------------------------------------------- */

struct kcps__spool_pending_s {
  const char *owner_dir;
  const kcps_job_t *job;
  bool ok;
  GError *error;
  bool done; /* set by the leader under commit_lock */
};

/* Makes a batch durable: each folder fsync'd once (after every rename of
 * the batch, which all happened before its writers queued), then every
 * row inserted in one transaction, so one WAL sync covers them all. Sets
 * ok/error of each entry. Runs without commit_lock. */
static void commit_batch(kcps_spool_t *spool, GQueue *batch) {
  g_autoptr(GHashTable) dirs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                                     (GDestroyNotify)g_error_free);
  g_autoptr(GHashTable) synced = g_hash_table_new(g_str_hash, g_str_equal);
  for (GList *l = batch->head; l != NULL; l = l->next) {
    kcps__spool_pending_t *p = l->data;
    if (g_hash_table_contains(synced, p->owner_dir) || g_hash_table_contains(dirs, p->owner_dir))
      continue;
    GError *err = NULL;
    if (kcps__spool_fsync_dir(p->owner_dir, &err))
      g_hash_table_add(synced, (gpointer)p->owner_dir);
    else
      g_hash_table_insert(dirs, (gpointer)p->owner_dir, err);
  }

  kcps__spool_lock(spool);
  GError *batch_error = NULL;
  bool began = kcps__spool_db_begin_locked(spool, &batch_error);
  for (GList *l = batch->head; l != NULL; l = l->next) {
    kcps__spool_pending_t *p = l->data;
    GError *dir_error = g_hash_table_lookup(dirs, p->owner_dir);
    if (dir_error != NULL)
      p->error = g_error_copy(dir_error);
    else if (!began)
      p->error = g_error_copy(batch_error);
    else
      p->ok = kcps__spool_db_insert_locked(spool, p->job, &p->error);
  }
  if (began && !kcps__spool_db_commit_locked(spool, &batch_error)) {
    kcps__spool_db_rollback_locked(spool);
    for (GList *l = batch->head; l != NULL; l = l->next) {
      kcps__spool_pending_t *p = l->data;
      if (p->ok) {
        p->ok = false;
        p->error = g_error_copy(batch_error);
      }
    }
  }
  kcps__spool_unlock(spool);
  g_clear_error(&batch_error);
}

/* The folder's fsync and the row, shared with whoever commits at the same
 * time: the first writer to arrive leads, the others queue and are done
 * by the next batch. */
static bool group_commit(kcps_spool_t *spool, const char *owner_dir, const kcps_job_t *job,
                         GError **error) {
  kcps__spool_pending_t me = {.owner_dir = owner_dir, .job = job};
  g_mutex_lock(&spool->commit_lock);
  g_queue_push_tail(&spool->commit_queue, &me);
  while (!me.done) {
    if (spool->commit_leader) {
      g_cond_wait(&spool->commit_cond, &spool->commit_lock);
      continue;
    }
    spool->commit_leader = true;
    GQueue batch = spool->commit_queue;
    g_queue_init(&spool->commit_queue);
    g_mutex_unlock(&spool->commit_lock);
    commit_batch(spool, &batch);
    g_mutex_lock(&spool->commit_lock);
    for (GList *l = batch.head; l != NULL; l = l->next)
      ((kcps__spool_pending_t *)l->data)->done = true;
    g_queue_clear(&batch);
    spool->commit_leader = false;
    g_cond_broadcast(&spool->commit_cond);
  }
  g_mutex_unlock(&spool->commit_lock);
  if (!me.ok)
    g_propagate_error(error, me.error);
  return me.ok;
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

  /* The disk writes the rest while poppler checks the document (from the
   * page cache); the fsync after it then waits for less. */
  writeback(w, true);
  if (!kcps__spool_check_pdf(w->tmp_path, &job->pages, error))
    return false;

  if (fsync(w->fd) != 0) {
    int err = errno;
    g_set_error(error, KCPS_SPOOL_ERROR, io_code(err), "cannot sync %s: %s", w->tmp_path,
                g_strerror(err));
    return false;
  }
  close(w->fd);
  w->fd = -1;

  g_autofree char *final_path = kcps__spool_job_path(w->spool, w->owner_uid, job->id);
  if (rename(w->tmp_path, final_path) != 0) {
    int err = errno;
    g_set_error(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_IO, "cannot rename %s to %s: %s",
                w->tmp_path, final_path, g_strerror(err));
    return false;
  }
  g_clear_pointer(&w->tmp_path, g_free);

  /* From here a failure must remove the renamed document again. */
  bool ok = group_commit(w->spool, w->owner_dir, job, error);
  if (!ok)
    kcps__spool_remove_document(w->spool, w->owner_uid, job->id);
  return ok;
}

/* The SHA-256 as 64 lowercase hex digits. */
static void finish_sha256(kcps_spool_writer_t *w, char out[65]) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  out[0] = '\0';
  if (w->hasher != NULL) {
    hasher_finish(w->hasher);
    w->hasher = NULL;
  }
  if (EVP_DigestFinal_ex(w->sha256, digest, &len) != 1 || len != 32)
    return;
  static const char hex[] = "0123456789abcdef";
  for (unsigned int i = 0; i < len; i++) {
    out[2 * i] = hex[digest[i] >> 4];
    out[2 * i + 1] = hex[digest[i] & 15];
  }
  out[64] = '\0';
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
  finish_sha256(writer, job->sha256);
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
