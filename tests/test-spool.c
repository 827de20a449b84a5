/* Tests of the spool: durable PDF jobs, refusal of bad documents, owners
 * kept apart, reopen, tickets and concurrent writers. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool/spool.h"

#define TEST_PDF "/usr/share/cups/data/default-testpage.pdf"

static char *tmp_dir;

static void setup(void) {
  tmp_dir = g_dir_make_tmp("kcps-test-spool-XXXXXX", NULL);
  ck_assert_ptr_nonnull(tmp_dir);
}

static void remove_tree(const char *path) {
  GDir *d = g_dir_open(path, 0, NULL);
  if (d != NULL) {
    const char *name;
    while ((name = g_dir_read_name(d)) != NULL) {
      g_autofree char *child = g_build_filename(path, name, NULL);
      if (g_file_test(child, G_FILE_TEST_IS_DIR) && !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
        remove_tree(child);
      else
        g_unlink(child);
    }
    g_dir_close(d);
  }
  g_rmdir(path);
}

static void teardown(void) {
  remove_tree(tmp_dir);
  g_clear_pointer(&tmp_dir, g_free);
}

static char *spool_dir(void) { return g_build_filename(tmp_dir, "spool", NULL); }

static kcps_spool_t *open_spool(void) {
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = spool_dir();
  kcps_spool_t *spool = kcps_spool_open(dir, &error);
  ck_assert_msg(spool != NULL, "kcps_spool_open: %s", error ? error->message : "?");
  return spool;
}

/* Writes data in small chunks, as the IPP server does, and commits. */
static kcps_job_t *spool_bytes(kcps_spool_t *spool, uid_t uid, const void *data, size_t len,
                               GError **error) {
  kcps_spool_writer_t *w =
    kcps_spool_writer_new(spool, uid, "alice", "test job", "application/pdf", error);
  if (w == NULL)
    return NULL;
  const char *p = data;
  for (size_t off = 0; off < len; off += 4096) {
    size_t n = MIN(4096, len - off);
    if (!kcps_spool_writer_write(w, p + off, n, error)) {
      kcps_spool_writer_abort(w);
      return NULL;
    }
  }
  return kcps_spool_writer_commit(w, error);
}

static kcps_job_t *spool_file(kcps_spool_t *spool, uid_t uid, const char *path, GError **error) {
  g_autofree char *data = NULL;
  gsize len = 0;
  ck_assert_msg(g_file_get_contents(path, &data, &len, NULL), "cannot read %s", path);
  return spool_bytes(spool, uid, data, len, error);
}

/* Number of entries in the owner's folder (0 when it does not exist). */
static int count_files(uid_t uid) {
  g_autofree char *dir = g_strdup_printf("%s/spool/%u", tmp_dir, (unsigned)uid);
  GDir *d = g_dir_open(dir, 0, NULL);
  if (d == NULL)
    return 0;
  int n = 0;
  while (g_dir_read_name(d) != NULL)
    n++;
  g_dir_close(d);
  return n;
}

static guint count_jobs(kcps_spool_t *spool, uid_t uid) {
  g_autoptr(GError) error = NULL;
  GPtrArray *jobs = kcps_spool_list_jobs(spool, uid, &error);
  ck_assert_msg(jobs != NULL, "list_jobs: %s", error ? error->message : "?");
  guint n = jobs->len;
  g_ptr_array_unref(jobs);
  return n;
}

static char *file_sha256(const char *path) {
  g_autofree char *data = NULL;
  gsize len = 0;
  ck_assert(g_file_get_contents(path, &data, &len, NULL));
  return g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)data, len);
}

