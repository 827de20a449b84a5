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
