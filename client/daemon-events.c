/* Change events for the local API's push channel (GET /v1/events,
 * server-sent events): whoever changes something an OS user sees (a job,
 * an upload's progress, a release, the login, the settings, the quota)
 * calls kcps__events_emit(); subscribers of that user are woken.
 *
 * Each subscriber has a small queue of (type, id) pairs; an event equal to
 * one still queued is dropped (an event says what changed, the client
 * re-reads the resource), and a full queue collapses into one "resync"
 * (re-read everything). A stream's reader sleeps in poll() on the
 * subscriber's eventfd and on the connection's socket, so a quiet stream
 * costs no wake-ups, a peer that goes away ends it at once, and kcpsd's
 * shutdown ends every stream before the ports close. */
#define G_LOG_DOMAIN "kcpsd"

#include "client/daemon-private.h"

#include <errno.h>
#include <gio/gio.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct event_s {
  char *type;
  char *id; /* NULL: none */
} event_t;

struct kcps__events_s {
  GMutex lock;        /* guards everything below and every subscriber's queue */
  GHashTable *by_uid; /* GUINT_TO_POINTER(uid) -> GPtrArray of kcps__events_sub_t* */
  guint total;
  bool stopping;
  guint queue_cap;
  guint per_user_cap;
  guint total_cap;
};

struct kcps__events_sub_s {
  kcps__events_t *events;
  uid_t uid;
  int sock;       /* the connection's socket, watched for hang-up; -1: none */
  int wake;       /* eventfd: written on each event and on stop */
  GQueue queue;   /* of event_t*, guarded by events->lock */
  bool ready;     /* the first "ready" event was handed out */
  GString *out;   /* formatted bytes not yet handed to the connection */
  gsize out_pos;
};

static void event_free(event_t *event)
{
  g_free(event->type);
  g_free(event->id);
  g_free(event);
}

kcps__events_t *kcps__events_new(guint queue_cap, guint per_user_cap, guint total_cap)
{
  kcps__events_t *events = g_new0(kcps__events_t, 1);
  g_mutex_init(&events->lock);
  events->by_uid = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
                                         (GDestroyNotify)g_ptr_array_unref);
  events->queue_cap = queue_cap > 0 ? queue_cap : KCPS_EVENTS_QUEUE_CAP;
  events->per_user_cap = per_user_cap > 0 ? per_user_cap : KCPS_EVENTS_PER_USER_CAP;
  events->total_cap = total_cap > 0 ? total_cap : KCPS_EVENTS_TOTAL_CAP;
  return events;
}

static void wake(kcps__events_sub_t *sub)
{
  guint64 one = 1;
  /* A full counter (never in practice) still leaves the reader woken. */
  ssize_t n = write(sub->wake, &one, sizeof one);
  (void)n;
}

void kcps__events_stop(kcps__events_t *events)
{
  if (events == NULL)
    return;
  g_mutex_lock(&events->lock);
  events->stopping = true;
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, events->by_uid);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    GPtrArray *subs = value;
    for (guint i = 0; i < subs->len; i++)
      wake(g_ptr_array_index(subs, i));
  }
  g_mutex_unlock(&events->lock);
}

void kcps__events_free(kcps__events_t *events)
{
  if (events == NULL)
    return;
  /* The ports are closed by now, so every stream has ended and
   * unsubscribed; a leftover would be a bug, not something to free. */
  g_warn_if_fail(events->total == 0);
  g_hash_table_destroy(events->by_uid);
  g_mutex_clear(&events->lock);
  g_free(events);
}

/* Queues (type, id) for sub, coalescing; true when the queue changed. */
static bool push_locked(kcps__events_t *events, kcps__events_sub_t *sub, const char *type,
                        const char *id)
{
  for (GList *l = sub->queue.head; l != NULL; l = l->next) {
    const event_t *queued = l->data;
    if (strcmp(queued->type, "resync") == 0)
      return false; /* everything is re-read anyway */
    if (strcmp(queued->type, type) == 0 && g_strcmp0(queued->id, id) == 0)
      return false;
  }
  if (sub->queue.length >= events->queue_cap) {
    g_queue_clear_full(&sub->queue, (GDestroyNotify)event_free);
    type = "resync";
    id = NULL;
  }
  event_t *event = g_new0(event_t, 1);
  event->type = g_strdup(type);
  event->id = g_strdup(id);
  g_queue_push_tail(&sub->queue, event);
  return true;
}