START_TEST(test_commit_pdf) {
  kcps_spool_t *spool = open_spool();
  g_autoptr(GError) error = NULL;
  g_autoptr(kcps_job_t) job = spool_file(spool, 1000, TEST_PDF, &error);
  ck_assert_msg(job != NULL, "commit: %s", error ? error->message : "?");

  struct stat st;
  ck_assert_int_eq(stat(TEST_PDF, &st), 0);
  g_autofree char *want_sha = file_sha256(TEST_PDF);
  ck_assert_int_eq(job->pages, 1);
  ck_assert_msg(job->size == st.st_size, "size: got %" G_GINT64_FORMAT ", expected %lld",
                job->size, (long long)st.st_size);
  ck_assert_str_eq(job->sha256, want_sha);
  ck_assert_int_eq(job->state, KCPS_JOB_STATE_SPOOLED);
  ck_assert_str_eq(job->owner_name, "alice");
  ck_assert_str_eq(job->name, "test job");
  ck_assert_str_eq(job->format, "application/pdf");
  ck_assert_int_eq(strlen(job->id), 36);

  /* The document is private and byte-identical. */
  g_autofree char *path = g_strdup_printf("%s/spool/1000/%s.pdf", tmp_dir, job->id);
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_msg((st.st_mode & 07777) == 0600, "file mode: got %o, expected 600",
                st.st_mode & 07777);
  g_autofree char *got_sha = file_sha256(path);
  ck_assert_str_eq(got_sha, want_sha);
  g_autofree char *dir = g_strdup_printf("%s/spool/1000", tmp_dir);
  ck_assert_int_eq(stat(dir, &st), 0);
  ck_assert_msg((st.st_mode & 07777) == 0700, "folder mode: got %o, expected 700",
                st.st_mode & 07777);
  g_autofree char *top = spool_dir();
  ck_assert_int_eq(stat(top, &st), 0);
  ck_assert_int_eq(st.st_mode & 07777, 0700);
  g_autofree char *db = g_build_filename(top, "spool.db", NULL);
  ck_assert_int_eq(stat(db, &st), 0);
  ck_assert_msg((st.st_mode & 07777) == 0600, "db mode: got %o", st.st_mode & 07777);
  ck_assert_int_eq(count_files(1000), 1);

  /* Listed, found, and readable through the spool. */
  ck_assert_uint_eq(count_jobs(spool, 1000), 1);
  g_autoptr(kcps_job_t) got = kcps_spool_get_job(spool, job->id, &error);
  ck_assert_msg(got != NULL, "get_job: %s", error ? error->message : "?");
  ck_assert_str_eq(got->sha256, want_sha);
  ck_assert_int_eq(got->pages, 1);
  ck_assert_int_eq(got->owner_uid, 1000);
  int fd = kcps_spool_open_document(spool, got, &error);
  ck_assert_msg(fd >= 0, "open_document: %s", error ? error->message : "?");
  char head[5];
  ck_assert_int_eq(read(fd, head, 5), 5);
  ck_assert_int_eq(memcmp(head, "%PDF-", 5), 0);
  close(fd);
  kcps_spool_close(spool);
}
END_TEST

START_TEST(test_commit_multipage) {
  g_autofree char *out = g_build_filename(tmp_dir, "three.pdf", NULL);
  g_autofree char *cmd =
    g_strdup_printf("qpdf --empty --pages " TEST_PDF " " TEST_PDF " " TEST_PDF " -- %s", out);
  int status = 0;
  if (!g_spawn_command_line_sync(cmd, NULL, NULL, &status, NULL) || status != 0) {
    fprintf(stderr, "qpdf not usable; multi-page case skipped\n");
    return;
  }
  kcps_spool_t *spool = open_spool();
  g_autoptr(GError) error = NULL;
  g_autoptr(kcps_job_t) job = spool_file(spool, 1000, out, &error);
  ck_assert_msg(job != NULL, "commit: %s", error ? error->message : "?");
  ck_assert_msg(job->pages == 3, "pages: got %d, expected 3", job->pages);
  kcps_spool_close(spool);
}
END_TEST

/* Table of documents that must be refused, leaving neither file nor row. */
static const struct {
  const char *what;
  const char *data;   /* NULL: a prefix of the test page */
  double fraction;
} bad_docs[] = {
  {"plain text", "Hello, this is not a PDF at all.\n", 0},
  {"empty", "", 0},
  {"PDF header only", "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", 0},
  {"PDF header then garbage", "%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage\n%%EOF\n", 0},
  {"truncated PDF (50%)", NULL, 0.5},
  {"truncated PDF (95%)", NULL, 0.95},
};

START_TEST(test_refuse_bad_document) {
  kcps_spool_t *spool = open_spool();
  g_autoptr(GError) error = NULL;
  const char *data = bad_docs[_i].data;
  g_autofree char *pdf = NULL;
  gsize len = data != NULL ? strlen(data) : 0;
  if (data == NULL) {
    gsize full = 0;
    ck_assert(g_file_get_contents(TEST_PDF, &pdf, &full, NULL));
    len = (gsize)(full * bad_docs[_i].fraction);
    data = pdf;
  }
  kcps_job_t *job = spool_bytes(spool, 1000, data, len, &error);
  ck_assert_msg(job == NULL, "%s: accepted, expected refusal", bad_docs[_i].what);
  ck_assert_msg(g_error_matches(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_BAD_DOCUMENT),
                "%s: got error %s, expected BAD_DOCUMENT", bad_docs[_i].what,
                error ? error->message : "(none)");
  ck_assert_msg(count_files(1000) == 0, "%s: %d files left, expected 0", bad_docs[_i].what,
                count_files(1000));
  ck_assert_uint_eq(count_jobs(spool, (uid_t)-1), 0);
  kcps_spool_close(spool);
}
END_TEST

