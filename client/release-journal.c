/* Direct printing: the release journal (STATE_DIR/releases.jsonl), which
 * lets a release that reached the printer, or may have, survive a kcpsd
 * kill or restart: printed once, counted once, never lost. See release.h. */
#define G_LOG_DOMAIN "kcpsd"

#include "client/release.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "common/json-util.h"

#define MAX_LINE 16384
#define MAX_FIELD 2048

struct kcps_release_journal_s {
  GMutex lock; /* one writer at a time */
  char *path;
  bool torn;   /* the file ends in a torn line (not compacted): start a new line */
  GHashTable *open_ids; /* releases whose last record is not final */
};

void kcps_release_record_free(kcps_release_record_t *rec)
{
  if (rec == NULL)
    return;
  g_free(rec->id);
  g_free(rec->job_id);
  g_free(rec->printer);
  g_free(rec->format);
  g_free(rec->state);
  g_free(rec->user);
  g_free(rec);
}

bool kcps_release_state_final(const char *state)
{
  return state == NULL || (strcmp(state, "sending") != 0 && strcmp(state, "printing") != 0);
}

static const char *const known_states[] = {"sending", "printing", "completed", "aborted",
                                           "canceled", "failed"};

static bool bad(GError **error, const char *what)
{
  g_set_error(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_BAD_REQUEST, "%s", what);
  return false;
}

/* A printable string member of at most MAX_FIELD bytes, or NULL. */
static const char *text_member(JsonObject *obj, const char *name)
{
  const char *s = kcps_json_string(obj, name);
  if (s == NULL || *s == '\0' || strlen(s) > MAX_FIELD || !g_utf8_validate(s, -1, NULL))
    return NULL;
  for (const char *c = s; *c != '\0'; c++)
    if ((unsigned char)*c < 0x20)
      return NULL;
  return s;
}