void kcps__events_emit(kcps_daemon_t *daemon, uid_t uid, const char *type, const char *id)
{
  if (daemon == NULL || type == NULL)
    return;
  /* The quota shown is re-read from the server after anything that may
   * have changed it (daemon-local.c). */
  if (strcmp(type, "quota") == 0)
    kcps__local_quota_stale(daemon, uid);
  kcps__events_t *events = daemon->events;
  if (events == NULL)
    return;
  g_mutex_lock(&events->lock);
  GPtrArray *subs = g_hash_table_lookup(events->by_uid, GUINT_TO_POINTER(uid));
  for (guint i = 0; subs != NULL && i < subs->len; i++) {
    kcps__events_sub_t *sub = g_ptr_array_index(subs, i);
    if (push_locked(events, sub, type, id))
      wake(sub);
  }
  g_mutex_unlock(&events->lock);
}

void kcps__events_emit_all(kcps_daemon_t *daemon, const char *type, const char *id)
{
  kcps__events_t *events = daemon != NULL ? daemon->events : NULL;
  if (events == NULL || type == NULL)
    return;
  g_mutex_lock(&events->lock);
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, events->by_uid);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    GPtrArray *subs = value;
    for (guint i = 0; i < subs->len; i++) {
      kcps__events_sub_t *sub = g_ptr_array_index(subs, i);
      if (push_locked(events, sub, type, id))
        wake(sub);
    }
  }
  g_mutex_unlock(&events->lock);
}

kcps__events_sub_t *kcps__events_subscribe(kcps__events_t *events, uid_t uid, int sock,
                                           GError **error)
{
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) {
    g_set_error(error, KCPS_DAEMON_ERROR, KCPS_DAEMON_ERROR_IO, "eventfd: %s",
                g_strerror(errno));
    return NULL;
  }
  g_mutex_lock(&events->lock);
  GPtrArray *subs = g_hash_table_lookup(events->by_uid, GUINT_TO_POINTER(uid));
  const char *refusal = NULL;
  guint cap = 0;
  if (events->stopping) {
    refusal = "kcpsd is stopping";
  } else if (subs != NULL && subs->len >= events->per_user_cap) {
    refusal = "too many event streams for this account";
    cap = events->per_user_cap;
  } else if (events->total >= events->total_cap) {
    refusal = "too many event streams";
    cap = events->total_cap;
  }
  if (refusal != NULL) {
    g_mutex_unlock(&events->lock);
    close(fd);
    if (cap > 0)
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_BUSY, "%s (at most %u)", refusal, cap);
    else
      g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_CLOSED, refusal);
    return NULL;
  }
  kcps__events_sub_t *sub = g_new0(kcps__events_sub_t, 1);
  sub->events = events;
  sub->uid = uid;
  sub->sock = sock;
  sub->wake = fd;
  g_queue_init(&sub->queue);
  sub->out = g_string_new(NULL);
  if (subs == NULL) {
    subs = g_ptr_array_new();
    g_hash_table_insert(events->by_uid, GUINT_TO_POINTER(uid), subs);
  }
  g_ptr_array_add(subs, sub);
  events->total++;
  g_mutex_unlock(&events->lock);
  return sub;
}

void kcps__events_unsubscribe(kcps__events_sub_t *sub)
{
  if (sub == NULL)
    return;
  kcps__events_t *events = sub->events;
  g_mutex_lock(&events->lock);
  GPtrArray *subs = g_hash_table_lookup(events->by_uid, GUINT_TO_POINTER(sub->uid));
  if (subs != NULL && g_ptr_array_remove_fast(subs, sub)) {
    events->total--;
    if (subs->len == 0)
      g_hash_table_remove(events->by_uid, GUINT_TO_POINTER(sub->uid));
  }
  g_queue_clear_full(&sub->queue, (GDestroyNotify)event_free);
  g_mutex_unlock(&events->lock);
  close(sub->wake);
  g_string_free(sub->out, TRUE);
  g_free(sub);
}

