/* Client of the crash test (crash.sh): sends Print-Jobs of distinct small
 * PDFs to the virtual printer while it is being killed, retrying a job until
 * it gets an answer, and records every attempt so that the spool can be
 * checked against what was acknowledged.
 *
 * usage: crash-client PORT SEED FIRST STEP JOBS LOG
 * Sends jobs FIRST, FIRST+STEP, ... below JOBS to ipp://127.0.0.1:PORT/ipp/print.
 * Job N's document is a one-page PDF made from SEED and N (so it is unique
 * and the same on every attempt), padded to a size between 1 KiB and 1 MiB.
 * LOG gets one line per document and per attempt:
 *   doc N SHA256 SIZE
 *   attempt N K RESULT [STATUS]
 * RESULT: ok (successful-ok), refused (another IPP status), noanswer (the
 * request may have reached the printer but no answer came back), noconnect
 * (nothing was sent). Exit 0 when every job was answered, 1 when the time
 * ran out or the log cannot be written, 2 on bad arguments. */
#include <cups/cups.h>
#include <errno.h>
#include <glib.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEADLINE_SECONDS 75
#define RETRY_DELAY_US 5000

/* A valid PDF (correct xref offsets) whose page shows "crash test job N",
 * padded with comment lines in its content stream. Caller g_string_frees. */
static GString *make_document(unsigned seed, int n) {
  GRand *rand = g_rand_new_with_seed(seed * 7919u + (unsigned)n);
  gint32 pad = g_rand_int_range(rand, 1024, 1024 * 1024);
  GString *content = g_string_new(NULL);
  g_string_append_printf(content, "BT /F1 18 Tf 72 720 Td (crash test job %d seed %u) Tj ET\n",
                         n, seed);
  while ((gint32)content->len < pad) {
    g_string_append(content, "%");
    for (int i = 0; i < 63; i++)
      g_string_append_c(content, (char)('a' + g_rand_int_range(rand, 0, 26)));
    g_string_append_c(content, '\n');
  }
  g_rand_free(rand);

  GString *pdf = g_string_new("%PDF-1.4\n");
  gsize offsets[6];
  offsets[1] = pdf->len;
  g_string_append(pdf, "1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n");
  offsets[2] = pdf->len;
  g_string_append(pdf, "2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n");
  offsets[3] = pdf->len;
  g_string_append(pdf, "3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                       "/Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >> endobj\n");
  offsets[4] = pdf->len;
  g_string_append_printf(pdf, "4 0 obj << /Length %zu >> stream\n", content->len);
  g_string_append_len(pdf, content->str, (gssize)content->len);
  g_string_append(pdf, "endstream endobj\n");
  offsets[5] = pdf->len;
  g_string_append(pdf, "5 0 obj << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> endobj\n");
  gsize xref = pdf->len;
  g_string_append(pdf, "xref\n0 6\n0000000000 65535 f \n");
  for (int i = 1; i <= 5; i++)
    g_string_append_printf(pdf, "%010zu 00000 n \n", offsets[i]);
  g_string_append_printf(pdf, "trailer << /Size 6 /Root 1 0 R >>\nstartxref\n%zu\n%%%%EOF\n",
                         xref);
  g_string_free(content, TRUE);
  return pdf;
}

typedef enum { SENT_OK, SENT_REFUSED, SENT_NOANSWER, SENT_NOCONNECT } sent_t;

/* One attempt on a fresh connection; *status gets the IPP status when answered. */
static sent_t send_once(int port, const char *uri, const GString *doc, int n,
                        ipp_status_t *status) {
  char port_text[16];
  snprintf(port_text, sizeof port_text, "%d", port);
  http_addrlist_t *addrs = httpAddrGetList("127.0.0.1", AF_INET, port_text);
  if (addrs == NULL)
    return SENT_NOCONNECT;
  http_t *http = httpConnect2("127.0.0.1", port, addrs, AF_INET, HTTP_ENCRYPTION_IF_REQUESTED,
                              1, 5000, NULL);
  httpAddrFreeList(addrs);
  if (http == NULL)
    return SENT_NOCONNECT;
  httpSetTimeout(http, 10.0, NULL, NULL);

  char name[64];
  snprintf(name, sizeof name, "crash-%d", n);
  ipp_t *request = ippNewRequest(IPP_OP_PRINT_JOB);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_URI, "printer-uri", NULL, uri);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_NAME, "job-name", NULL, name);
  ippAddString(request, IPP_TAG_OPERATION, IPP_TAG_MIMETYPE, "document-format", NULL,
               "application/pdf");
  http_status_t hs = cupsSendRequest(http, request, "/ipp/print", 0);
  for (size_t off = 0; hs == HTTP_STATUS_CONTINUE && off < doc->len;) {
    size_t chunk = MIN(doc->len - off, (size_t)16384);
    hs = cupsWriteRequestData(http, doc->str + off, chunk);
    off += chunk;
  }
  ipp_t *response = hs == HTTP_STATUS_CONTINUE ? cupsGetResponse(http, "/ipp/print") : NULL;
  ippDelete(request);
  httpClose(http);
  if (response == NULL)
    return SENT_NOANSWER;
  *status = ippGetStatusCode(response);
  ippDelete(response);
  return *status == IPP_STATUS_OK ? SENT_OK : SENT_REFUSED;
}

