/* The usage outbox: durable records, a poster thread with backoff, and the
 * count of pages a quota statement cannot know yet. See usage-outbox.h. */
#define G_LOG_DOMAIN "kcpsd"

#include "client/usage-outbox.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "common/json-util.h"

/* Settled (sent or dropped) records are kept this long after they settled:
 * longer than any statement (24 h) that could need them, and than a month. */
#define KEEP_SETTLED_S (40 * 24 * 3600)
/* Rewrite the file when it holds this many more lines than live records. */
#define COMPACT_SLACK 256
#define MAX_LINE 8192

typedef struct entry_s {
  kcps_usage_record_t rec;
  gint64 due;      /* monotonic us of the next try */
  int delay_ms;    /* the next backoff */
} entry_t;

struct kcps_usage_outbox_s {
  GMutex lock;         /* guards everything below but the thread */
  GCond wake;
  char *path;
  GPtrArray *entries;  /* entry_t*, in order of addition */
  GHashTable *by_key;  /* key -> entry_t* */
  guint lines;         /* lines in the file */
  bool stopping;
  bool kicked;
  GThread *thread;
  kcps_usage_post_fn post;
  void *post_data;
  int first_ms, max_ms;
};

G_DEFINE_QUARK(kcps-usage-error-quark, kcps_usage_error)

static void entry_free(void *data)
{
  entry_t *e = data;
  g_free(e->rec.key);
  g_free(e->rec.user);
  g_free(e->rec.printer);
  g_free(e->rec.job_id);
  g_free(e);
}

static bool settled(const kcps_usage_record_t *rec)
{
  return rec->sent_at != 0 || rec->dropped;
}

/* --- the file ------------------------------------------------------------------- */

static JsonNode *record_node(const kcps_usage_record_t *rec, bool with_state)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "key");
  json_builder_add_string_value(b, rec->key);
  json_builder_set_member_name(b, "uid");
  json_builder_add_int_value(b, rec->uid);
  json_builder_set_member_name(b, "user");
  if (rec->user != NULL)
    json_builder_add_string_value(b, rec->user);
  else
    json_builder_add_null_value(b);
  json_builder_set_member_name(b, "printer");
  json_builder_add_string_value(b, rec->printer);
  json_builder_set_member_name(b, "job_id");
  json_builder_add_string_value(b, rec->job_id);
  json_builder_set_member_name(b, "time");
  json_builder_add_int_value(b, rec->time);
  json_builder_set_member_name(b, "pages");
  json_builder_add_int_value(b, rec->pages);
  json_builder_set_member_name(b, "copies");
  json_builder_add_int_value(b, rec->copies);
  json_builder_set_member_name(b, "color");
  json_builder_add_boolean_value(b, rec->color);
  json_builder_set_member_name(b, "duplex");
  json_builder_add_boolean_value(b, rec->duplex);
  if (with_state) {
    json_builder_set_member_name(b, "sent_at");
    json_builder_add_int_value(b, rec->sent_at);
    json_builder_set_member_name(b, "dropped");
    json_builder_add_boolean_value(b, rec->dropped);
  }
  json_builder_end_object(b);
  return json_builder_get_root(b);
}

static char *line_of(const char *member, JsonNode *value, gint64 at)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, member);
  json_builder_add_value(b, value);
  if (at != 0) {
    json_builder_set_member_name(b, "at");
    json_builder_add_int_value(b, at);
  }
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autofree char *text = kcps_json_to_string(root);
  return g_strconcat(text, "\n", NULL);
}

