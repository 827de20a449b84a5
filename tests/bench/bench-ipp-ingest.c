/* Benchmark client: sends JOBS Print-Job requests of one PDF to an IPP
 * printer from CONCURRENCY threads, each thread on one keep-alive http_t,
 * and prints "jobs=N seconds=S jobs_per_s=R". The same program drives our
 * virtual printer and the cupsd anchor, so both see the same client cost.
 *
 * usage: bench-ipp-ingest URI FILE.pdf JOBS CONCURRENCY
 * The body is chunked (as ipptool sends it); BENCH_CONTENT_LENGTH=1 sends
 * it with a Content-Length instead (as cupsDoFileRequest does).
 * Exit 0 when every job was accepted; 1 naming the first refusal; 2 on
 * bad arguments. */
#include <cups/cups.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 256

typedef struct bench_s {
  char host[256];
  char resource[1024];
  int port;
  http_encryption_t encryption;
  const char *uri;
  const char *user;
  const char *document; /* the whole file, read once: the disk stays out of the figure */
  size_t document_size;
  bool content_length; /* BENCH_CONTENT_LENGTH=1: a Content-Length body, not chunked */
  int jobs;
  atomic_int next;   /* jobs handed out so far */
  atomic_int failed; /* set once; the others stop taking jobs */
  pthread_mutex_t lock;
  char failure[512];
} bench_t;

static void fail(bench_t *bench, const char *fmt, const char *a, const char *b) {
  pthread_mutex_lock(&bench->lock);
  if (!atomic_load(&bench->failed)) {
    snprintf(bench->failure, sizeof bench->failure, fmt, a, b);
    atomic_store(&bench->failed, 1);
  }
  pthread_mutex_unlock(&bench->lock);
}

/* Sends one Print-Job on http; false (and the reason recorded) on refusal. */
static bool send_job(bench_t *bench, http_t *http, int n) {
  char name[64];
  snprintf(name, sizeof name, "bench-%d", n);
  ipp_t *request = ippNewRequest(IPP_OP_PRINT_JOB);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_URI, "printer-uri", NULL, bench->uri);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_NAME, "requesting-user-name", NULL,
               bench->user);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_NAME, "job-name", NULL, name);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_MIMETYPE, "document-format", NULL,
               "application/pdf");

  /* cupsSendRequest's length is the whole body: the IPP message too. */
  size_t length = bench->content_length ? ippLength(request) + bench->document_size : 0;
  http_status_t status = cupsSendRequest(http, request, bench->resource, length);
  size_t off = 0;
  while (status == HTTP_STATUS_CONTINUE && off < bench->document_size) {
    size_t chunk = bench->document_size - off;
    if (chunk > 64 * 1024)
      chunk = 64 * 1024;
    status = cupsWriteRequestData(http, bench->document + off, chunk);
    off += chunk;
  }
  ipp_t *response = NULL;
  if (status == HTTP_STATUS_CONTINUE)
    response = cupsGetResponse(http, bench->resource);
  ippDelete(request);

  ipp_status_t ipp_status = response != NULL ? ippGetStatusCode(response) : cupsLastError();
  bool ok = response != NULL && ipp_status <= IPP_STATUS_OK_EVENTS_COMPLETE;
  if (!ok) {
    const char *message = cupsLastErrorString();
    fail(bench, "job refused: %s (%s)", ippErrorString(ipp_status),
         message != NULL ? message : "no message");
  }
  ippDelete(response);
  return ok;
}

static void *worker(void *arg) {
  bench_t *bench = arg;
  http_t *http = httpConnect2(bench->host, bench->port, NULL, AF_UNSPEC, bench->encryption, 1,
                              30000, NULL);
  if (http == NULL) {
    /* httpConnect2 leaves no reliable reason (errno is that of a later
     * close), so none is made up. */
    fail(bench, "cannot connect to %s%s", bench->uri, " (nothing listening there?)");
    return NULL;
  }
  httpSetKeepAlive(http, HTTP_KEEPALIVE_ON);
  for (;;) {
    if (atomic_load(&bench->failed))
      break;
    int n = atomic_fetch_add(&bench->next, 1);
    if (n >= bench->jobs)
      break;
    if (!send_job(bench, http, n + 1))
      break;
  }
  httpClose(http);
  return NULL;
}