START_TEST(test_refuse_encrypted) {
  g_autofree char *out = g_build_filename(tmp_dir, "locked.pdf", NULL);
  g_autofree char *cmd =
    g_strdup_printf("qpdf --encrypt user-pw owner-pw 256 -- " TEST_PDF " %s", out);
  int status = 0;
  ck_assert_msg(g_spawn_command_line_sync(cmd, NULL, NULL, &status, NULL) && status == 0,
                "qpdf (in the Makefile's packages) could not encrypt the test PDF");
  kcps_spool_t *spool = open_spool();
  g_autoptr(GError) error = NULL;
  ck_assert_ptr_null(spool_file(spool, 1000, out, &error));
  ck_assert(g_error_matches(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_PASSWORD));
  ck_assert_msg(strstr(error->message, "password") != NULL, "message: %s", error->message);
  ck_assert_int_eq(count_files(1000), 0);
  ck_assert_uint_eq(count_jobs(spool, (uid_t)-1), 0);
  kcps_spool_close(spool);
}
END_TEST

START_TEST(test_not_pdf_message) {
  kcps_spool_t *spool = open_spool();
  g_autoptr(GError) error = NULL;
  const char secret[] = "SECRET-CONTENT of a text file\n";
  ck_assert_ptr_null(spool_bytes(spool, 1000, secret, strlen(secret), &error));
  ck_assert_ptr_nonnull(error);
  ck_assert_msg(strstr(error->message, "not a PDF") != NULL, "message: %s", error->message);
  ck_assert_msg(strstr(error->message, "SECRET") == NULL, "message echoes content: %s",
                error->message);
  kcps_spool_close(spool);
}
END_TEST

START_TEST(test_too_large) {
  kcps_spool_t *spool = open_spool();
  kcps_spool_set_max_size(spool, 50000);
  g_autoptr(GError) error = NULL;
  kcps_job_t *job = spool_file(spool, 1000, TEST_PDF, &error);
  ck_assert_ptr_null(job);
  ck_assert_msg(g_error_matches(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_TOO_LARGE),
                "got %s, expected TOO_LARGE", error ? error->message : "(none)");
  ck_assert_int_eq(count_files(1000), 0);
  ck_assert_uint_eq(count_jobs(spool, (uid_t)-1), 0);

  /* The commit after a refused write reports the same error. */
  g_clear_error(&error);
  kcps_spool_writer_t *w = kcps_spool_writer_new(spool, 1000, "a", "j", NULL, &error);
  ck_assert_ptr_nonnull(w);
  char big[60000];
  memset(big, 'x', sizeof big);
  ck_assert(!kcps_spool_writer_write(w, big, sizeof big, NULL));
  ck_assert_ptr_null(kcps_spool_writer_commit(w, &error));
  ck_assert(g_error_matches(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_TOO_LARGE));
  ck_assert_int_eq(count_files(1000), 0);

  /* At the limit it is accepted. */
  kcps_spool_set_max_size(spool, 110125);
  g_clear_error(&error);
  g_autoptr(kcps_job_t) ok = spool_file(spool, 1000, TEST_PDF, &error);
  ck_assert_msg(ok != NULL, "at the limit: %s", error ? error->message : "?");
  kcps_spool_close(spool);
}
END_TEST

/* A converter writes through the writer's descriptor: commit reads the
 * file back, so size, SHA-256 and the size limit hold as for write(). */
START_TEST(test_writer_fd) {
  g_autofree char *pdf = NULL;
  gsize len = 0;
  ck_assert(g_file_get_contents(TEST_PDF, &pdf, &len, NULL));
  g_autofree char *want_sha = file_sha256(TEST_PDF);
  kcps_spool_t *spool = open_spool();
  g_autoptr(GError) error = NULL;
  for (int round = 0; round < 2; round++) {
    if (round == 1)
      kcps_spool_set_max_size(spool, (gint64)len - 1);
    kcps_spool_writer_t *w =
      kcps_spool_writer_new(spool, 1000, "user", "fd job", "image/png", &error);
    ck_assert_ptr_nonnull(w);
    int fd = kcps_spool_writer_fd(w);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, pdf, len), (ssize_t)len);
    g_autoptr(kcps_job_t) job = kcps_spool_writer_commit(w, &error);
    if (round == 0) {
      ck_assert_msg(job != NULL, "%s", error != NULL ? error->message : "");
      ck_assert_int_eq(job->size, (gint64)len);
      ck_assert_str_eq(job->sha256, want_sha);
      ck_assert_str_eq(job->format, "image/png");
    } else {
      ck_assert_ptr_null(job);
      ck_assert(g_error_matches(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_TOO_LARGE));
    }
  }
  ck_assert_int_eq(count_files(1000), 1);
  ck_assert_uint_eq(count_jobs(spool, (uid_t)-1), 1);
  kcps_spool_close(spool);
}
END_TEST