/* Appends line durably. Caller holds the lock. */
static bool append_locked(kcps_usage_outbox_t *o, const char *line, GError **error)
{
  int fd = g_open(o->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  size_t len = strlen(line);
  bool ok = fd >= 0 && write(fd, line, len) == (ssize_t)len && fsync(fd) == 0;
  int saved = errno;
  if (fd >= 0)
    close(fd);
  if (!ok) {
    g_set_error(error, KCPS_USAGE_ERROR, 0, "cannot write the usage outbox %s: %s", o->path,
                g_strerror(saved));
    return false;
  }
  o->lines++;
  return true;
}

static bool parse_record(JsonObject *obj, kcps_usage_record_t *rec)
{
  gint64 uid = 0, time = 0, pages = 0, copies = 0, sent = 0;
  const char *key = kcps_json_string(obj, "key");
  const char *printer = kcps_json_string(obj, "printer");
  const char *job_id = kcps_json_string(obj, "job_id");
  if (key == NULL || *key == '\0' || printer == NULL || job_id == NULL
      || !kcps_json_int(obj, "uid", &uid) || !kcps_json_int(obj, "time", &time)
      || !kcps_json_int(obj, "pages", &pages) || !kcps_json_int(obj, "copies", &copies)
      || uid < 0 || pages < 1 || pages > G_MAXINT || copies < 1 || copies > G_MAXINT)
    return false;
  if (!kcps_json_int(obj, "sent_at", &sent))
    sent = 0;
  memset(rec, 0, sizeof(*rec));
  rec->key = g_strdup(key);
  rec->uid = (uid_t)uid;
  rec->user = g_strdup(kcps_json_string(obj, "user"));
  rec->printer = g_strdup(printer);
  rec->job_id = g_strdup(job_id);
  rec->time = time;
  rec->pages = (int)pages;
  rec->copies = (int)copies;
  rec->color = json_object_get_boolean_member_with_default(obj, "color", FALSE);
  rec->duplex = json_object_get_boolean_member_with_default(obj, "duplex", FALSE);
  rec->sent_at = sent;
  rec->dropped = json_object_get_boolean_member_with_default(obj, "dropped", FALSE);
  return true;
}

static void insert_locked(kcps_usage_outbox_t *o, const kcps_usage_record_t *rec)
{
  entry_t *e = g_new0(entry_t, 1);
  e->rec = *rec;
  e->rec.key = g_strdup(rec->key);
  e->rec.user = g_strdup(rec->user);
  e->rec.printer = g_strdup(rec->printer);
  e->rec.job_id = g_strdup(rec->job_id);
  e->due = 0;
  e->delay_ms = o->first_ms;
  g_ptr_array_add(o->entries, e);
  g_hash_table_insert(o->by_key, e->rec.key, e);
}

/* Replays one line; unknown or broken lines are skipped. */
static void replay_line(kcps_usage_outbox_t *o, const char *line, gsize len)
{
  g_autoptr(JsonNode) root = kcps_json_parse_object(line, (gssize)len, NULL);
  if (root == NULL)
    return;
  JsonObject *obj = json_node_get_object(root);
  gint64 at = 0;
  if (!kcps_json_int(obj, "at", &at))
    at = 0;
  if (json_object_has_member(obj, "add")
      && JSON_NODE_HOLDS_OBJECT(json_object_get_member(obj, "add"))) {
    kcps_usage_record_t rec;
    if (!parse_record(json_object_get_object_member(obj, "add"), &rec))
      return;
    if (!g_hash_table_contains(o->by_key, rec.key))
      insert_locked(o, &rec);
    g_free(rec.key);
    g_free(rec.user);
    g_free(rec.printer);
    g_free(rec.job_id);
    return;
  }
  const char *sent = kcps_json_string(obj, "sent");
  const char *dropped = kcps_json_string(obj, "dropped");
  entry_t *e = g_hash_table_lookup(o->by_key, sent != NULL ? sent : dropped != NULL ? dropped
                                                                                  : "");
  if (e == NULL)
    return;
  if (sent != NULL)
    e->rec.sent_at = at > 0 ? at : 1;
  else
    e->rec.dropped = true;
}

/* Rewrites the file with the records worth keeping. Caller holds the lock. */
static bool compact_locked(kcps_usage_outbox_t *o, gint64 now, GError **error)
{
  GString *text = g_string_new(NULL);
  g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func(entry_free);
  guint lines = 0;
  for (guint i = 0; i < o->entries->len; i++) {
    entry_t *e = g_ptr_array_index(o->entries, i);
    gint64 since = MAX(e->rec.sent_at, e->rec.time);
    if (settled(&e->rec) && now - since > KEEP_SETTLED_S)
      continue;
    g_autoptr(JsonNode) node = record_node(&e->rec, true);
    g_autofree char *line = line_of("add", g_steal_pointer(&node), 0);
    g_string_append(text, line);
    lines++;
  }
  bool ok = g_file_set_contents_full(o->path, text->str, (gssize)text->len,
                                     G_FILE_SET_CONTENTS_CONSISTENT
                                       | G_FILE_SET_CONTENTS_DURABLE, 0600, error);
  g_string_free(text, TRUE);
  if (!ok)
    return false;
  /* Drop the old ones from memory too. */
  for (guint i = o->entries->len; i-- > 0;) {
    entry_t *e = g_ptr_array_index(o->entries, i);
    gint64 since = MAX(e->rec.sent_at, e->rec.time);
    if (settled(&e->rec) && now - since > KEEP_SETTLED_S) {
      g_hash_table_remove(o->by_key, e->rec.key);
      g_ptr_array_remove_index(o->entries, i);
    }
  }
  o->lines = lines;
  return true;
}

kcps_usage_outbox_t *kcps_usage_outbox_open(const char *path, GError **error)
{
  kcps_usage_outbox_t *o = g_new0(kcps_usage_outbox_t, 1);
  g_mutex_init(&o->lock);
  g_cond_init(&o->wake);
  o->path = g_strdup(path);
  o->entries = g_ptr_array_new_with_free_func(entry_free);
  o->by_key = g_hash_table_new(g_str_hash, g_str_equal);
  o->first_ms = 2000;
  o->max_ms = 60000;

  int fd = g_open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    g_set_error(error, KCPS_USAGE_ERROR, 0, "cannot open the usage outbox %s: %s", path,
                g_strerror(errno));
    kcps_usage_outbox_free(o);
    return NULL;
  }
  if (fchmod(fd, 0600) != 0)
    g_warning("cannot make %s private: %s", path, g_strerror(errno));
  close(fd);
  g_autofree char *text = NULL;
  gsize len = 0;
  if (!g_file_get_contents(path, &text, &len, error)) {
    kcps_usage_outbox_free(o);
    return NULL;
  }
  guint lines = 0;
  for (gsize start = 0; start < len;) {
    const char *nl = memchr(text + start, '\n', len - start);
    /* A torn last line (no newline: a crash mid-append) is ignored. */
    if (nl == NULL)
      break;
    gsize n = (gsize)(nl - (text + start));
    if (n > 0 && n <= MAX_LINE)
      replay_line(o, text + start, n);
    lines++;
    start += n + 1;
  }
  o->lines = lines;
  bool torn = len > 0 && text[len - 1] != '\n';
  g_mutex_lock(&o->lock);
  bool ok = true;
  if (torn || o->lines > o->entries->len + COMPACT_SLACK)
    ok = compact_locked(o, g_get_real_time() / G_USEC_PER_SEC, error);
  g_mutex_unlock(&o->lock);
  if (!ok) {
    kcps_usage_outbox_free(o);
    return NULL;
  }
  return o;
}