guint kcps__events_count(kcps__events_t *events, uid_t uid)
{
  g_mutex_lock(&events->lock);
  GPtrArray *subs = g_hash_table_lookup(events->by_uid, GUINT_TO_POINTER(uid));
  guint n = subs != NULL ? subs->len : 0;
  g_mutex_unlock(&events->lock);
  return n;
}

/* "event: T\ndata: {"type":"T","id":"I"}\n\n" onto out. */
static void format_event(GString *out, const char *type, const char *id)
{
  g_autoptr(JsonBuilder) builder = json_builder_new();
  json_builder_begin_object(builder);
  json_builder_set_member_name(builder, "type");
  json_builder_add_string_value(builder, type);
  if (id != NULL) {
    json_builder_set_member_name(builder, "id");
    json_builder_add_string_value(builder, id);
  }
  json_builder_end_object(builder);
  g_autoptr(JsonNode) node = json_builder_get_root(builder);
  g_autofree char *data = json_to_string(node, FALSE);
  g_string_append_printf(out, "event: %s\ndata: %s\n\n", type, data);
}

/* Moves what is queued into sub->out; false when nothing was queued and
 * kcpsd is not stopping (*stop says whether it is). */
static bool take_queued(kcps__events_sub_t *sub, bool *stop)
{
  kcps__events_t *events = sub->events;
  g_mutex_lock(&events->lock);
  *stop = events->stopping;
  bool any = false;
  event_t *event;
  while ((event = g_queue_pop_head(&sub->queue)) != NULL) {
    format_event(sub->out, event->type, event->id);
    event_free(event);
    any = true;
  }
  g_mutex_unlock(&events->lock);
  return any;
}

char *kcps__events_next(kcps__events_sub_t *sub)
{
  bool stop = false;
  if (!sub->ready) {
    sub->ready = true;
    format_event(sub->out, "ready", NULL);
  }
  take_queued(sub, &stop);
  if (sub->out->len == sub->out_pos)
    return NULL;
  char *text = g_strdup(sub->out->str + sub->out_pos);
  g_string_truncate(sub->out, 0);
  sub->out_pos = 0;
  return text;
}

/* Whether the peer hung up (or sent something, which an event stream's
 * client never does: the stream ends either way). */
static bool peer_gone(int sock, short revents)
{
  if (revents & (POLLHUP | POLLERR | POLLNVAL | POLLRDHUP))
    return true;
  if (revents & POLLIN) {
    char c;
    ssize_t n = recv(sock, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
  }
  return false;
}

gssize kcps__events_read(void *data, char *buf, size_t max)
{
  kcps__events_sub_t *sub = data;
  for (;;) {
    /* What was formatted and not yet handed over goes first. */
    if (sub->out_pos < sub->out->len) {
      size_t n = MIN(max, sub->out->len - sub->out_pos);
      memcpy(buf, sub->out->str + sub->out_pos, n);
      sub->out_pos += n;
      if (sub->out_pos == sub->out->len) {
        g_string_truncate(sub->out, 0);
        sub->out_pos = 0;
      }
      return (gssize)n;
    }
    if (!sub->ready) {
      /* The first event tells the client it is subscribed, so it re-reads
       * once and misses nothing that happened before. */
      sub->ready = true;
      format_event(sub->out, "ready", NULL);
      continue;
    }
    bool stop = false;
    if (take_queued(sub, &stop))
      continue;
    if (stop)
      return 0;
    struct pollfd fds[2] = {
      {.fd = sub->wake, .events = POLLIN},
      {.fd = sub->sock, .events = POLLIN | POLLRDHUP},
    };
    int r = poll(fds, sub->sock >= 0 ? 2 : 1, -1);
    if (r < 0 && errno != EINTR)
      return -1;
    if (r > 0 && (fds[0].revents & POLLIN)) {
      guint64 count;
      ssize_t n = read(sub->wake, &count, sizeof count);
      (void)n;
    }
    if (r > 0 && sub->sock >= 0 && fds[1].revents != 0 && peer_gone(sub->sock, fds[1].revents))
      return 0;
  }
}
