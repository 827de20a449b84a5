/* Benchmark helper for "many jobs" (issue 4): a spool with a long history.
 *
 * usage:
 *   bench-spool-many fill DIR JOBS USERS FILE.pdf
 *       Makes DIR a spool holding JOBS jobs spread over USERS owners (uid 0,
 *       the one the benchmark lists, and uids 100000..): the index through
 *       the spool's own schema (kcps_spool_open), the rows by SQL in one
 *       transaction, and each job's document in its owner's folder, as the
 *       spool's sweep expects (hard links to one copy of FILE.pdf per owner:
 *       the sweep only looks at names, and links keep the fill fast).
 *   bench-spool-many list DIR UID
 *       Opens the spool (open_ms: index + sweep) and lists UID's jobs with
 *       kcps_spool_list_jobs, best of 5 (list_ms).
 *   bench-spool-many ready URI CMD ARGS...
 *       Starts CMD and polls URI with Get-Printer-Attributes (every 2 ms)
 *       until it answers; prints pid=<CMD's pid> ready_ms=<launch to
 *       first answer>. CMD keeps running (the caller stops it).
 *   bench-spool-many get-jobs URI
 *       Get-Jobs (my-jobs, which-jobs all, the attributes lpstat asks for) as the
 *       calling user, best of 5: get_jobs_ms and the job count.
 * Figures go to stdout as key=value; exit 1 on failure, 2 on bad usage. */
#include <cups/cups.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <pwd.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool/spool.h"

#define BEST_OF 5
#define OTHER_UID_BASE 100000

static double now_ms(void) { return (double)g_get_monotonic_time() / 1000.0; }

static int fill(const char *dir, int jobs, int users, const char *pdf) {
  g_autoptr(GError) error = NULL;
  kcps_spool_t *spool = kcps_spool_open(dir, &error);
  if (spool == NULL) {
    fprintf(stderr, "bench-spool-many: %s\n", error->message);
    return 1;
  }
  kcps_spool_close(spool);

  g_autofree char *data = NULL;
  gsize len = 0;
  if (!g_file_get_contents(pdf, &data, &len, &error)) {
    fprintf(stderr, "bench-spool-many: %s\n", error->message);
    return 1;
  }
  g_autofree char *sha = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (guchar *)data, len);

  g_autofree char *db_path = g_build_filename(dir, "spool.db", NULL);
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  if (sqlite3_open(db_path, &db) != SQLITE_OK ||
      sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db,
                         "INSERT INTO jobs (id, owner_uid, owner_name, name, format, pages, "
                         "size, sha256, state, created) VALUES (?,?,?,?,?,1,?,?,1,?)",
                         -1, &st, NULL) != SQLITE_OK) {
    fprintf(stderr, "bench-spool-many: %s: %s\n", db_path, sqlite3_errmsg(db));
    return 1;
  }

  double t0 = now_ms();
  gint64 created = g_get_real_time() / G_USEC_PER_SEC - jobs;
  g_autofree char **first = g_new0(char *, (gsize)users);
  for (int i = 0; i < jobs; i++) {
    int u = i % users;
    unsigned uid = u == 0 ? 0 : OTHER_UID_BASE + (unsigned)u;
    g_autofree char *id = g_uuid_string_random();
    g_autofree char *path = g_strdup_printf("%s/%u/%s.pdf", dir, uid, id);
    if (first[u] == NULL) {
      g_autofree char *owner_dir = g_strdup_printf("%s/%u", dir, uid);
      if (g_mkdir(owner_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "bench-spool-many: mkdir %s: %s\n", owner_dir, g_strerror(errno));
        return 1;
      }
      int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd) != 0) {
        fprintf(stderr, "bench-spool-many: write %s: %s\n", path, g_strerror(errno));
        return 1;
      }
      first[u] = g_strdup(path);
    } else if (link(first[u], path) != 0) {
      fprintf(stderr, "bench-spool-many: link %s: %s\n", path, g_strerror(errno));
      return 1;
    }
    g_autofree char *owner = g_strdup_printf("user%u", uid);
    g_autofree char *name = g_strdup_printf("history-%d", i);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, uid);
    sqlite3_bind_text(st, 3, owner, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, "application/pdf", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)len);
    sqlite3_bind_text(st, 7, sha, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 8, created + i);
    if (sqlite3_step(st) != SQLITE_DONE) {
      fprintf(stderr, "bench-spool-many: insert: %s\n", sqlite3_errmsg(db));
      return 1;
    }
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    fprintf(stderr, "bench-spool-many: commit: %s\n", sqlite3_errmsg(db));
    return 1;
  }
  sqlite3_close(db);
  for (int u = 0; u < users; u++)
    g_free(first[u]);
  sync();
  printf("jobs=%d users=%d fill_seconds=%.1f\n", jobs, users, (now_ms() - t0) / 1000.0);
  return 0;
}