void kcps_usage_outbox_free(kcps_usage_outbox_t *outbox)
{
  if (outbox == NULL)
    return;
  if (outbox->thread != NULL) {
    g_mutex_lock(&outbox->lock);
    outbox->stopping = true;
    g_cond_broadcast(&outbox->wake);
    g_mutex_unlock(&outbox->lock);
    g_thread_join(outbox->thread);
  }
  g_hash_table_destroy(outbox->by_key);
  g_ptr_array_free(outbox->entries, TRUE);
  g_free(outbox->path);
  g_mutex_clear(&outbox->lock);
  g_cond_clear(&outbox->wake);
  g_free(outbox);
}

bool kcps_usage_outbox_add(kcps_usage_outbox_t *outbox, const kcps_usage_record_t *rec,
                           GError **error)
{
  kcps_usage_record_t copy = *rec;
  copy.sent_at = 0;
  copy.dropped = false;
  g_autoptr(JsonNode) node = record_node(&copy, false);
  g_autofree char *line = line_of("add", g_steal_pointer(&node), 0);
  g_mutex_lock(&outbox->lock);
  bool ok = true;
  if (!g_hash_table_contains(outbox->by_key, rec->key)) {
    ok = append_locked(outbox, line, error);
    if (ok)
      insert_locked(outbox, &copy);
  }
  /* A new record is due now: the poster may be asleep until another
   * record's retry (up to max_ms), and a plain wake-up would go back to
   * sleep until then. */
  outbox->kicked = true;
  g_cond_broadcast(&outbox->wake);
  g_mutex_unlock(&outbox->lock);
  return ok;
}