START_TEST(test_abort_leaves_nothing) {
  kcps_spool_t *spool = open_spool();
  kcps_spool_writer_t *w = kcps_spool_writer_new(spool, 1000, "a", "j", NULL, NULL);
  ck_assert_ptr_nonnull(w);
  ck_assert(kcps_spool_writer_write(w, "%PDF-1.4\n", 9, NULL));
  ck_assert_int_eq(count_files(1000), 1); /* the temporary file */
  kcps_spool_writer_abort(w);
  ck_assert_int_eq(count_files(1000), 0);
  kcps_spool_writer_abort(NULL);
  kcps_spool_close(spool);
}
END_TEST

START_TEST(test_owners_apart) {
  kcps_spool_t *spool = open_spool();
  g_autoptr(GError) error = NULL;
  g_autoptr(kcps_job_t) a = spool_file(spool, 1000, TEST_PDF, &error);
  ck_assert_ptr_nonnull(a);
  g_autoptr(kcps_job_t) b1 = spool_file(spool, 1001, TEST_PDF, &error);
  g_autoptr(kcps_job_t) b2 = spool_file(spool, 1001, TEST_PDF, &error);
  ck_assert_ptr_nonnull(b2);

  GPtrArray *jobs = kcps_spool_list_jobs(spool, 1000, &error);
  ck_assert_uint_eq(jobs->len, 1);
  ck_assert_str_eq(((kcps_job_t *)jobs->pdata[0])->id, a->id);
  g_ptr_array_unref(jobs);
  jobs = kcps_spool_list_jobs(spool, 1001, &error);
  ck_assert_msg(jobs->len == 2, "uid 1001 jobs: got %u, expected 2", jobs->len);
  for (guint i = 0; i < jobs->len; i++)
    ck_assert_int_eq(((kcps_job_t *)jobs->pdata[i])->owner_uid, 1001);
  /* Oldest first. */
  ck_assert_str_eq(((kcps_job_t *)jobs->pdata[0])->id, b1->id);
  g_ptr_array_unref(jobs);
  ck_assert_uint_eq(count_jobs(spool, 1002), 0);
  ck_assert_uint_eq(count_jobs(spool, (uid_t)-1), 3);
  kcps_spool_close(spool);
}
END_TEST

START_TEST(test_reopen) {
  kcps_spool_t *spool = open_spool();
  g_autoptr(GError) error = NULL;
  g_autoptr(kcps_job_t) keep = spool_file(spool, 1000, TEST_PDF, &error);
  g_autoptr(kcps_job_t) lose = spool_file(spool, 1000, TEST_PDF, &error);
  ck_assert_ptr_nonnull(lose);
  ck_assert(kcps_spool_set_registered(spool, keep->id, "srv-1", "alice@a.test", &error));
  kcps_spool_close(spool);

  /* A crash leaves a temporary file, an unrecorded document, and a job
   * whose document was removed behind our back. */
  g_autofree char *tmp = g_strdup_printf("%s/spool/1000/.tmp-crashed", tmp_dir);
  g_autofree char *orphan =
    g_strdup_printf("%s/spool/1000/00000000-0000-4000-8000-000000000000.pdf", tmp_dir);
  g_autofree char *lost = g_strdup_printf("%s/spool/1000/%s.pdf", tmp_dir, lose->id);
  ck_assert(g_file_set_contents(tmp, "%PDF-partial", -1, NULL));
  ck_assert(g_file_set_contents(orphan, "%PDF-orphan", -1, NULL));
  ck_assert_int_eq(g_unlink(lost), 0);

  spool = open_spool();
  ck_assert_msg(!g_file_test(tmp, G_FILE_TEST_EXISTS), "temporary file survived reopen");
  ck_assert_msg(!g_file_test(orphan, G_FILE_TEST_EXISTS), "orphan document survived reopen");
  GPtrArray *jobs = kcps_spool_list_jobs(spool, 1000, &error);
  ck_assert_msg(jobs->len == 1, "jobs after reopen: got %u, expected 1", jobs->len);
  kcps_job_t *got = jobs->pdata[0];
  ck_assert_str_eq(got->id, keep->id);
  ck_assert_int_eq(got->state, KCPS_JOB_STATE_REGISTERED);
  ck_assert_str_eq(got->server_id, "srv-1");
  ck_assert_str_eq(got->server_user, "alice@a.test");
  ck_assert_str_eq(got->sha256, keep->sha256);
  g_ptr_array_unref(jobs);
  g_autoptr(kcps_job_t) gone = kcps_spool_get_job(spool, lose->id, &error);
  ck_assert_ptr_nonnull(gone);
  ck_assert_int_eq(gone->state, KCPS_JOB_STATE_DELETED);
  kcps_spool_close(spool);
}
END_TEST