kcps_release_record_t *kcps_release_journal_parse_line(const char *line, size_t len,
                                                       GError **error)
{
  if (len == 0 || len > MAX_LINE) {
    bad(error, len == 0 ? "empty line" : "line too long");
    return NULL;
  }
  if (memchr(line, '\0', len) != NULL) {
    bad(error, "a NUL byte in the line");
    return NULL;
  }
  g_autoptr(GError) local = NULL;
  g_autoptr(JsonNode) root = kcps_json_parse_object(line, (gssize)len, &local);
  if (root == NULL) {
    g_set_error(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_BAD_REQUEST, "not a JSON object: %s",
                local != NULL ? local->message : "?");
    return NULL;
  }
  JsonObject *obj = json_node_get_object(root);
  const char *id = text_member(obj, "id");
  const char *job = text_member(obj, "job");
  const char *printer = text_member(obj, "printer");
  const char *state = text_member(obj, "state");
  const char *format = kcps_json_string(obj, "format");
  const char *user = text_member(obj, "user");
  JsonNode *user_node = json_object_get_member(obj, "user");
  if (user == NULL && user_node != NULL && !JSON_NODE_HOLDS_NULL(user_node)) {
    bad(error, "user not a name or null");
    return NULL;
  }
  gint64 uid = -1, copies = 0, pages = 0, created = 0, pjid = 0;
  bool duplex = false, create_job = false;
  if (id == NULL || strlen(id) < 8) {
    bad(error, "no release id");
    return NULL;
  }
  if (job == NULL || printer == NULL) {
    bad(error, job == NULL ? "no job" : "no printer");
    return NULL;
  }
  g_autofree char *key = NULL;
  if (!kcps_release_check_uri(printer, &key, NULL)) {
    bad(error, "not an ipp:// or ipps:// printer");
    return NULL;
  }
  bool state_ok = false;
  for (size_t i = 0; state != NULL && i < G_N_ELEMENTS(known_states); i++)
    state_ok = state_ok || strcmp(state, known_states[i]) == 0;
  if (!state_ok) {
    bad(error, "no known state");
    return NULL;
  }
  if (!kcps_json_int(obj, "uid", &uid) || uid < 0 || uid > G_MAXUINT32 - 1) {
    bad(error, "no uid");
    return NULL;
  }
  if (!kcps_json_int(obj, "copies", &copies) || copies < 1 || copies > 999) {
    bad(error, "copies not 1 to 999");
    return NULL;
  }
  if (!kcps_json_int(obj, "pages", &pages) || pages < 0 || pages > G_MAXINT / 1000) {
    bad(error, "no pages");
    return NULL;
  }
  if (!kcps_json_int(obj, "created", &created) || created < 0) {
    bad(error, "no created time");
    return NULL;
  }
  if (!kcps_json_int(obj, "printer_job_id", &pjid) || pjid < 0 || pjid > G_MAXINT32) {
    bad(error, "no printer_job_id");
    return NULL;
  }
  if (!kcps_json_bool(obj, "duplex", &duplex) || !kcps_json_bool(obj, "create_job", &create_job)) {
    bad(error, "no duplex or create_job");
    return NULL;
  }
  kcps_color_t color = KCPS_COLOR_AUTO;
  JsonNode *c = json_object_get_member(obj, "color");
  if (c != NULL && JSON_NODE_HOLDS_VALUE(c) && json_node_get_value_type(c) == G_TYPE_BOOLEAN)
    color = json_node_get_boolean(c) ? KCPS_COLOR_COLOR : KCPS_COLOR_MONO;
  else if (c != NULL && !JSON_NODE_HOLDS_NULL(c)) {
    bad(error, "color not true, false or null");
    return NULL;
  }
  if (format != NULL && strcmp(format, "application/pdf") != 0
      && strcmp(format, "image/pwg-raster") != 0 && strcmp(format, "image/urf") != 0) {
    bad(error, "unknown format");
    return NULL;
  }
  if (strcmp(state, "printing") == 0 && pjid == 0) {
    bad(error, "printing without a printer_job_id");
    return NULL;
  }
  kcps_release_record_t *rec = g_new0(kcps_release_record_t, 1);
  rec->id = g_strdup(id);
  rec->uid = (uid_t)uid;
  rec->job_id = g_strdup(job);
  rec->printer = g_strdup(printer);
  rec->copies = (int)copies;
  rec->color = color;
  rec->duplex = duplex;
  rec->pages = (int)pages;
  rec->format = g_strdup(format);
  rec->create_job = create_job;
  rec->created = created;
  rec->state = g_strdup(state);
  rec->printer_job_id = (int)pjid;
  rec->user = g_strdup(user);
  return rec;
}

char *kcps_release_journal_line(const kcps_release_record_t *rec)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "id");
  json_builder_add_string_value(b, rec->id);
  json_builder_set_member_name(b, "state");
  json_builder_add_string_value(b, rec->state);
  json_builder_set_member_name(b, "uid");
  json_builder_add_int_value(b, rec->uid);
  json_builder_set_member_name(b, "job");
  json_builder_add_string_value(b, rec->job_id);
  json_builder_set_member_name(b, "printer");
  json_builder_add_string_value(b, rec->printer);
  json_builder_set_member_name(b, "copies");
  json_builder_add_int_value(b, rec->copies);
  json_builder_set_member_name(b, "color");
  if (rec->color == KCPS_COLOR_AUTO)
    json_builder_add_null_value(b);
  else
    json_builder_add_boolean_value(b, rec->color == KCPS_COLOR_COLOR);
  json_builder_set_member_name(b, "duplex");
  json_builder_add_boolean_value(b, rec->duplex);
  json_builder_set_member_name(b, "pages");
  json_builder_add_int_value(b, rec->pages);
  json_builder_set_member_name(b, "format");
  if (rec->format != NULL)
    json_builder_add_string_value(b, rec->format);
  else
    json_builder_add_null_value(b);
  json_builder_set_member_name(b, "create_job");
  json_builder_add_boolean_value(b, rec->create_job);
  json_builder_set_member_name(b, "created");
  json_builder_add_int_value(b, rec->created);
  json_builder_set_member_name(b, "printer_job_id");
  json_builder_add_int_value(b, rec->printer_job_id);
  json_builder_set_member_name(b, "user");
  if (rec->user != NULL)
    json_builder_add_string_value(b, rec->user);
  else
    json_builder_add_null_value(b);
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autofree char *text = kcps_json_to_string(root);
  return g_strconcat(text, "\n", NULL);
}