/* --- posting ------------------------------------------------------------------- */

/* Settles key as sent or dropped (durably). */
static void settle(kcps_usage_outbox_t *o, const char *key, bool sent)
{
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  g_autofree char *line = line_of(sent ? "sent" : "dropped", json_node_init_string(
                                    json_node_alloc(), key), now);
  g_autoptr(GError) error = NULL;
  g_mutex_lock(&o->lock);
  entry_t *e = g_hash_table_lookup(o->by_key, key);
  if (e != NULL) {
    if (sent)
      e->rec.sent_at = now;
    else
      e->rec.dropped = true;
    /* Should this line be lost (a crash before the fsync), the record is
     * posted again after the restart and the server answers the repeat of
     * its key with 200: it counts once all the same. */
    if (!append_locked(o, line, &error))
      g_warning("%s", error->message);
    if (o->lines > o->entries->len + COMPACT_SLACK && !compact_locked(o, now, &error))
      g_warning("%s", error->message);
  }
  g_mutex_unlock(&o->lock);
}

/* Copies of the pending records (all, or only those due at now). */
static GPtrArray *pending_copies(kcps_usage_outbox_t *o, bool only_due, gint64 now)
{
  GPtrArray *out = g_ptr_array_new_with_free_func(entry_free);
  g_mutex_lock(&o->lock);
  for (guint i = 0; i < o->entries->len; i++) {
    entry_t *e = g_ptr_array_index(o->entries, i);
    if (settled(&e->rec) || (only_due && e->due > now))
      continue;
    entry_t *c = g_new0(entry_t, 1);
    c->rec = e->rec;
    c->rec.key = g_strdup(e->rec.key);
    c->rec.user = g_strdup(e->rec.user);
    c->rec.printer = g_strdup(e->rec.printer);
    c->rec.job_id = g_strdup(e->rec.job_id);
    g_ptr_array_add(out, c);
  }
  g_mutex_unlock(&o->lock);
  return out;
}

/* Posts one record and settles it or schedules its retry. */
static void post_one(kcps_usage_outbox_t *o, kcps_usage_post_fn post, void *data,
                     const kcps_usage_record_t *rec)
{
  kcps_usage_post_t result = post(data, rec);
  if (result == KCPS_USAGE_POST_DONE || result == KCPS_USAGE_POST_DROP) {
    settle(o, rec->key, result == KCPS_USAGE_POST_DONE);
    return;
  }
  g_mutex_lock(&o->lock);
  entry_t *e = g_hash_table_lookup(o->by_key, rec->key);
  if (e != NULL) {
    if (result == KCPS_USAGE_POST_RETRY) {
      e->due = g_get_monotonic_time() + (gint64)e->delay_ms * 1000;
      e->delay_ms = MIN(e->delay_ms * 2, o->max_ms);
    } else {
      /* Waiting for a login: a kick makes it due; meanwhile look again now
       * and then (the user may log in through a path that does not kick). */
      e->due = g_get_monotonic_time() + (gint64)o->max_ms * 1000;
    }
  }
  g_mutex_unlock(&o->lock);
}

guint kcps_usage_outbox_flush(kcps_usage_outbox_t *outbox, kcps_usage_post_fn post,
                              void *data)
{
  g_autoptr(GPtrArray) todo = pending_copies(outbox, false, 0);
  for (guint i = 0; i < todo->len; i++)
    post_one(outbox, post, data, &((entry_t *)g_ptr_array_index(todo, i))->rec);
  return kcps_usage_outbox_pending(outbox);
}

static gpointer poster_main(gpointer data)
{
  kcps_usage_outbox_t *o = data;
  for (;;) {
    gint64 now = g_get_monotonic_time();
    g_autoptr(GPtrArray) due = pending_copies(o, true, now);
    for (guint i = 0; i < due->len; i++) {
      g_mutex_lock(&o->lock);
      bool stop = o->stopping;
      g_mutex_unlock(&o->lock);
      if (stop)
        break;
      post_one(o, o->post, o->post_data, &((entry_t *)g_ptr_array_index(due, i))->rec);
    }
    g_mutex_lock(&o->lock);
    gint64 wake = g_get_monotonic_time() + (gint64)o->max_ms * 1000;
    for (guint i = 0; i < o->entries->len; i++) {
      entry_t *e = g_ptr_array_index(o->entries, i);
      if (!settled(&e->rec))
        wake = MIN(wake, e->due);
    }
    while (!o->stopping && !o->kicked && g_get_monotonic_time() < wake)
      if (!g_cond_wait_until(&o->wake, &o->lock, wake))
        break;
    o->kicked = false;
    bool stop = o->stopping;
    g_mutex_unlock(&o->lock);
    if (stop)
      return NULL;
  }
}

