/* The tray's calls to kcpsd's local API (5572, loopback HTTP), run off the
 * main thread; results come back on the thread that asked. */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* An answer from kcpsd. status 0: kcpsd could not be reached. */
typedef struct kcps_tray_reply_s {
  long status;
  JsonNode *body; /* the parsed JSON answer, or NULL */
} kcps_tray_reply_t;

void kcps_tray_reply_free(kcps_tray_reply_t *reply);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(kcps_tray_reply_t, kcps_tray_reply_free)

/* Calls METHOD PATH on 127.0.0.1:port with an optional JSON body (the call
 * takes a reference). Never fails as such: the reply says what happened. */
void kcps_tray_call_async(int port, const char *method, const char *path, JsonNode *body,
                          GCancellable *cancellable, GAsyncReadyCallback callback,
                          gpointer data);
/* The reply of kcps_tray_call_async; caller frees. */
kcps_tray_reply_t *kcps_tray_call_finish(GAsyncResult *result);

/* kcpsd's push channel (GET /v1/events, server-sent events), read on the
 * main loop with GIO's async calls: an idle stream costs no wake-up. cb gets
 * each event's type ("ready" first, then "job", "release", ...) and, once,
 * NULL when the stream ended (kcpsd stopped, refused or was never there);
 * free the subscription then (or any time: no callback after free). */
typedef void (*kcps_tray_event_cb_t)(const char *type, gpointer data);
typedef struct kcps_tray_events_s kcps_tray_events_t;
kcps_tray_events_t *kcps_tray_events_new(int port, kcps_tray_event_cb_t cb, gpointer data);
void kcps_tray_events_free(kcps_tray_events_t *events);

G_END_DECLS