START_TEST(test_states) {
  kcps_spool_t *spool = open_spool();
  g_autoptr(GError) error = NULL;
  g_autoptr(kcps_job_t) job = spool_file(spool, 1000, TEST_PDF, &error);
  ck_assert(kcps_spool_set_state(spool, job->id, KCPS_JOB_STATE_PULLED, &error));
  /* Registering later keeps the later state. */
  ck_assert(kcps_spool_set_registered(spool, job->id, "s", NULL, &error));
  g_autoptr(kcps_job_t) got = kcps_spool_get_job(spool, job->id, &error);
  ck_assert_str_eq(kcps_job_state_string(got->state), "pulled");

  ck_assert(kcps_spool_set_state(spool, job->id, KCPS_JOB_STATE_DELETED, &error));
  ck_assert_int_eq(count_files(1000), 0);
  ck_assert_uint_eq(count_jobs(spool, 1000), 0);
  ck_assert_int_lt(kcps_spool_open_document(spool, job, NULL), 0);

  ck_assert(!kcps_spool_set_state(spool, "no-such-job", KCPS_JOB_STATE_PRINTED, &error));
  ck_assert(g_error_matches(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_NOT_FOUND));
  g_clear_error(&error);
  ck_assert_ptr_null(kcps_spool_get_job(spool, "no-such-job", &error));
  ck_assert(g_error_matches(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_NOT_FOUND));
  kcps_spool_close(spool);
}
END_TEST

/* Deleted jobs the server still knows are listed for withdrawal, until
 * their server_id is cleared; each owner sees only her own. */
START_TEST(test_withdrawals) {
  kcps_spool_t *spool = open_spool();
  g_autoptr(GError) error = NULL;
  g_autoptr(kcps_job_t) known = spool_file(spool, 1000, TEST_PDF, &error);
  g_autoptr(kcps_job_t) unknown = spool_file(spool, 1000, TEST_PDF, &error);
  g_autoptr(kcps_job_t) kept = spool_file(spool, 1000, TEST_PDF, &error);
  g_autoptr(kcps_job_t) other = spool_file(spool, 1001, TEST_PDF, &error);
  ck_assert(kcps_spool_set_registered(spool, known->id, "srv-1", "a@x.test", &error));
  ck_assert(kcps_spool_set_registered(spool, kept->id, "srv-2", "a@x.test", &error));
  ck_assert(kcps_spool_set_registered(spool, other->id, "srv-3", "b@x.test", &error));
  g_autoptr(GPtrArray) none = kcps_spool_list_withdrawals(spool, 1000, &error);
  ck_assert_uint_eq(none->len, 0); /* nothing deleted yet */

  ck_assert(kcps_spool_set_state(spool, known->id, KCPS_JOB_STATE_DELETED, &error));
  ck_assert(kcps_spool_set_state(spool, unknown->id, KCPS_JOB_STATE_DELETED, &error));
  ck_assert(kcps_spool_set_state(spool, other->id, KCPS_JOB_STATE_DELETED, &error));
  g_autoptr(GPtrArray) mine = kcps_spool_list_withdrawals(spool, 1000, &error);
  ck_assert_uint_eq(mine->len, 1);
  kcps_job_t *first = g_ptr_array_index(mine, 0);
  ck_assert_str_eq(first->id, known->id);
  ck_assert_str_eq(first->server_id, "srv-1");
  ck_assert_str_eq(first->server_user, "a@x.test");

  /* Withdrawn: the server id goes, the job stays deleted. */
  ck_assert(kcps_spool_set_registered(spool, known->id, NULL, NULL, &error));
  g_autoptr(GPtrArray) after = kcps_spool_list_withdrawals(spool, 1000, &error);
  ck_assert_uint_eq(after->len, 0);
  g_autoptr(kcps_job_t) got = kcps_spool_get_job(spool, known->id, &error);
  ck_assert_str_eq(kcps_job_state_string(got->state), "deleted");
  ck_assert_ptr_null(got->server_id);
  g_autoptr(GPtrArray) theirs = kcps_spool_list_withdrawals(spool, 1001, &error);
  ck_assert_uint_eq(theirs->len, 1);
  kcps_spool_close(spool);
}
END_TEST

START_TEST(test_ticket_once) {
  kcps_spool_t *spool = open_spool();
  g_autoptr(GError) error = NULL;
  gint64 expires = g_get_real_time() / G_USEC_PER_SEC + 120;
  ck_assert_msg(kcps_spool_use_ticket(spool, "ticket-1", expires, &error), "first use: %s",
                error ? error->message : "?");
  ck_assert(!kcps_spool_use_ticket(spool, "ticket-1", expires, &error));
  ck_assert_msg(g_error_matches(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_TICKET_USED),
                "second use: got %s, expected TICKET_USED", error ? error->message : "(none)");
  g_clear_error(&error);
  ck_assert(kcps_spool_use_ticket(spool, "ticket-2", expires, &error));
  kcps_spool_close(spool);

  /* Remembered across a restart. */
  spool = open_spool();
  ck_assert(!kcps_spool_use_ticket(spool, "ticket-1", expires, &error));
  ck_assert(g_error_matches(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_TICKET_USED));
  kcps_spool_close(spool);
}
END_TEST

