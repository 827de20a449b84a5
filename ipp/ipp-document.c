/* A job's document, from the request body into the spool: auto-typing by
 * the first bytes, a PDF streamed as it is, PWG raster / URF / JPEG / PNG
 * converted to PDF by convert/ on a thread of its own while the body
 * arrives (memory bounded by one page), and every refusal mapped to the IPP
 * status and a message a person understands. */
#include "ipp/ipp-private.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert/convert.h"

#define READ_CHUNK (64 * 1024)
#define HEAD_LEN 8 /* the longest signature: PNG's */

static const char formats_text[] =
  "PDF, PWG raster, Apple raster (URF), JPEG or PNG";

const char *kcps__ipp_sniff_format(const unsigned char *head, size_t len) {
  static const struct {
    const char *magic;
    size_t len;
    const char *format;
  } signatures[] = {
    {"%PDF-", 5, "application/pdf"},
    {"RaS2", 4, "image/pwg-raster"},
    {"UNIRAST", 7, "image/urf"},
    {"\xff\xd8\xff", 3, "image/jpeg"},
    {"\x89PNG\r\n\x1a\n", 8, "image/png"},
  };
  if (head == NULL)
    return NULL;
  for (size_t i = 0; i < G_N_ELEMENTS(signatures); i++)
    if (len >= signatures[i].len && memcmp(head, signatures[i].magic, signatures[i].len) == 0)
      return signatures[i].format;
  return NULL;
}

/* Reads up to len bytes (fewer only at the end of the body); -1 on a
 * connection failure. */
static ssize_t read_head(http_t *http, unsigned char *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = httpRead2(http, (char *)buf + got, len - got);
    if (n < 0)
      return -1;
    if (n == 0)
      break;
    got += (size_t)n;
  }
  return (ssize_t)got;
}

/* Tells the sender why the spool refused the document; the job-state
 * reason that fits goes to *reason. Consumes error. */
static void respond_spool_error(kcps__ipp_client_t *client, uid_t owner, GError *error,
                                const char **reason) {
  ipp_t *response = client->response;
  *reason = "aborted-by-system";
  if (g_error_matches(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_BAD_DOCUMENT)) {
    *reason = "document-format-error";
    kcps__ipp_respond(response, IPP_STATUS_ERROR_DOCUMENT_FORMAT_ERROR,
                      "The document cannot be printed: the %s.", error->message);
  } else if (g_error_matches(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_PASSWORD)) {
    *reason = "document-password-error";
    kcps__ipp_respond(response, IPP_STATUS_ERROR_DOCUMENT_PASSWORD,
                      "The document is a PDF protected by a password: print it again "
                      "without the password protection.");
  } else if (g_error_matches(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_TOO_LARGE)) {
    kcps__ipp_respond(response, IPP_STATUS_ERROR_REQUEST_ENTITY, "The %s.", error->message);
  } else if (g_error_matches(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_NO_SPACE)) {
    g_warning("ipp: %s: spooling failed, the disk is full: %s", client->peer, error->message);
    kcps__ipp_respond(response, IPP_STATUS_ERROR_INTERNAL,
                      "The job could not be spooled: the disk of the print spool is full.");
  } else {
    g_warning("ipp: %s: spooling failed: %s", client->peer, error->message);
    kcps__ipp_respond(response, IPP_STATUS_ERROR_INTERNAL, "The job could not be spooled.");
  }
  g_info("ipp: %s: document for uid %u refused: %s", client->peer, (unsigned)owner,
         error->message);
  g_error_free(error);
}

static kcps_spool_writer_t *start_writer(kcps__ipp_client_t *client, uid_t owner,
                                         const char *owner_name, const char *job_name,
                                         const char *format, const char **reason) {
  GError *error = NULL;
  kcps_spool_writer_t *writer = kcps_spool_writer_new(client->server->spool, owner, owner_name,
                                                      job_name, format, &error);
  if (writer == NULL)
    respond_spool_error(client, owner, error, reason);
  return writer;
}

