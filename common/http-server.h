/* A small HTTP(S) server over libmicrohttpd for JSON APIs and file pulls:
 * kcps-server, the 5571 pull port and the 5572 local API all use it.
 * The handler runs once per request with the whole (bounded) body, on a
 * thread of its own; it may block. A route may instead take its body as a
 * stream (config.headers_fn and kcps_http_req_sink()): large uploads with
 * bounded memory, refused or accepted on their headers alone. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <sys/socket.h>

G_BEGIN_DECLS

typedef struct kcps_http_server_s kcps_http_server_t;
typedef struct kcps_http_req_s kcps_http_req_t;

/* Called once per complete request. It must answer with exactly one
 * kcps_http_respond_*(); a handler that does not gets a 500. */
typedef void (*kcps_http_handler_t)(kcps_http_req_t *req, void *data);

/* Optional: called once per request as soon as its headers are in, before
 * any body byte is read (method, path, query and headers are there; the
 * body is not). It may:
 *  - answer at once with a kcps_http_respond_*(): the handler does not run,
 *    the body is never read (a client that sent "Expect: 100-continue" is
 *    not asked for it) and the connection closes after the answer, e.g. an
 *    unauthenticated upload refused before one byte of it is stored;
 *  - call kcps_http_req_sink(): the body goes to the sink as it arrives,
 *    then the handler runs as usual (kcps_http_req_body() is empty);
 *  - do neither: the body is buffered, up to max_body, as for any route. */
typedef void (*kcps_http_headers_fn)(kcps_http_req_t *req, void *data);

typedef struct kcps_http_config_s {
  const char *const *listen; /* NULL-terminated: "127.0.0.1:5572", "[::1]:5572",
                                "0.0.0.0:5571"; port 0 picks a free port */
  const char *cert_path;     /* PEM certificate: TLS (1.2+) when set */
  const char *key_path;      /* PEM private key */
  size_t max_body;           /* larger bodies get 413 before the handler; 0 = 1 MiB */
  unsigned timeout_s;        /* a connection idle this long (no byte read or written,
                                e.g. half a request, or an answer nobody reads) is
                                closed; 0 = 60 s. Each connection has its own thread,
                                so a stalled one holds up no other */
  kcps_http_headers_fn headers_fn; /* NULL: every body is buffered */
} kcps_http_config_t;

/* Binds every listen address and starts serving. NULL + error (naming the
 * address) when any address cannot be bound. */
kcps_http_server_t *kcps_http_server_new(const kcps_http_config_t *config,
                                         kcps_http_handler_t handler, void *data,
                                         GError **error);

/* The port actually bound for listen address number idx. */
int kcps_http_server_port(const kcps_http_server_t *server, unsigned idx);

/* Stops serving (waits for running handlers) and frees. NULL is a no-op. */
void kcps_http_server_free(kcps_http_server_t *server);

/* Request accessors; strings belong to the request. */
const char *kcps_http_req_method(const kcps_http_req_t *req);
const char *kcps_http_req_path(const kcps_http_req_t *req);   /* no query */
const char *kcps_http_req_header(const kcps_http_req_t *req, const char *name);
const char *kcps_http_req_query(const kcps_http_req_t *req, const char *name);
const char *kcps_http_req_body(const kcps_http_req_t *req, size_t *len);
/* The token of "Authorization: Bearer <token>", or NULL. */
const char *kcps_http_req_bearer(const kcps_http_req_t *req);
/* The connection's socket (for the kernel's view of who is calling). */
int kcps_http_req_socket(const kcps_http_req_t *req);
const struct sockaddr *kcps_http_req_peer(const kcps_http_req_t *req);

/* A body sink, set from the headers_fn. write_fn gets the body in order, a
 * piece at a time (never more than the connection's buffer, so memory stays
 * bounded), on the connection's thread; it may block (disk). It returns
 * false to refuse the rest: further bytes are read and dropped (the client
 * gets the handler's answer on a connection that stays usable) and
 * kcps_http_req_sink_stopped() says so. Bodies over max bytes (by
 * Content-Length, or counted for a chunked one) get 413 from the server:
 * before the first byte when the length is declared. free_fn(sink) runs
 * once when the request ends: after the handler answered, or when the
 * connection broke mid-body (then the handler never runs). */
typedef bool (*kcps_http_sink_fn)(void *sink, const char *buf, size_t len);
void kcps_http_req_sink(kcps_http_req_t *req, guint64 max, kcps_http_sink_fn write_fn,
                        void *sink, GDestroyNotify free_fn);
/* The sink given to kcps_http_req_sink(), or NULL (in the handler). */
void *kcps_http_req_sink_data(const kcps_http_req_t *req);
/* Body bytes the sink took (not counting those after a refusal). */
guint64 kcps_http_req_sink_received(const kcps_http_req_t *req);
/* Whether write_fn refused (returned false). */
bool kcps_http_req_sink_stopped(const kcps_http_req_t *req);
/* Whether the request answered in its headers_fn already. */
bool kcps_http_req_answered(const kcps_http_req_t *req);

/* Parses the body as a JSON object. NULL + error naming the problem
 * ("body is not JSON: <parser message>", "body is not a JSON object").
 * The returned object belongs to the request. */
JsonObject *kcps_http_req_json(kcps_http_req_t *req, GError **error);

/* Adds a response header; call before kcps_http_respond_*(). */
void kcps_http_req_add_header(kcps_http_req_t *req, const char *name, const char *value);

/* Responses. The node is serialized, not taken. */
void kcps_http_respond_json(kcps_http_req_t *req, unsigned status, JsonNode *node);
/* {"error": code, "message": <printf of fmt>} */
void kcps_http_respond_error(kcps_http_req_t *req, unsigned status, const char *code,
                             const char *fmt, ...) G_GNUC_PRINTF(4, 5);
void kcps_http_respond_empty(kcps_http_req_t *req, unsigned status);
/* Streams size bytes from fd (taken: closed by the server). */
void kcps_http_respond_fd(kcps_http_req_t *req, unsigned status, const char *content_type,
                          int fd, guint64 size);
/* Streams size bytes of fd starting at byte offset (a Range answer). */
void kcps_http_respond_fd_range(kcps_http_req_t *req, unsigned status,
                                const char *content_type, int fd, guint64 offset,
                                guint64 size);

/* A stream of unknown length (chunked), e.g. server-sent events. read_fn is
 * called on the connection's own thread and MAY BLOCK until it has bytes:
 * it copies at most max bytes into buf and returns how many (> 0), or
 * returns 0 to end the stream (a negative value ends it as an error). The
 * connection's idle timeout is off for it: the handler decides how long it
 * lives. free_fn(data) runs once when the connection ends (also when the
 * peer went away). */
typedef gssize (*kcps_http_stream_fn)(void *data, char *buf, size_t max);
void kcps_http_respond_stream(kcps_http_req_t *req, unsigned status, const char *content_type,
                              kcps_http_stream_fn read_fn, void *data, GDestroyNotify free_fn);

G_END_DECLS