#define N_THREADS 8
#define JOBS_EACH 4

typedef struct {
  kcps_spool_t *spool;
  uid_t uid;
  int ok;
  int refused;
} writer_arg_t;

static gpointer writer_thread(gpointer data) {
  writer_arg_t *arg = data;
  for (int i = 0; i < JOBS_EACH; i++) {
    g_autoptr(GError) error = NULL;
    /* Every other writer also sends a bad document in between. */
    if (arg->uid % 2 == 0 && spool_bytes(arg->spool, arg->uid, "nope", 4, &error) == NULL)
      arg->refused++;
    g_clear_error(&error);
    kcps_job_t *job = spool_file(arg->spool, arg->uid, TEST_PDF, &error);
    if (job != NULL)
      arg->ok++;
    else
      fprintf(stderr, "writer %u: %s\n", (unsigned)arg->uid, error->message);
    kcps_job_free(job);
  }
  return NULL;
}

START_TEST(test_concurrent_writers) {
  kcps_spool_t *spool = open_spool();
  GThread *threads[N_THREADS];
  writer_arg_t args[N_THREADS];
  for (int i = 0; i < N_THREADS; i++) {
    args[i] = (writer_arg_t){spool, (uid_t)(2000 + i), 0, 0};
    threads[i] = g_thread_new("writer", writer_thread, &args[i]);
  }
  for (int i = 0; i < N_THREADS; i++) {
    g_thread_join(threads[i]);
    ck_assert_msg(args[i].ok == JOBS_EACH, "writer %d: %d jobs, expected %d", i, args[i].ok,
                  JOBS_EACH);
    ck_assert_uint_eq(count_jobs(spool, args[i].uid), JOBS_EACH);
    ck_assert_int_eq(count_files(args[i].uid), JOBS_EACH);
  }
  ck_assert_uint_eq(count_jobs(spool, (uid_t)-1), N_THREADS * JOBS_EACH);
  kcps_spool_close(spool);
}
END_TEST

/* Group commit: writers of the same owner commit at the same time and
 * share folder fsyncs and index transactions; each must still get its own
 * job, with its own row and document, and survive a reopen. */
#define GROUP_THREADS 8
#define GROUP_JOBS 12

typedef struct {
  kcps_spool_t *spool;
  GPtrArray *jobs; /* kcps_job_t* this thread committed */
  int failed;
} group_arg_t;

static gpointer group_thread(gpointer data) {
  group_arg_t *arg = data;
  for (int i = 0; i < GROUP_JOBS; i++) {
    g_autoptr(GError) error = NULL;
    kcps_job_t *job = spool_file(arg->spool, 3000, TEST_PDF, &error);
    if (job == NULL) {
      fprintf(stderr, "group writer: %s\n", error->message);
      arg->failed++;
    } else {
      g_ptr_array_add(arg->jobs, job);
    }
  }
  return NULL;
}

START_TEST(test_group_commit) {
  kcps_spool_t *spool = open_spool();
  GThread *threads[GROUP_THREADS];
  group_arg_t args[GROUP_THREADS];
  for (int i = 0; i < GROUP_THREADS; i++) {
    args[i] = (group_arg_t){spool, g_ptr_array_new_with_free_func((GDestroyNotify)kcps_job_free), 0};
    threads[i] = g_thread_new("group", group_thread, &args[i]);
  }
  g_autoptr(GHashTable) ids = g_hash_table_new(g_str_hash, g_str_equal);
  g_autofree char *want_sha = file_sha256(TEST_PDF);
  for (int i = 0; i < GROUP_THREADS; i++) {
    g_thread_join(threads[i]);
    ck_assert_int_eq(args[i].failed, 0);
    ck_assert_uint_eq(args[i].jobs->len, GROUP_JOBS);
    for (guint j = 0; j < args[i].jobs->len; j++) {
      kcps_job_t *job = args[i].jobs->pdata[j];
      ck_assert_msg(g_hash_table_add(ids, job->id), "job id %s given twice", job->id);
      ck_assert_str_eq(job->sha256, want_sha);
    }
  }
  ck_assert_uint_eq(count_jobs(spool, 3000), GROUP_THREADS * GROUP_JOBS);
  ck_assert_int_eq(count_files(3000), GROUP_THREADS * GROUP_JOBS);
  kcps_spool_close(spool);

  /* Every row and every document is there after a reopen (the sweep keeps
   * them all), each document with the checksum of its row. */
  spool = open_spool();
  g_autoptr(GError) error = NULL;
  GPtrArray *jobs = kcps_spool_list_jobs(spool, 3000, &error);
  ck_assert_ptr_nonnull(jobs);
  ck_assert_uint_eq(jobs->len, GROUP_THREADS * GROUP_JOBS);
  for (guint i = 0; i < jobs->len; i++) {
    kcps_job_t *job = jobs->pdata[i];
    ck_assert_msg(g_hash_table_contains(ids, job->id), "unknown job %s", job->id);
    ck_assert_int_eq(job->state, KCPS_JOB_STATE_SPOOLED);
    g_autofree char *path = g_strdup_printf("%s/spool/3000/%s.pdf", tmp_dir, job->id);
    g_autofree char *sha = file_sha256(path);
    ck_assert_str_eq(sha, job->sha256);
  }
  g_ptr_array_unref(jobs);
  ck_assert_uint_eq(count_jobs(spool, 3001), 0);
  kcps_spool_close(spool);
  for (int i = 0; i < GROUP_THREADS; i++)
    g_ptr_array_unref(args[i].jobs);
}
END_TEST