/* A PDF: the bytes go into the spool as they come; commit checks them. */
static kcps_job_t *receive_pdf(kcps__ipp_client_t *client, kcps_spool_writer_t *writer,
                               uid_t owner, const unsigned char *head, size_t head_len,
                               const char **reason) {
  GError *error = NULL;
  bool ok = kcps_spool_writer_write(writer, head, head_len, &error);
  g_autofree char *buffer = g_malloc(READ_CHUNK);
  ssize_t n = 0;
  while (ok && (n = httpRead2(client->http, buffer, READ_CHUNK)) > 0)
    ok = kcps_spool_writer_write(writer, buffer, (size_t)n, &error);
  if (ok && n < 0) {
    kcps_spool_writer_abort(writer);
    g_info("ipp: %s: document data could not be read; nothing spooled", client->peer);
    *reason = "aborted-by-system";
    kcps__ipp_respond(client->response, IPP_STATUS_ERROR_INTERNAL,
                      "The document data could not be read.");
    return NULL;
  }
  /* A failed write is recorded in the writer: commit reports it. */
  g_clear_error(&error);
  kcps_job_t *job = kcps_spool_writer_commit(writer, &error);
  if (job == NULL)
    respond_spool_error(client, owner, error, reason);
  return job;
}

/* The converter's thread: reads the body from a socket, writes the PDF
 * into the spool's temporary file. */
typedef struct {
  const char *format;
  int in_fd;  /* closed by the thread when it is done */
  int out_fd; /* the spool writer's */
  bool ok;
  kcps_convert_result_t result;
  GError *error;
} converter_t;

static gpointer converter_thread(gpointer data) {
  converter_t *c = data;
  c->ok = kcps_convert_to_pdf(c->format, c->in_fd, c->out_fd, &c->result, &c->error);
  /* The feeder's next send fails (EPIPE, no signal) and it stops. */
  close(c->in_fd);
  c->in_fd = -1;
  return NULL;
}

static bool send_all(int fd, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    p += n;
    len -= (size_t)n;
  }
  return true;
}

/* A full disk (or quota) while the converter writes the PDF. */
static bool is_disk_full(const GError *error) {
  return g_error_matches(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_NO_SPACE);
}

/* Raster or an image: the connection thread feeds the body through a
 * socket pair to the converter, which writes the PDF into the writer's
 * temporary file; then commit checks it (poppler) and makes it durable.
 * The size limit holds for what arrives and for the PDF being written. */