static bool write_all(int fd, const char *data, size_t len)
{
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    data += n;
    len -= (size_t)n;
  }
  return true;
}

/* Rewrites path with text durably: a 0600 file beside, fsynced, renamed
 * over path, the folder fsynced. */
static bool rewrite(const char *path, const char *text, GError **error)
{
  g_autofree char *tmp = g_strconcat(path, ".tmp", NULL);
  g_unlink(tmp);
  int fd = g_open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  bool ok = fd >= 0 && write_all(fd, text, strlen(text)) && fsync(fd) == 0;
  int saved = errno;
  if (fd >= 0 && close(fd) != 0 && ok) {
    ok = false;
    saved = errno;
  }
  if (ok && g_rename(tmp, path) != 0) {
    ok = false;
    saved = errno;
  }
  if (!ok) {
    g_unlink(tmp);
    g_set_error(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_IO, "cannot rewrite %s: %s", path,
                g_strerror(saved));
    return false;
  }
  g_autofree char *dir = g_path_get_dirname(path);
  int dfd = g_open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (dfd >= 0) {
    if (fsync(dfd) != 0)
      g_warning("cannot fsync %s: %s", dir, g_strerror(errno));
    close(dfd);
  }
  return true;
}

kcps_release_journal_t *kcps_release_journal_open(const char *path, GPtrArray **unfinished)
{
  kcps_release_journal_t *j = g_new0(kcps_release_journal_t, 1);
  g_mutex_init(&j->lock);
  j->path = g_strdup(path);
  j->open_ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)kcps_release_record_free);
  *unfinished = out;

  g_autofree char *text = NULL;
  gsize len = 0;
  g_autoptr(GError) error = NULL;
  if (!g_file_get_contents(path, &text, &len, &error)) {
    if (!g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
      g_warning("cannot read the release journal: %s; unfinished releases are not resumed",
                error->message);
    return j;
  }
  /* The newest record of each id, in the order ids first appeared. */
  GHashTable *latest = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                             (GDestroyNotify)kcps_release_record_free);
  GPtrArray *order = g_ptr_array_new_with_free_func(g_free);
  guint lineno = 0, skipped = 0;
  size_t pos = 0;
  bool torn = false;
  while (pos < len) {
    lineno++;
    const char *start = text + pos;
    const char *nl = memchr(start, '\n', len - pos);
    if (nl == NULL) {
      g_warning("release journal %s: the last line (%u) is torn (kcpsd stopped while writing "
                "it); ignored", path, lineno);
      skipped++;
      torn = true;
      break;
    }
    size_t n = (size_t)(nl - start);
    pos += n + 1;
    if (n == 0)
      continue;
    g_autoptr(GError) perr = NULL;
    kcps_release_record_t *rec = kcps_release_journal_parse_line(start, n, &perr);
    if (rec == NULL) {
      g_warning("release journal %s: line %u skipped: %s", path, lineno, perr->message);
      skipped++;
      continue;
    }
    if (!g_hash_table_contains(latest, rec->id))
      g_ptr_array_add(order, g_strdup(rec->id));
    g_hash_table_replace(latest, rec->id, rec);
  }
  GString *keep = g_string_new(NULL);
  for (guint i = 0; i < order->len; i++) {
    kcps_release_record_t *rec = g_hash_table_lookup(latest, order->pdata[i]);
    if (kcps_release_state_final(rec->state))
      continue;
    g_autofree char *line = kcps_release_journal_line(rec);
    g_string_append(keep, line);
    g_hash_table_steal(latest, rec->id);
    g_ptr_array_add(out, rec);
  }
  g_hash_table_destroy(latest);
  g_ptr_array_free(order, TRUE);
  g_autoptr(GError) werr = NULL;
  if (!rewrite(path, keep->str, &werr)) {
    g_warning("release journal not compacted: %s", werr->message);
    j->torn = torn;
  }
  g_string_free(keep, TRUE);
  for (guint i = 0; i < out->len; i++)
    g_hash_table_add(j->open_ids, g_strdup(((kcps_release_record_t *)out->pdata[i])->id));
  if (out->len > 0 || skipped > 0)
    g_message("release journal: %u unfinished release(s), %u line(s) skipped", out->len,
              skipped);
  return j;
}