/* The sweep on open judges each document by its owner's folder: a live
 * job's document copied into another owner's folder is a stray there, and
 * a job whose document moved away is marked deleted. */
START_TEST(test_sweep_owner_folders) {
  kcps_spool_t *spool = open_spool();
  g_autoptr(GError) error = NULL;
  g_autoptr(kcps_job_t) stays = spool_file(spool, 1000, TEST_PDF, &error);
  g_autoptr(kcps_job_t) moves = spool_file(spool, 1000, TEST_PDF, &error);
  g_autoptr(kcps_job_t) other = spool_file(spool, 1001, TEST_PDF, &error);
  ck_assert_ptr_nonnull(moves);
  ck_assert_ptr_nonnull(other);
  kcps_spool_close(spool);

  g_autofree char *copy = g_strdup_printf("%s/spool/1001/%s.pdf", tmp_dir, stays->id);
  g_autofree char *from = g_strdup_printf("%s/spool/1000/%s.pdf", tmp_dir, moves->id);
  g_autofree char *to = g_strdup_printf("%s/spool/1001/%s.pdf", tmp_dir, moves->id);
  g_autofree char *data = NULL;
  gsize len = 0;
  ck_assert(g_file_get_contents(TEST_PDF, &data, &len, NULL));
  ck_assert(g_file_set_contents(copy, data, (gssize)len, NULL));
  ck_assert_int_eq(rename(from, to), 0);

  spool = open_spool();
  ck_assert_msg(!g_file_test(copy, G_FILE_TEST_EXISTS), "a copy in another owner's folder survived");
  ck_assert_msg(!g_file_test(to, G_FILE_TEST_EXISTS), "a moved document survived");
  ck_assert_uint_eq(count_jobs(spool, 1000), 1);
  ck_assert_uint_eq(count_jobs(spool, 1001), 1);
  g_autoptr(kcps_job_t) gone = kcps_spool_get_job(spool, moves->id, &error);
  ck_assert_ptr_nonnull(gone);
  ck_assert_int_eq(gone->state, KCPS_JOB_STATE_DELETED);
  g_autoptr(kcps_job_t) kept = kcps_spool_get_job(spool, stays->id, &error);
  ck_assert_ptr_nonnull(kept);
  ck_assert_int_eq(kept->state, KCPS_JOB_STATE_SPOOLED);
  ck_assert_int_eq(count_files(1000), 1);
  ck_assert_int_eq(count_files(1001), 1);
  kcps_spool_close(spool);
}
END_TEST

/* A document larger than the writer's write-back step (8 MiB) goes to the
 * disk while it arrives and out of the page cache behind it: it must come
 * out whole, with the right checksum and page count. */