/* Reads path whole into *data; false with a message on stderr. */
static bool read_file(const char *path, char **data, size_t *size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    fprintf(stderr, "bench-ipp-ingest: cannot open %s: %s\n", path, strerror(errno));
    if (fd >= 0)
      close(fd);
    return false;
  }
  *size = (size_t)st.st_size;
  *data = malloc(*size > 0 ? *size : 1);
  size_t got = 0;
  while (*data != NULL && got < *size) {
    ssize_t r = read(fd, *data + got, *size - got);
    if (r <= 0) {
      fprintf(stderr, "bench-ipp-ingest: cannot read %s: %s\n", path,
              r < 0 ? strerror(errno) : "file shrank while reading");
      close(fd);
      return false;
    }
    got += (size_t)r;
  }
  close(fd);
  return *data != NULL;
}

static bool parse_count(const char *text, int max, int *out) {
  char *end = NULL;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (end == text || *end != '\0' || errno != 0 || v < 1 || v > max)
    return false;
  *out = (int)v;
  return true;
}

int main(int argc, char **argv) {
  static bench_t bench;
  if (argc != 5) {
    fprintf(stderr, "usage: bench-ipp-ingest URI FILE.pdf JOBS CONCURRENCY\n");
    return 2;
  }
  bench.uri = argv[1];
  int concurrency = 0;
  if (!parse_count(argv[3], 10000000, &bench.jobs)) {
    fprintf(stderr, "bench-ipp-ingest: JOBS must be 1..10000000, got \"%s\"\n", argv[3]);
    return 2;
  }
  if (!parse_count(argv[4], MAX_THREADS, &concurrency)) {
    fprintf(stderr, "bench-ipp-ingest: CONCURRENCY must be 1..%d, got \"%s\"\n", MAX_THREADS,
            argv[4]);
    return 2;
  }
  char scheme[32], userpass[256];
  if (httpSeparateURI(HTTP_URI_CODING_ALL, bench.uri, scheme, sizeof scheme, userpass,
                      sizeof userpass, bench.host, sizeof bench.host, &bench.port,
                      bench.resource, sizeof bench.resource) < HTTP_URI_STATUS_OK ||
      (strcmp(scheme, "ipp") != 0 && strcmp(scheme, "ipps") != 0)) {
    fprintf(stderr, "bench-ipp-ingest: \"%s\" is not an ipp:// or ipps:// URI\n", bench.uri);
    return 2;
  }
  bench.encryption = strcmp(scheme, "ipps") == 0 ? HTTP_ENCRYPTION_ALWAYS
                                                 : HTTP_ENCRYPTION_IF_REQUESTED;
  struct passwd *pw = getpwuid(getuid());
  bench.user = pw != NULL ? strdup(pw->pw_name) : "nobody";
  char *document = NULL;
  if (!read_file(argv[2], &document, &bench.document_size))
    return 2;
  bench.document = document;
  const char *cl = getenv("BENCH_CONTENT_LENGTH");
  bench.content_length = cl != NULL && strcmp(cl, "1") == 0;
  pthread_mutex_init(&bench.lock, NULL);

  pthread_t threads[MAX_THREADS];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int started = 0;
  for (; started < concurrency; started++) {
    if (pthread_create(&threads[started], NULL, worker, &bench) != 0) {
      fail(&bench, "cannot start a thread%s%s", "", "");
      break;
    }
  }
  for (int i = 0; i < started; i++)
    pthread_join(threads[i], NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);

  if (atomic_load(&bench.failed)) {
    fprintf(stderr, "bench-ipp-ingest: %s\n", bench.failure);
    return 1;
  }
  double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("jobs=%d seconds=%.3f jobs_per_s=%.1f\n", bench.jobs, seconds, bench.jobs / seconds);
  free(document);
  return 0;
}