bool kcps_release_journal_write(kcps_release_journal_t *j, const kcps_release_record_t *rec,
                                GError **error)
{
  g_autofree char *line = kcps_release_journal_line(rec);
  g_mutex_lock(&j->lock);
  if (j->torn) {
    /* Not glued to the torn line, which would spoil this one too. */
    char *fresh = g_strconcat("\n", line, NULL);
    g_free(line);
    line = fresh;
  }
  int fd = g_open(j->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  bool ok = fd >= 0 && write_all(fd, line, strlen(line)) && fdatasync(fd) == 0;
  int saved = errno;
  if (ok && kcps_release_state_final(rec->state)) {
    g_hash_table_remove(j->open_ids, rec->id);
    /* Every release has ended: nothing in the file is needed any more, so
     * it does not grow while kcpsd runs. */
    if (g_hash_table_size(j->open_ids) == 0 && (ftruncate(fd, 0) != 0 || fdatasync(fd) != 0))
      g_warning("cannot empty the release journal %s: %s", j->path, g_strerror(errno));
  } else if (ok) {
    g_hash_table_add(j->open_ids, g_strdup(rec->id));
  }
  if (fd >= 0)
    close(fd);
  if (ok)
    j->torn = false;
  g_mutex_unlock(&j->lock);
  if (!ok)
    g_set_error(error, KCPS_RELEASE_ERROR, KCPS_RELEASE_ERROR_IO,
                "cannot write the release journal %s: %s", j->path, g_strerror(saved));
  return ok;
}

void kcps_release_journal_free(kcps_release_journal_t *j)
{
  if (j == NULL)
    return;
  g_mutex_clear(&j->lock);
  g_hash_table_destroy(j->open_ids);
  g_free(j->path);
  g_free(j);
}

bool kcps_release_job_matches(const char *release_id, const char *user, const char *job_name,
                              const char *job_user)
{
  if (release_id == NULL || strlen(release_id) < 8 || job_name == NULL)
    return false;
  char tag[32];
  g_snprintf(tag, sizeof(tag), "[kcps:%.8s]", release_id);
  if (strstr(job_name, tag) == NULL)
    return false;
  return job_user == NULL || *job_user == '\0' || user == NULL || strcmp(job_user, user) == 0;
}

char *kcps_release_job_name(const char *document_name, const char *release_id)
{
  const char *name = document_name != NULL && *document_name != '\0' ? document_name
                                                                        : "KCPS job";
  char tag[32];
  g_snprintf(tag, sizeof(tag), " [kcps:%.8s]", release_id);
  /* name(max 255) = shortened name + tag */
  size_t room = 255 - strlen(tag);
  g_autofree char *valid = g_utf8_make_valid(name, -1);
  if (strlen(valid) > room) {
    const char *end = g_utf8_find_prev_char(valid, valid + room + 1);
    while (end != NULL && (size_t)(end - valid) > room)
      end = g_utf8_find_prev_char(valid, end);
    valid[end != NULL ? (size_t)(end - valid) : 0] = '\0';
  }
  return g_strconcat(valid, tag, NULL);
}
