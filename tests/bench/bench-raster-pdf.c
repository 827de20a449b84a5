/* Benchmark: PWG raster to PDF, our converter against cups-filters'
 * rastertopdf on the same raster (a 20-page 300 dpi sRGB 8-bit job unless
 * a file is given). Each runs in its own child, so wait4() gives each its
 * own peak RSS; the best of RUNS wall times counts.
 *
 * usage: bench-raster-pdf [IN.pwg [RUNS]]
 *        bench-raster-pdf --convert FORMAT IN OUT   (one conversion, for scripts)
 * Prints the two "bench:" lines; exit 1 when a conversion fails. */
#include "convert/convert.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <poppler.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RASTERTOPDF "/usr/lib/cups/filter/rastertopdf"
#define TESTPAGE "/usr/share/cups/data/default-testpage.pdf"
#define PAGES 20

static int convert_once(const char *format, const char *in, const char *out) {
  int in_fd = open(in, O_RDONLY | O_CLOEXEC);
  int out_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (in_fd < 0 || out_fd < 0) {
    fprintf(stderr, "bench-raster-pdf: cannot open %s or %s: %s\n", in, out, strerror(errno));
    return 1;
  }
  GError *error = NULL;
  kcps_convert_result_t result = {0};
  bool ok = kcps_convert_to_pdf(format, in_fd, out_fd, &result, &error);
  close(in_fd);
  close(out_fd);
  if (!ok) {
    fprintf(stderr, "bench-raster-pdf: %s\n", error->message);
    g_error_free(error);
    return 1;
  }
  return 0;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs ARGV (or our converter when ARGV is NULL) with stdout to OUT;
 * returns wall seconds, sets *RSS_KIB; negative on failure. */
static double run_child(char **argv, const char *in, const char *out, long *rss_kib) {
  double start = now();
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    if (argv == NULL)
      _exit(convert_once("image/pwg-raster", in, out));
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || devnull < 0 || dup2(fd, 1) < 0 || dup2(devnull, 2) < 0)
      _exit(127);
    execv(argv[0], argv);
    _exit(127);
  }
  int status = 0;
  struct rusage ru;
  while (wait4(pid, &status, 0, &ru) < 0)
    if (errno != EINTR)
      return -1;
  double seconds = now() - start;
  *rss_kib = ru.ru_maxrss;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? seconds : -1;
}

static int pdf_pages(const char *path) {
  char *uri = g_filename_to_uri(path, NULL, NULL);
  PopplerDocument *doc = poppler_document_new_from_file(uri, NULL, NULL);
  g_free(uri);
  if (doc == NULL)
    return -1;
  int n = poppler_document_get_n_pages(doc);
  g_object_unref(doc);
  return n;
}

/* The 20-page job, made with Ghostscript in DIR. */
static char *make_job(const char *dir) {
  char *out = g_build_filename(dir, "job.pwg", NULL);
  char *arg_out = g_strdup_printf("-sOutputFile=%s", out);
  const char *argv[9 + PAGES + 1] = {"gs", "-q", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pwgraster",
                                     "-dcupsColorSpace=19", "-dcupsBitsPerColor=8", "-r300"};
  int n = 8;
  argv[n++] = arg_out;
  for (int i = 0; i < PAGES; i++) /* the test page is one page */
    argv[n++] = TESTPAGE;
  argv[n] = NULL;
  int status = 0;
  gboolean ok = g_spawn_sync(NULL, (char **)argv, NULL,
                             G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL |
                                 G_SPAWN_STDERR_TO_DEV_NULL,
                             NULL, NULL, NULL, NULL, &status, NULL) &&
                g_spawn_check_wait_status(status, NULL);
  g_free(arg_out);
  if (!ok) {
    g_free(out);
    return NULL;
  }
  return out;
}

int main(int argc, char **argv) {
  if (argc == 5 && strcmp(argv[1], "--convert") == 0)
    return convert_once(argv[2], argv[3], argv[4]);

  char *dir = g_dir_make_tmp("bench-raster-pdf-XXXXXX", NULL);
  if (dir == NULL)
    return 1;
  char *in = argc > 1 ? g_strdup(argv[1]) : make_job(dir);
  int runs = argc > 2 ? atoi(argv[2]) : 3;
  char *ours_pdf = g_build_filename(dir, "ours.pdf", NULL);
  char *anchor_pdf = g_build_filename(dir, "anchor.pdf", NULL);
  int rc = 1;
  if (in == NULL || runs < 1) {
    fprintf(stderr, "bench-raster-pdf: no input (gs failed?)\n");
    goto out;
  }
  char *anchor_argv[] = {RASTERTOPDF, "1", "user", "title", "1", "", in, NULL};
  double best_ours = 1e9, best_anchor = 1e9;
  long rss_ours = 0, rss_anchor = 0;
  for (int i = 0; i < runs; i++) {
    long rss = 0;
    double t = run_child(NULL, in, ours_pdf, &rss);
    if (t < 0) {
      fprintf(stderr, "bench-raster-pdf: our conversion failed\n");
      goto out;
    }
    best_ours = MIN(best_ours, t);
    rss_ours = MAX(rss_ours, rss);
    t = run_child(anchor_argv, in, anchor_pdf, &rss);
    if (t < 0) {
      fprintf(stderr, "bench-raster-pdf: rastertopdf failed\n");
      goto out;
    }
    best_anchor = MIN(best_anchor, t);
    rss_anchor = MAX(rss_anchor, rss);
  }
  int pages = pdf_pages(ours_pdf), anchor_pages = pdf_pages(anchor_pdf);
  if (pages <= 0 || pages != anchor_pages) {
    fprintf(stderr, "bench-raster-pdf: pages ours=%d anchor=%d\n", pages, anchor_pages);
    goto out;
  }
  struct stat st_ours, st_anchor;
  if (g_stat(ours_pdf, &st_ours) == 0 && g_stat(anchor_pdf, &st_anchor) == 0)
    fprintf(stderr, "bench-raster-pdf: %d pages; PDF bytes ours=%lld anchor=%lld\n", pages,
            (long long)st_ours.st_size, (long long)st_anchor.st_size);
  double pps_ours = pages / best_ours, pps_anchor = pages / best_anchor;
  printf("bench: raster-to-pdf-pages-per-s ours=%.1f anchor=%.1f ratio=%.2f goal=>=1.0\n",
         pps_ours, pps_anchor, pps_ours / pps_anchor);
  printf("bench: raster-to-pdf-peak-rss-MiB ours=%.1f anchor=%.1f ratio=%.2f goal=<=1.0\n",
         rss_ours / 1024.0, rss_anchor / 1024.0, (double)rss_ours / (double)rss_anchor);
  rc = 0;
out:
  if (argc <= 1 && in != NULL)
    g_unlink(in);
  g_unlink(ours_pdf);
  g_unlink(anchor_pdf);
  g_rmdir(dir);
  g_free(in);
  g_free(ours_pdf);
  g_free(anchor_pdf);
  g_free(dir);
  return rc;
}