void kcps_usage_outbox_start(kcps_usage_outbox_t *outbox, kcps_usage_post_fn post, void *data,
                             int first_retry_ms, int max_retry_ms)
{
  g_return_if_fail(outbox->thread == NULL);
  g_mutex_lock(&outbox->lock);
  outbox->post = post;
  outbox->post_data = data;
  outbox->first_ms = MAX(first_retry_ms, 1);
  outbox->max_ms = MAX(max_retry_ms, outbox->first_ms);
  for (guint i = 0; i < outbox->entries->len; i++)
    ((entry_t *)g_ptr_array_index(outbox->entries, i))->delay_ms = outbox->first_ms;
  g_mutex_unlock(&outbox->lock);
  outbox->thread = g_thread_new("kcpsd-usage", poster_main, outbox);
}

void kcps_usage_outbox_kick(kcps_usage_outbox_t *outbox)
{
  g_mutex_lock(&outbox->lock);
  for (guint i = 0; i < outbox->entries->len; i++) {
    entry_t *e = g_ptr_array_index(outbox->entries, i);
    e->due = 0;
    e->delay_ms = outbox->first_ms;
  }
  outbox->kicked = true;
  g_cond_broadcast(&outbox->wake);
  g_mutex_unlock(&outbox->lock);
}

guint kcps_usage_outbox_pending(kcps_usage_outbox_t *outbox)
{
  guint n = 0;
  g_mutex_lock(&outbox->lock);
  for (guint i = 0; i < outbox->entries->len; i++)
    if (!settled(&((entry_t *)g_ptr_array_index(outbox->entries, i))->rec))
      n++;
  g_mutex_unlock(&outbox->lock);
  return n;
}

gint64 kcps_usage_outbox_pages_since(kcps_usage_outbox_t *outbox, const char *user, gint64 iat,
                                     gint64 *color_pages)
{
  gint64 pages = 0, color = 0;
  g_mutex_lock(&outbox->lock);
  for (guint i = 0; i < outbox->entries->len; i++) {
    const kcps_usage_record_t *rec = &((entry_t *)g_ptr_array_index(outbox->entries, i))->rec;
    if (rec->dropped || rec->user == NULL || user == NULL
        || g_ascii_strcasecmp(rec->user, user) != 0)
      continue;
    /* A record settled in the very second the statement was signed is
     * taken as known to it (seconds are all a statement tells). */
    if (rec->time > iat || rec->sent_at == 0 || rec->sent_at > iat) {
      gint64 n = (gint64)rec->pages * rec->copies;
      pages += n;
      if (rec->color)
        color += n;
    }
  }
  g_mutex_unlock(&outbox->lock);
  if (color_pages != NULL)
    *color_pages = color;
  return pages;
}

JsonNode *kcps_usage_record_body(const kcps_usage_record_t *rec)
{
  g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(rec->time);
  g_autofree char *time = g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ");
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "idempotency_key");
  json_builder_add_string_value(b, rec->key);
  json_builder_set_member_name(b, "printer");
  json_builder_add_string_value(b, rec->printer);
  json_builder_set_member_name(b, "time");
  json_builder_add_string_value(b, time);
  json_builder_set_member_name(b, "job_type");
  json_builder_add_string_value(b, "print");
  json_builder_set_member_name(b, "pages");
  json_builder_add_int_value(b, rec->pages);
  json_builder_set_member_name(b, "copies");
  json_builder_add_int_value(b, rec->copies);
  json_builder_set_member_name(b, "color");
  json_builder_add_boolean_value(b, rec->color);
  json_builder_set_member_name(b, "duplex");
  json_builder_add_boolean_value(b, rec->duplex);
  json_builder_set_member_name(b, "job_id");
  json_builder_add_string_value(b, rec->job_id);
  json_builder_end_object(b);
  return json_builder_get_root(b);
}
