/* The usage outbox (issue 5): every completed direct print's usage record,
 * kept durably in the state folder until the server took it (POST
 * /api/v1/usage answered 200 or 201), then kept a while longer, marked
 * sent, so that an offline quota check can count what this kcpsd printed
 * since the server signed its last quota statement.
 *
 * The file is a 0600 JSON-lines log, appended and fsynced: {"add":{record}}
 * when a print completes, {"sent":KEY,"at":T} or {"dropped":KEY,"at":T}
 * when the server answered. Opening replays it; a torn last line (a crash
 * mid-append) is ignored. It is rewritten (durably, beside and renamed)
 * without the old settled records when it grows. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <sys/types.h>

G_BEGIN_DECLS

typedef struct kcps_usage_outbox_s kcps_usage_outbox_t;

/* One usage record (docs/api.md 1.9). Strings owned by whoever built it. */
typedef struct kcps_usage_record_s {
  char *key;      /* idempotency key: the release id */
  uid_t uid;      /* the OS account that printed */
  char *user;     /* its server account at the time, or NULL (not logged in) */
  char *printer;  /* printer URI */
  char *job_id;   /* the job's server id, or the client job id */
  gint64 time;    /* unix seconds of the print */
  int pages;      /* pages of the document */
  int copies;
  bool color;
  bool duplex;
  /* Filled by the outbox. */
  gint64 sent_at; /* 0 while pending */
  bool dropped;   /* the server refused it for good */
} kcps_usage_record_t;

/* What posting one record came to. */
typedef enum {
  KCPS_USAGE_POST_DONE,   /* 200/201: taken (a repeat of a key is a 200) */
  KCPS_USAGE_POST_DROP,   /* 409 or another 4xx: refused for good (warning logged) */
  KCPS_USAGE_POST_RETRY,  /* network or 5xx: again later, with backoff */
  KCPS_USAGE_POST_WAIT    /* no session for its user: again after a login (kick) */
} kcps_usage_post_t;

/* Posts rec; called on the outbox's own thread (or flush's caller). */
typedef kcps_usage_post_t (*kcps_usage_post_fn)(void *data, const kcps_usage_record_t *rec);

#define KCPS_USAGE_ERROR (kcps_usage_error_quark())
GQuark kcps_usage_error_quark(void);

/* Opens (or creates, 0600) the outbox at path and replays it. */
kcps_usage_outbox_t *kcps_usage_outbox_open(const char *path, GError **error);
/* Stops the poster thread (a post in flight ends by its timeout) and frees.
 * NULL is a no-op. */
void kcps_usage_outbox_free(kcps_usage_outbox_t *outbox);

/* Appends rec durably (fsync) before returning true; a key that is there
 * already is not added twice. Kicks the poster. */
bool kcps_usage_outbox_add(kcps_usage_outbox_t *outbox, const kcps_usage_record_t *rec,
                           GError **error);

/* Starts the poster thread: it posts pending records, retries failures with
 * a doubling delay (first_retry_ms up to max_retry_ms), and sleeps until a
 * kick or the next retry. */
void kcps_usage_outbox_start(kcps_usage_outbox_t *outbox, kcps_usage_post_fn post, void *data,
                             int first_retry_ms, int max_retry_ms);
/* Wakes the poster and makes every pending record due now (after a login,
 * or when the server is known to be back). */
void kcps_usage_outbox_kick(kcps_usage_outbox_t *outbox);

/* Posts every pending record once, now, on the caller's thread (tests and
 * the poster itself). Returns how many are still pending. */
guint kcps_usage_outbox_flush(kcps_usage_outbox_t *outbox, kcps_usage_post_fn post,
                              void *data);

/* Records still pending (not sent, not dropped). */
guint kcps_usage_outbox_pending(kcps_usage_outbox_t *outbox);
/* Pages (pages x copies) of user's records (user compared without case)
 * that a statement signed at iat cannot know: printed or sent to the
 * server after the second iat, or not sent yet. Dropped ones do not count.
 * *color_pages gets the colour ones of them. */
gint64 kcps_usage_outbox_pages_since(kcps_usage_outbox_t *outbox, const char *user, gint64 iat,
                                     gint64 *color_pages);

/* The record as the body of POST /api/v1/usage (json_node_unref). */
JsonNode *kcps_usage_record_body(const kcps_usage_record_t *rec);

G_END_DECLS