static int list(const char *dir, unsigned uid) {
  g_autoptr(GError) error = NULL;
  double t0 = now_ms();
  kcps_spool_t *spool = kcps_spool_open(dir, &error);
  double open_ms = now_ms() - t0;
  if (spool == NULL) {
    fprintf(stderr, "bench-spool-many: %s\n", error->message);
    return 1;
  }
  double best = 1e9;
  guint n = 0;
  for (int i = 0; i < BEST_OF; i++) {
    t0 = now_ms();
    GPtrArray *jobs = kcps_spool_list_jobs(spool, (uid_t)uid, &error);
    double ms = now_ms() - t0;
    if (jobs == NULL) {
      fprintf(stderr, "bench-spool-many: %s\n", error->message);
      return 1;
    }
    n = jobs->len;
    g_ptr_array_unref(jobs);
    best = MIN(best, ms);
  }
  kcps_spool_close(spool);
  printf("open_ms=%.1f list_ms=%.2f jobs=%u\n", open_ms, best, n);
  return 0;
}

/* One IPP request to uri; the response or NULL. */
static ipp_t *ipp_request(const char *uri, ipp_op_t op, bool my_jobs) {
  char scheme[32], userpass[256], host[256], resource[1024];
  int port = 0;
  if (httpSeparateURI(HTTP_URI_CODING_ALL, uri, scheme, sizeof scheme, userpass,
                      sizeof userpass, host, sizeof host, &port, resource,
                      sizeof resource) < HTTP_URI_STATUS_OK)
    return NULL;
  http_t *http = httpConnect2(host, port, NULL, AF_INET, HTTP_ENCRYPTION_IF_REQUESTED, 1, 1000,
                              NULL);
  if (http == NULL)
    return NULL;
  ipp_t *request = ippNewRequest(op);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_URI, "printer-uri", NULL, uri);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_NAME, "requesting-user-name", NULL,
               cupsUser());
  if (my_jobs) {
    static const char *const attrs[] = {"job-id", "job-name", "job-state",
                                        "job-originating-user-name", "job-k-octets",
                                        "time-at-creation", "job-printer-uri"};
    ippAddBoolean(request, IPP_TAG_OPERATION, "my-jobs", 1);
    /* Our spooled jobs count as completed (held for a pull), cupsd's
     * stopped queue keeps them pending: "all" lists both the same way. */
    ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "which-jobs", NULL, "all");
    ippAddStrings(request, IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "requested-attributes",
                  (int)G_N_ELEMENTS(attrs), NULL, attrs);
  } else {
    ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "requested-attributes", NULL,
                 "printer-state");
  }
  ipp_t *response = cupsDoRequest(http, request, resource);
  httpClose(http);
  if (response != NULL && ippGetStatusCode(response) > IPP_STATUS_OK_EVENTS_COMPLETE) {
    ippDelete(response);
    return NULL;
  }
  return response;
}

static int ready(const char *uri, char **argv) {
  double t0 = now_ms();
  GPid pid = 0;
  g_autoptr(GError) error = NULL;
  int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (!g_spawn_async_with_fds(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_SEARCH_PATH, NULL, NULL, &pid,
                              null_fd, null_fd, null_fd, &error)) {
    fprintf(stderr, "bench-spool-many: cannot start %s: %s\n", argv[0], error->message);
    return 1;
  }
  close(null_fd);
  for (;;) {
    ipp_t *response = ipp_request(uri, IPP_OP_GET_PRINTER_ATTRIBUTES, false);
    if (response != NULL) {
      ippDelete(response);
      break;
    }
    if (kill(pid, 0) != 0 || now_ms() - t0 > 600000) {
      fprintf(stderr, "bench-spool-many: %s never answered on %s\n", argv[0], uri);
      kill(pid, SIGKILL);
      return 1;
    }
    g_usleep(2000);
  }
  printf("pid=%d ready_ms=%.1f\n", (int)pid, now_ms() - t0);
  return 0;
}

static int get_jobs(const char *uri) {
  double best = 1e9;
  int n = 0;
  for (int i = 0; i < BEST_OF; i++) {
    double t0 = now_ms();
    ipp_t *response = ipp_request(uri, IPP_OP_GET_JOBS, true);
    double ms = now_ms() - t0;
    if (response == NULL) {
      fprintf(stderr, "bench-spool-many: Get-Jobs on %s failed: %s\n", uri,
              cupsLastErrorString());
      return 1;
    }
    n = 0;
    for (ipp_attribute_t *a = ippFindAttribute(response, "job-id", IPP_TAG_INTEGER); a != NULL;
         a = ippFindNextAttribute(response, "job-id", IPP_TAG_INTEGER))
      n++;
    ippDelete(response);
    best = MIN(best, ms);
  }
  printf("get_jobs_ms=%.2f jobs=%d\n", best, n);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 6 && strcmp(argv[1], "fill") == 0)
    return fill(argv[2], atoi(argv[3]), MAX(1, atoi(argv[4])), argv[5]);
  if (argc == 4 && strcmp(argv[1], "list") == 0)
    return list(argv[2], (unsigned)strtoul(argv[3], NULL, 10));
  if (argc >= 4 && strcmp(argv[1], "ready") == 0)
    return ready(argv[2], argv + 3);
  if (argc == 3 && strcmp(argv[1], "get-jobs") == 0)
    return get_jobs(argv[2]);
  fprintf(stderr, "usage: bench-spool-many fill DIR JOBS USERS FILE.pdf | list DIR UID |\n"
                  "       ready URI CMD ARGS... | get-jobs URI\n");
  return 2;
}