static kcps_job_t *receive_converted(kcps__ipp_client_t *client, kcps_spool_writer_t *writer,
                                     uid_t owner, const char *format, const unsigned char *head,
                                     size_t head_len, const char **reason) {
  ipp_t *response = client->response;
  gint64 max_size = kcps_spool_get_max_size(client->server->spool);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    g_warning("ipp: %s: cannot make a socket pair: %s", client->peer, g_strerror(errno));
    kcps_spool_writer_abort(writer);
    *reason = "aborted-by-system";
    kcps__ipp_respond(response, IPP_STATUS_ERROR_INTERNAL, "The job could not be spooled.");
    return NULL;
  }
  converter_t c = {.format = format, .in_fd = sv[1], .out_fd = kcps_spool_writer_fd(writer)};
  GError *error = NULL;
  GThread *thread = g_thread_try_new("kcps-ipp-convert", converter_thread, &c, &error);
  if (thread == NULL) {
    g_warning("ipp: %s: cannot start a converter: %s", client->peer, error->message);
    g_error_free(error);
    close(sv[0]);
    close(sv[1]);
    kcps_spool_writer_abort(writer);
    *reason = "aborted-by-system";
    kcps__ipp_respond(response, IPP_STATUS_ERROR_INTERNAL, "The job could not be spooled.");
    return NULL;
  }

  /* Feed until the body ends, the converter stops taking it, or a limit. */
  bool read_failed = false, too_large = false;
  gint64 received = (gint64)head_len;
  bool feeding = send_all(sv[0], head, head_len);
  g_autofree char *buffer = g_malloc(READ_CHUNK);
  while (feeding) {
    ssize_t n = httpRead2(client->http, buffer, READ_CHUNK);
    if (n < 0)
      read_failed = true;
    if (n <= 0)
      break;
    received += n;
    struct stat st;
    if (max_size > 0 && (received > max_size || (fstat(c.out_fd, &st) == 0 &&
                                                 st.st_size > max_size))) {
      too_large = true;
      break;
    }
    feeding = send_all(sv[0], buffer, (size_t)n);
  }
  close(sv[0]); /* end of input for the converter */
  g_thread_join(thread);

  if (read_failed || too_large || !c.ok) {
    kcps_spool_writer_abort(writer);
    *reason = "aborted-by-system";
    if (read_failed) {
      g_info("ipp: %s: document data could not be read; nothing spooled", client->peer);
      kcps__ipp_respond(response, IPP_STATUS_ERROR_INTERNAL,
                        "The document data could not be read.");
    } else if (too_large) {
      g_info("ipp: %s: %s document for uid %u over the limit of %" G_GINT64_FORMAT " bytes",
             client->peer, format, (unsigned)owner, max_size);
      kcps__ipp_respond(response, IPP_STATUS_ERROR_REQUEST_ENTITY,
                        "The document is larger than the limit of %" G_GINT64_FORMAT " bytes.",
                        max_size);
    } else if (is_disk_full(c.error)) {
      g_warning("ipp: %s: converting failed, the disk is full: %s", client->peer,
                c.error->message);
      kcps__ipp_respond(response, IPP_STATUS_ERROR_INTERNAL,
                        "The job could not be spooled: the disk of the print spool is full.");
    } else if (g_error_matches(c.error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_IO)) {
      g_warning("ipp: %s: converting failed: %s", client->peer, c.error->message);
      kcps__ipp_respond(response, IPP_STATUS_ERROR_INTERNAL, "The job could not be spooled.");
    } else {
      /* The sender's fault; convert's message names the part, never the
       * document's content. */
      bool format_err = !g_error_matches(c.error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_FORMAT);
      *reason = format_err ? "document-format-error" : "unsupported-document-format";
      g_info("ipp: %s: %s document for uid %u refused: %s", client->peer, format,
             (unsigned)owner, c.error->message);
      kcps__ipp_respond(response,
                        format_err ? IPP_STATUS_ERROR_DOCUMENT_FORMAT_ERROR
                                   : IPP_STATUS_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED,
                        "The document cannot be printed: %s.", c.error->message);
    }
    g_clear_error(&c.error);
    return NULL;
  }

  kcps_job_t *job = kcps_spool_writer_commit(writer, &error);
  if (job == NULL)
    respond_spool_error(client, owner, error, reason);
  else
    g_debug("ipp: %s: %s converted: %u pages", client->peer, format, c.result.pages);
  return job;
}

kcps_job_t *kcps__ipp_receive_document(kcps__ipp_client_t *client, uid_t owner,
                                       const char *owner_name, const char *job_name,
                                       const char *format, const char **reason) {
  ipp_t *response = client->response;
  *reason = "aborted-by-system";
  if (!kcps__ipp_send_continue(client)) {
    kcps__ipp_respond(response, IPP_STATUS_ERROR_INTERNAL, "The connection failed.");
    return NULL;
  }

  /* The first bytes: an empty body, and the type when it is to be found. */
  unsigned char head[HEAD_LEN];
  ssize_t head_len = read_head(client->http, head, sizeof head);
  if (head_len < 0) {
    g_info("ipp: %s: document data could not be read; nothing spooled", client->peer);
    kcps__ipp_respond(response, IPP_STATUS_ERROR_INTERNAL, "The document data could not be read.");
    return NULL;
  }
  if (head_len == 0) {
    *reason = "document-format-error";
    kcps__ipp_respond(response, IPP_STATUS_ERROR_DOCUMENT_FORMAT_ERROR,
                      "The document is empty: there is nothing to print.");
    return NULL;
  }
  if (strcmp(format, "application/octet-stream") == 0) {
    format = kcps__ipp_sniff_format(head, (size_t)head_len);
    if (format == NULL) {
      *reason = "unsupported-document-format";
      g_info("ipp: %s: auto-typed document of uid %u not recognised", client->peer,
             (unsigned)owner);
      kcps__ipp_respond(response, IPP_STATUS_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED,
                        "The document is not a PDF and not one of the other formats this "
                        "printer takes (%s).",
                        formats_text);
      return NULL;
    }
  }

  kcps_spool_writer_t *writer = start_writer(client, owner, owner_name, job_name, format, reason);
  if (writer == NULL)
    return NULL;
  if (strcmp(format, "application/pdf") == 0)
    return receive_pdf(client, writer, owner, head, (size_t)head_len, reason);
  return receive_converted(client, writer, owner, format, head, (size_t)head_len, reason);
}