START_TEST(test_large_document) {
  const size_t stream_len = 20 * 1024 * 1024 + 12345;
  GString *pdf = g_string_new("%PDF-1.4\n");
  gsize off[5];
  off[1] = pdf->len;
  g_string_append(pdf, "1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n");
  off[2] = pdf->len;
  g_string_append(pdf, "2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n");
  off[3] = pdf->len;
  g_string_append(pdf, "3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                       "/Contents 4 0 R >> endobj\n");
  off[4] = pdf->len;
  g_string_append_printf(pdf, "4 0 obj << /Length %zu >> stream\n", stream_len);
  gsize at = pdf->len;
  g_string_set_size(pdf, at + stream_len);
  memset(pdf->str + at, ' ', stream_len); /* an empty content stream, in white space */
  g_string_append(pdf, "\nendstream endobj\n");
  gsize xref = pdf->len;
  g_string_append(pdf, "xref\n0 5\n0000000000 65535 f \n");
  for (int i = 1; i <= 4; i++)
    g_string_append_printf(pdf, "%010zu 00000 n \n", off[i]);
  g_string_append_printf(pdf, "trailer << /Size 5 /Root 1 0 R >>\nstartxref\n%zu\n%%%%EOF\n",
                         xref);

  kcps_spool_t *spool = open_spool();
  g_autoptr(GError) error = NULL;
  kcps_spool_writer_t *w =
    kcps_spool_writer_new(spool, 1000, "alice", "big", "application/pdf", &error);
  ck_assert_ptr_nonnull(w);
  for (gsize o = 0; o < pdf->len; o += 65536)
    ck_assert(kcps_spool_writer_write(w, pdf->str + o, MIN(65536, pdf->len - o), &error));
  g_autoptr(kcps_job_t) job = kcps_spool_writer_commit(w, &error);
  ck_assert_msg(job != NULL, "commit of a 20 MiB PDF: %s", error ? error->message : "?");
  ck_assert_int_eq(job->pages, 1);
  ck_assert_int_eq(job->size, (gint64)pdf->len);
  g_autofree char *want = g_compute_checksum_for_data(G_CHECKSUM_SHA256,
                                                      (const guchar *)pdf->str, pdf->len);
  ck_assert_str_eq(job->sha256, want);
  g_autofree char *path = g_strdup_printf("%s/spool/1000/%s.pdf", tmp_dir, job->id);
  g_autofree char *got = file_sha256(path);
  ck_assert_str_eq(got, want);
  kcps_spool_close(spool);
  g_string_free(pdf, TRUE);
}
END_TEST

START_TEST(test_open_errors) {
  g_autoptr(GError) error = NULL;
  g_autofree char *file = g_build_filename(tmp_dir, "plainfile", NULL);
  ck_assert(g_file_set_contents(file, "x", 1, NULL));
  ck_assert_ptr_null(kcps_spool_open(file, &error));
  ck_assert(g_error_matches(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_IO));
  ck_assert_msg(strstr(error->message, "plainfile") != NULL, "message names no path: %s",
                error->message);
}
END_TEST

/* A spool opened by a relative path (kcpsd --spool d/spool) keeps working,
 * also after the working folder changed: poppler wants an absolute path. */
START_TEST(test_relative_dir) {
  g_autofree char *cwd = g_get_current_dir();
  ck_assert_int_eq(chdir(tmp_dir), 0);
  g_autoptr(GError) error = NULL;
  kcps_spool_t *spool = kcps_spool_open("spool", &error);
  ck_assert_msg(spool != NULL, "kcps_spool_open(\"spool\"): %s", error ? error->message : "?");
  g_autoptr(kcps_job_t) first = spool_file(spool, 1000, TEST_PDF, &error);
  ck_assert_msg(first != NULL, "commit with a relative spool folder: %s",
                error ? error->message : "?");

  ck_assert_int_eq(chdir("/"), 0);
  g_autoptr(kcps_job_t) second = spool_file(spool, 1000, TEST_PDF, &error);
  ck_assert_msg(second != NULL, "commit after chdir: %s", error ? error->message : "?");
  int fd = kcps_spool_open_document(spool, first, &error);
  ck_assert_msg(fd >= 0, "open_document after chdir: %s", error ? error->message : "?");
  close(fd);
  ck_assert_int_eq(chdir(cwd), 0);

  /* Both documents are where an absolute path finds them. */
  ck_assert_int_eq(count_files(1000), 2);
  ck_assert_uint_eq(count_jobs(spool, 1000), 2);
  kcps_spool_close(spool);
}
END_TEST

static Suite *spool_suite(void) {
  Suite *s = suite_create("spool");
  TCase *tc = tcase_create("writer");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_commit_pdf);
  tcase_add_test(tc, test_withdrawals);
  tcase_add_test(tc, test_commit_multipage);
  tcase_add_loop_test(tc, test_refuse_bad_document, 0, G_N_ELEMENTS(bad_docs));
  tcase_add_test(tc, test_refuse_encrypted);
  tcase_add_test(tc, test_writer_fd);
  tcase_add_test(tc, test_not_pdf_message);
  tcase_add_test(tc, test_too_large);
  tcase_add_test(tc, test_abort_leaves_nothing);
  tcase_add_test(tc, test_concurrent_writers);
  tcase_add_test(tc, test_group_commit);
  tcase_add_test(tc, test_large_document);
  suite_add_tcase(s, tc);

  tc = tcase_create("index");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_owners_apart);
  tcase_add_test(tc, test_reopen);
  tcase_add_test(tc, test_sweep_owner_folders);
  tcase_add_test(tc, test_states);
  tcase_add_test(tc, test_ticket_once);
  tcase_add_test(tc, test_open_errors);
  tcase_add_test(tc, test_relative_dir);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(spool_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