static bool parse_int(const char *text, int min, int max, int *out) {
  char *end = NULL;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (end == text || *end != '\0' || errno != 0 || v < min || v > max)
    return false;
  *out = (int)v;
  return true;
}

int main(int argc, char **argv) {
  int port, seed, first, step, jobs;
  if (argc != 7 || !parse_int(argv[1], 1, 65535, &port) ||
      !parse_int(argv[2], 0, 1000000000, &seed) || !parse_int(argv[3], 0, 1000000, &first) ||
      !parse_int(argv[4], 1, 1000, &step) || !parse_int(argv[5], 1, 1000000, &jobs)) {
    fprintf(stderr, "usage: crash-client PORT SEED FIRST STEP JOBS LOG\n");
    return 2;
  }
  FILE *log = fopen(argv[6], "w");
  if (log == NULL) {
    fprintf(stderr, "crash-client: cannot write %s: %s\n", argv[6], strerror(errno));
    return 1;
  }
  char uri[64];
  snprintf(uri, sizeof uri, "ipp://127.0.0.1:%d/ipp/print", port);
  gint64 deadline = g_get_monotonic_time() + (gint64)DEADLINE_SECONDS * G_USEC_PER_SEC;

  static const char *const results[] = {"ok", "refused", "noanswer", "noconnect"};
  for (int n = first; n < jobs; n += step) {
    GString *doc = make_document((unsigned)seed, n);
    g_autofree char *sha = g_compute_checksum_for_data(G_CHECKSUM_SHA256,
                                                       (const guchar *)doc->str, doc->len);
    fprintf(log, "doc %d %s %zu\n", n, sha, doc->len);
    fflush(log);
    sent_t sent = SENT_NOCONNECT;
    for (int k = 1; sent == SENT_NOANSWER || sent == SENT_NOCONNECT; k++) {
      if (g_get_monotonic_time() > deadline) {
        fprintf(stderr, "crash-client: job %d not answered within %d s\n", n,
                DEADLINE_SECONDS);
        fclose(log);
        return 1;
      }
      ipp_status_t status = IPP_STATUS_OK;
      sent = send_once(port, uri, doc, n, &status);
      if (sent == SENT_REFUSED)
        fprintf(log, "attempt %d %d %s %s\n", n, k, results[sent], ippErrorString(status));
      else
        fprintf(log, "attempt %d %d %s\n", n, k, results[sent]);
      if (fflush(log) != 0) {
        fprintf(stderr, "crash-client: cannot write %s: %s\n", argv[6], strerror(errno));
        return 1;
      }
      if (sent == SENT_NOANSWER || sent == SENT_NOCONNECT)
        g_usleep(RETRY_DELAY_US);
    }
    g_string_free(doc, TRUE);
  }
  return fclose(log) == 0 ? 0 : 1;
}
