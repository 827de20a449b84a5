/* Fuzz target: IPP requests as a local process sends them to 5570
 * (untrusted bytes) through libcups's parser, then our request checks and
 * the attribute code that answers Get-Printer-Attributes and job queries. */
#include "ipp/ipp-private.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
  const uint8_t *data;
  size_t size, pos;
} membuf_t;

static ssize_t read_mem(void *context, ipp_uchar_t *buffer, size_t bytes) {
  membuf_t *m = context;
  size_t n = MIN(bytes, m->size - m->pos);
  memcpy(buffer, m->data + m->pos, n);
  m->pos += n;
  return (ssize_t)n;
}

static ssize_t write_sink(void *context, ipp_uchar_t *buffer, size_t bytes) {
  (void)buffer;
  *(size_t *)context += bytes;
  return (ssize_t)bytes;
}

/* A printer as the server builds it, without sockets or threads. */
static kcps_ipp_server_t *fake_server(void) {
  static kcps_ipp_server_t server;
  if (server.attrs == NULL) {
    server.name = (char *)"KCPS";
    server.port = 5570;
    server.start_time = 1700000000;
    g_strlcpy(server.printer_uri, "ipp://localhost:5570/ipp/print", sizeof server.printer_uri);
    g_strlcpy(server.uuid, "urn:uuid:00000000-0000-5000-8000-000000000000", sizeof server.uuid);
    server.attrs = kcps__ipp_printer_attrs_new(&server);
  }
  return &server;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kcps_ipp_server_t *server = fake_server();
  membuf_t in = {data, size, 0};
  ipp_t *request = ippNew();
  ipp_state_t state = ippReadIO(&in, read_mem, 1, NULL, request);
  if (state != IPP_STATE_DATA) {
    ippDelete(request);
    return 0;
  }

  ipp_t *response = ippNewResponse(request);
  bool ok = kcps__ipp_check_request(request, response);
  /* A refused request always carries an error status. */
  if (!ok && ippGetStatusCode(response) < IPP_STATUS_REDIRECTION_OTHER_SITE)
    __builtin_trap();
  if (ok) {
    const char *format = NULL;
    if (kcps__ipp_check_job_request(request, response, &format) && format == NULL)
      __builtin_trap();
    kcps__ipp_copy_printer_attrs(server, request, response);
    kcps_job_t job = {.id = (char *)"8d7c1c52-5d5e-4c8e-9a4e-0f5c3c1a2b3c",
                      .owner_uid = 1000,
                      .owner_name = (char *)"alice",
                      .name = NULL,
                      .format = (char *)"application/pdf",
                      .pages = 3,
                      .size = 123456,
                      .created = 1700000100};
    cups_array_t *ra = kcps__ipp_requested(request);
    kcps__ipp_copy_job_attrs(server, &job, 7, ra, response);
    cupsArrayDelete(ra);
  }

  /* The response must serialise. */
  size_t written = 0;
  ippSetState(response, IPP_STATE_IDLE);
  if (ippWriteIO(&written, write_sink, 1, NULL, response) != IPP_STATE_DATA)
    __builtin_trap();
  ippDelete(response);
  ippDelete(request);
  return 0;
}
