/* kcpsd's local API from the tray: one blocking libcurl call per request in
 * GIO's thread pool, so the main loop never waits on the network and nothing
 * polls. */
#include "ui/tray-client.h"

#include <string.h>

#include "common/http-client.h"

/* A login waits for kcpsd, which waits for the server. */
#define CALL_TIMEOUT_S 60

typedef struct call_s {
  int port;
  char *method;
  char *path;
  JsonNode *body;
} call_t;

static void call_free(call_t *call)
{
  g_free(call->method);
  g_free(call->path);
  if (call->body != NULL)
    json_node_unref(call->body);
  g_free(call);
}

void kcps_tray_reply_free(kcps_tray_reply_t *reply)
{
  if (reply == NULL)
    return;
  if (reply->body != NULL)
    json_node_unref(reply->body);
  g_free(reply);
}

static void run_call(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  (void)source;
  (void)cancellable;
  call_t *call = data;
  g_autofree char *url = g_strdup_printf("http://127.0.0.1:%d%s", call->port, call->path);
  kcps_http_opts_t opts = {.timeout_s = CALL_TIMEOUT_S};
  kcps_tray_reply_t *reply = g_new0(kcps_tray_reply_t, 1);
  g_autoptr(GError) error = NULL;
  kcps_http_call_json(call->method, url, &opts, call->body, &reply->status, &reply->body, &error);
  /* The error's text may quote the server; the reply's status says enough. */
  g_task_return_pointer(task, reply, (GDestroyNotify)kcps_tray_reply_free);
}

void kcps_tray_call_async(int port, const char *method, const char *path, JsonNode *body,
                          GCancellable *cancellable, GAsyncReadyCallback callback, gpointer data)
{
  call_t *call = g_new0(call_t, 1);
  call->port = port;
  call->method = g_strdup(method);
  call->path = g_strdup(path);
  call->body = body != NULL ? json_node_ref(body) : NULL;
  g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, data);
  g_task_set_task_data(task, call, (GDestroyNotify)call_free);
  g_task_run_in_thread(task, run_call);
}

kcps_tray_reply_t *kcps_tray_call_finish(GAsyncResult *result)
{
  kcps_tray_reply_t *reply = g_task_propagate_pointer(G_TASK(result), NULL);
  if (reply == NULL)
    reply = g_new0(kcps_tray_reply_t, 1);
  return reply;
}

/* --- the push channel ------------------------------------------------------ */

/* Bounds on what kcpsd sends: a line longer than this ends the stream. */
#define EVENT_LINE_MAX 4096

struct kcps_tray_events_s {
  GCancellable *cancellable;
  GSocketConnection *connection;
  GDataInputStream *input;
  kcps_tray_event_cb_t cb;
  gpointer data;
  int port;
  char *request;
  bool status_seen; /* the status line was read */
  bool headers_done;
  bool ended;       /* cb(NULL) was called */
};

static void events_end(kcps_tray_events_t *events)
{
  if (events->ended)
    return;
  events->ended = true;
  events->cb(NULL, events->data);
}

static void read_line_done(GObject *source, GAsyncResult *result, gpointer data);

static void read_next_line(kcps_tray_events_t *events)
{
  g_data_input_stream_read_line_async(events->input, G_PRIORITY_DEFAULT, events->cancellable,
                                      read_line_done, events);
}

static void read_line_done(GObject *source, GAsyncResult *result, gpointer data)
{
  gsize length = 0;
  g_autoptr(GError) error = NULL;
  g_autofree char *line =
    g_data_input_stream_read_line_finish(G_DATA_INPUT_STREAM(source), result, &length, &error);
  if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return; /* freed: events is gone */
  kcps_tray_events_t *events = data;
  if (line == NULL || length > EVENT_LINE_MAX) {
    events_end(events);
    return;
  }
  g_strchomp(line); /* "\r" of the header lines */
  if (!events->status_seen) {
    events->status_seen = true;
    /* "HTTP/1.0 200 OK": anything else (403, 503) is no stream. */
    if (!g_str_has_prefix(line, "HTTP/1.") || strstr(line, " 200") == NULL) {
      g_info("kcpsd's event stream was refused: %s", line);
      events_end(events);
      return;
    }
  } else if (!events->headers_done) {
    if (*line == '\0')
      events->headers_done = true;
  } else if (g_str_has_prefix(line, "event: ")) {
    events->cb(line + strlen("event: "), events->data);
    if (events->ended)
      return;
  }
  read_next_line(events);
}

static void request_written(GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr(GError) error = NULL;
  if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), result, NULL, &error)) {
    if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
      events_end(data);
    return;
  }
  read_next_line(data);
}

static void connected(GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr(GError) error = NULL;
  GSocketConnection *connection =
    g_socket_client_connect_to_host_finish(G_SOCKET_CLIENT(source), result, &error);
  if (connection == NULL) {
    if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
      events_end(data);
    return;
  }
  kcps_tray_events_t *events = data;
  events->connection = connection;
  events->input = g_data_input_stream_new(
    g_io_stream_get_input_stream(G_IO_STREAM(connection)));
  g_data_input_stream_set_newline_type(events->input, G_DATA_STREAM_NEWLINE_TYPE_LF);
  /* HTTP/1.0: the answer is the plain stream until kcpsd closes it, no
   * chunks to take apart. */
  events->request = g_strdup_printf("GET /v1/events HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n"
                                    "Accept: text/event-stream\r\n\r\n", events->port);
  g_output_stream_write_all_async(g_io_stream_get_output_stream(G_IO_STREAM(connection)),
                                  events->request, strlen(events->request), G_PRIORITY_DEFAULT,
                                  events->cancellable, request_written, events);
}

kcps_tray_events_t *kcps_tray_events_new(int port, kcps_tray_event_cb_t cb, gpointer data)
{
  kcps_tray_events_t *events = g_new0(kcps_tray_events_t, 1);
  events->cancellable = g_cancellable_new();
  events->cb = cb;
  events->data = data;
  events->port = port;
  g_autoptr(GSocketClient) client = g_socket_client_new();
  g_socket_client_connect_to_host_async(client, "127.0.0.1", (guint16)port, events->cancellable,
                                        connected, events);
  return events;
}

void kcps_tray_events_free(kcps_tray_events_t *events)
{
  if (events == NULL)
    return;
  /* Pending calls finish with CANCELLED and touch nothing of ours. */
  g_cancellable_cancel(events->cancellable);
  /* The socket closes with the last reference (a pending read holds one
   * until its cancellation is delivered), and kcpsd sees the hang-up. */
  g_clear_object(&events->input);
  g_clear_object(&events->connection);
  g_object_unref(events->cancellable);
  g_free(events->request);
  g_free(events);
}
