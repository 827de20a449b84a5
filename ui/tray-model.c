/* The tray's view model: parsing kcpsd's answers and formatting what the
 * windows and the menu show. No GTK here (tests/test-ui-model.c). */
#include "ui/tray-model.h"

#include <glib/gi18n-lib.h>
#include <errno.h>
#include <string.h>

#include "common/json-util.h"

#define NO_VALUE "\u2014" /* an em dash for "not known" */

static GQuark model_error_quark(void)
{
  return g_quark_from_static_string("kcps-tray-model-error");
}

/* A member that is a string or null (or absent): *out gets a copy or NULL.
 * False when it has another type. */
static bool optional_string(JsonObject *obj, const char *name, char **out)
{
  *out = NULL;
  JsonNode *member = json_object_get_member(obj, name);
  if (member == NULL || JSON_NODE_HOLDS_NULL(member))
    return true;
  const char *value = kcps_json_string(obj, name);
  if (value == NULL)
    return false;
  *out = g_strdup(value);
  return true;
}

bool kcps_tray_status_parse(JsonNode *node, kcps_tray_status_t *status, GError **error)
{
  memset(status, 0, sizeof(*status));
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node)) {
    g_set_error_literal(error, model_error_quark(), 1, "status: not a JSON object");
    return false;
  }
  JsonObject *obj = json_node_get_object(node);
  bool logged_in = false;
  if (!kcps_json_bool(obj, "logged_in", &logged_in)) {
    g_set_error_literal(error, model_error_quark(), 1,
                        "status: logged_in is missing or not a boolean");
    return false;
  }
  static const char *const names[] = {"user", "email", "server", "spool_mode"};
  char **fields[] = {&status->user, &status->email, &status->server, &status->spool_mode};
  for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
    if (!optional_string(obj, names[i], fields[i])) {
      g_set_error(error, model_error_quark(), 1, "status: %s is not a string", names[i]);
      kcps_tray_status_clear(status);
      return false;
    }
  }
  /* The quota: null or absent when kcpsd does not know it. */
  JsonNode *quota = json_object_get_member(obj, "quota");
  if (quota != NULL && !JSON_NODE_HOLDS_NULL(quota)) {
    JsonObject *q = JSON_NODE_HOLDS_OBJECT(quota) ? json_node_get_object(quota) : NULL;
    JsonNode *left = q != NULL ? json_object_get_member(q, "remaining_pages") : NULL;
    if (left == NULL) {
      g_set_error_literal(error, model_error_quark(), 1,
                          "status: quota is not an object with remaining_pages");
      kcps_tray_status_clear(status);
      return false;
    }
    if (JSON_NODE_HOLDS_NULL(left)) {
      status->quota_unlimited = true;
    } else if (!kcps_json_int(q, "remaining_pages", &status->quota_left) ||
               !kcps_json_int(q, "quota_pages", &status->quota_pages) ||
               status->quota_left < 0 || status->quota_pages < 0) {
      g_set_error_literal(error, model_error_quark(), 1,
                          "status: quota's remaining_pages or quota_pages is mistyped");
      kcps_tray_status_clear(status);
      return false;
    }
    status->quota_known = true;
  }
  status->reachable = true;
  status->logged_in = logged_in;
  return true;
}

void kcps_tray_status_clear(kcps_tray_status_t *status)
{
  if (status == NULL)
    return;
  g_free(status->user);
  g_free(status->email);
  g_free(status->server);
  g_free(status->spool_mode);
  memset(status, 0, sizeof(*status));
}

void kcps_tray_job_info_free(kcps_tray_job_info_t *job)
{
  if (job == NULL)
    return;
  g_free(job->id);
  g_free(job->name);
  g_free(job->state);
  g_free(job->server_id);
  g_free(job->spool);
  g_free(job->release_state);
  g_free(job->release_id);
  g_free(job);
}

/* A member that is an integer or null (or absent: 0). */
static bool optional_time(JsonObject *obj, const char *name, gint64 *out)
{
  *out = 0;
  JsonNode *member = json_object_get_member(obj, name);
  if (member == NULL || JSON_NODE_HOLDS_NULL(member))
    return true;
  return kcps_json_int(obj, name, out) && *out >= 0;
}

/* One job object; NULL with an error naming job index and member. */
static kcps_tray_job_info_t *parse_job(JsonNode *node, guint index, GError **error)
{
  if (!JSON_NODE_HOLDS_OBJECT(node)) {
    g_set_error(error, model_error_quark(), 1, "jobs[%u]: not an object", index);
    return NULL;
  }
  JsonObject *obj = json_node_get_object(node);
  kcps_tray_job_info_t *job = g_new0(kcps_tray_job_info_t, 1);
  const char *bad = NULL;
  const char *id = kcps_json_string(obj, "id");
  const char *state = kcps_json_string(obj, "state");
  if (id == NULL || *id == '\0')
    bad = "id";
  else if (state == NULL || *state == '\0')
    bad = "state";
  else if (!optional_string(obj, "name", &job->name))
    bad = "name";
  else if (!optional_string(obj, "server_id", &job->server_id))
    bad = "server_id";
  else if (!kcps_json_int(obj, "pages", &job->pages))
    bad = "pages";
  else if (!kcps_json_int(obj, "size", &job->size))
    bad = "size";
  else if (!kcps_json_int(obj, "created", &job->created))
    bad = "created";
  else if (!optional_string(obj, "spool", &job->spool))
    bad = "spool";
  else if (!optional_time(obj, "expires", &job->expires))
    bad = "expires";
  JsonNode *release = bad == NULL ? json_object_get_member(obj, "release") : NULL;
  if (release != NULL && !JSON_NODE_HOLDS_NULL(release)) {
    if (!JSON_NODE_HOLDS_OBJECT(release) ||
        !optional_string(json_node_get_object(release), "state", &job->release_state) ||
        !optional_string(json_node_get_object(release), "id", &job->release_id))
      bad = "release";
  }
  /* "upload" {done,total}: read when it has them, never required. */
  job->upload_done = job->upload_total = -1;
  JsonNode *upload = bad == NULL ? json_object_get_member(obj, "upload") : NULL;
  if (upload != NULL && JSON_NODE_HOLDS_OBJECT(upload)) {
    gint64 done = -1, total = -1;
    JsonObject *u = json_node_get_object(upload);
    if (kcps_json_int(u, "done", &done) && kcps_json_int(u, "total", &total) && done >= 0 &&
        total >= 0) {
      job->upload_done = done;
      job->upload_total = total;
    }
  }
  if (bad != NULL) {
    g_set_error(error, model_error_quark(), 1, "jobs[%u]: %s is missing or mistyped", index,
                bad);
    kcps_tray_job_info_free(job);
    return NULL;
  }
  job->id = g_strdup(id);
  job->state = g_strdup(state);
  return job;
}

GPtrArray *kcps_tray_jobs_parse(JsonNode *node, GError **error)
{
  JsonNode *list = NULL;
  if (node != NULL && JSON_NODE_HOLDS_OBJECT(node))
    list = json_object_get_member(json_node_get_object(node), "jobs");
  if (list == NULL || !JSON_NODE_HOLDS_ARRAY(list)) {
    g_set_error_literal(error, model_error_quark(), 1, "jobs: no \"jobs\" array");
    return NULL;
  }
  JsonArray *array = json_node_get_array(list);
  guint n = json_array_get_length(array);
  GPtrArray *jobs = g_ptr_array_new_full(n, (GDestroyNotify)kcps_tray_job_info_free);
  for (guint i = 0; i < n; i++) {
    kcps_tray_job_info_t *job = parse_job(json_array_get_element(array, i), i, error);
    if (job == NULL) {
      g_ptr_array_unref(jobs);
      return NULL;
    }
    g_ptr_array_add(jobs, job);
  }
  return jobs;
}

bool kcps_tray_job_is_waiting(const char *state)
{
  return g_strcmp0(state, "spooled") == 0 || g_strcmp0(state, "registered") == 0 ||
         g_strcmp0(state, "pulled") == 0;
}

char *kcps_tray_format_size(gint64 bytes)
{
  if (bytes < 0)
    return g_strdup(NO_VALUE);
  if (bytes < 1000)
    return g_strdup_printf(g_dngettext(GETTEXT_PACKAGE, "%d byte", "%d bytes", (gulong)bytes),
                           (int)bytes);
  return g_format_size((guint64)bytes);
}

char *kcps_tray_format_pages(gint64 pages)
{
  if (pages < 0)
    return g_strdup(NO_VALUE);
  gulong n = pages > G_MAXINT ? G_MAXINT : (gulong)pages;
  return g_strdup_printf(g_dngettext(GETTEXT_PACKAGE, "%lu page", "%lu pages", n), n);
}

char *kcps_tray_format_time(gint64 unix_seconds, GDateTime *now)
{
  if (unix_seconds <= 0 || now == NULL)
    return g_strdup(NO_VALUE);
  g_autoptr(GDateTime) utc = g_date_time_new_from_unix_utc(unix_seconds);
  if (utc == NULL)
    return g_strdup(NO_VALUE);
  /* now's offset: tests pass a fixed-offset "now", the app the local one. */
  g_autoptr(GTimeZone) zone = g_time_zone_new_offset((gint32)(g_date_time_get_utc_offset(now) /
                                                              G_TIME_SPAN_SECOND));
  g_autoptr(GDateTime) when = g_date_time_to_timezone(utc, zone);
  if (when == NULL)
    return g_strdup(NO_VALUE);

  int y = 0, m = 0, d = 0, ny = 0, nm = 0, nd = 0;
  g_date_time_get_ymd(when, &y, &m, &d);
  g_date_time_get_ymd(now, &ny, &nm, &nd);
  g_autoptr(GDateTime) yesterday = g_date_time_add_days(now, -1);
  int yy = 0, ym = 0, yd = 0;
  g_date_time_get_ymd(yesterday, &yy, &ym, &yd);

  g_autofree char *clock = g_date_time_format(when, "%H:%M");
  if (y == ny && m == nm && d == nd)
    /* Translators: a job's time today, e.g. "Today, 10:42". */
    return g_strdup_printf(_("Today, %s"), clock);
  if (y == yy && m == ym && d == yd)
    /* Translators: a job's time yesterday, e.g. "Yesterday, 18:05". */
    return g_strdup_printf(_("Yesterday, %s"), clock);
  if (y == ny)
    /* Translators: a job's day and time this year, strftime format: "28 Nov, 09:12". */
    return g_date_time_format(when, _("%-d %b, %H:%M"));
  /* Translators: a job's date in an earlier year, strftime format: "28 Nov 2025". */
  return g_date_time_format(when, _("%-d %b %Y"));
}

const char *kcps_tray_state_label(const char *state)
{
  static const struct {
    const char *state;
    const char *label;
  } labels[] = {
    {"spooled", N_("Waiting to register")},
    {"registered", N_("Ready to print")},
    {"pulled", N_("Printing")},
    {"printed", N_("Printed")},
    {"deleted", N_("Deleted")},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(labels); i++)
    if (g_strcmp0(state, labels[i].state) == 0)
      return _(labels[i].label);
  return state != NULL ? state : NO_VALUE;
}

/* text as compared by the search: NFKC (full-width "ＡＢＣ" is "abc", "ﬁ"
 * is "fi"; accents count), then case-folded. NULL for NULL or invalid UTF-8. */
static char *search_fold(const char *text)
{
  if (text == NULL || !g_utf8_validate(text, -1, NULL))
    return NULL;
  g_autofree char *normal = g_utf8_normalize(text, -1, G_NORMALIZE_ALL_COMPOSE);
  return normal != NULL ? g_utf8_casefold(normal, -1) : NULL;
}

char **kcps_tray_search_words(const char *text)
{
  g_autofree char *folded = search_fold(text);
  if (folded == NULL)
    return NULL;
  GPtrArray *words = g_ptr_array_new();
  const char *p = folded;
  while (*p != '\0') {
    while (*p != '\0' && g_unichar_isspace(g_utf8_get_char(p)))
      p = g_utf8_next_char(p);
    const char *start = p;
    while (*p != '\0' && !g_unichar_isspace(g_utf8_get_char(p)))
      p = g_utf8_next_char(p);
    if (p > start)
      g_ptr_array_add(words, g_strndup(start, (gsize)(p - start)));
  }
  if (words->len == 0) {
    g_ptr_array_free(words, TRUE);
    return NULL;
  }
  g_ptr_array_add(words, NULL);
  return (char **)g_ptr_array_free(words, FALSE);
}

bool kcps_tray_job_matches(char *const *words, const char *name, const char *state_label)
{
  if (words == NULL)
    return true;
  g_autofree char *n = search_fold(name);
  g_autofree char *s = search_fold(state_label);
  for (char *const *w = words; *w != NULL; w++) {
    if ((n == NULL || strstr(n, *w) == NULL) && (s == NULL || strstr(s, *w) == NULL))
      return false;
  }
  return true;
}

char *kcps_tray_job_summary(const kcps_tray_job_info_t *job, GDateTime *now)
{
  g_autofree char *pages = kcps_tray_format_pages(job->pages);
  g_autofree char *size = kcps_tray_format_size(job->size);
  g_autofree char *when = kcps_tray_format_time(job->created, now);
  const char *name = job->name != NULL && *job->name != '\0' ? job->name : _("Untitled");
  /* Translators: a job in one line: name, pages, size, time, state. */
  return g_strdup_printf(_("%s, %s, %s, %s, %s"), name, pages, size, when,
                         kcps_tray_state_label(job->state));
}

kcps_tray_icon_state_t kcps_tray_icon_state(const kcps_tray_status_t *status, guint waiting)
{
  return kcps_tray_icon_state_jobs(status, waiting, 0);
}

kcps_tray_icon_state_t kcps_tray_icon_state_jobs(const kcps_tray_status_t *status, guint waiting,
                                                 guint uploading)
{
  if (status == NULL || !status->reachable)
    return KCPS_TRAY_ICON_ERROR;
  if (!status->logged_in)
    return KCPS_TRAY_ICON_LOGGED_OUT;
  if (uploading > 0)
    return KCPS_TRAY_ICON_UPLOADING;
  return waiting > 0 ? KCPS_TRAY_ICON_JOBS_WAITING : KCPS_TRAY_ICON_IDLE;
}

bool kcps_tray_job_uploading(const char *state, gint64 upload_done, gint64 upload_total)
{
  if (g_strcmp0(state, "spooled") != 0 && g_strcmp0(state, "uploading") != 0)
    return false;
  return upload_done >= 0 && upload_total > 0 && upload_done < upload_total;
}

const char *kcps_tray_icon_name(kcps_tray_icon_state_t state)
{
  switch (state) {
  case KCPS_TRAY_ICON_LOGGED_OUT: return "kcps-tray-logged-out";
  case KCPS_TRAY_ICON_IDLE: return "kcps-tray-idle";
  case KCPS_TRAY_ICON_JOBS_WAITING: return "kcps-tray-jobs-waiting";
  case KCPS_TRAY_ICON_ERROR: return "kcps-tray-error";
  case KCPS_TRAY_ICON_UPLOADING: return "kcps-tray-uploading";
  }
  return "kcps-tray-error";
}

const char *kcps_tray_icon_sni_status(kcps_tray_icon_state_t state)
{
  return state == KCPS_TRAY_ICON_ERROR ? "NeedsAttention" : "Active";
}

const char *kcps_tray_icon_state_id(kcps_tray_icon_state_t state)
{
  switch (state) {
  case KCPS_TRAY_ICON_LOGGED_OUT: return "logged-out";
  case KCPS_TRAY_ICON_IDLE: return "idle";
  case KCPS_TRAY_ICON_JOBS_WAITING: return "jobs-waiting";
  case KCPS_TRAY_ICON_ERROR: return "error";
  case KCPS_TRAY_ICON_UPLOADING: return "uploading";
  }
  return "error";
}

char *kcps_tray_who_line(const kcps_tray_status_t *status)
{
  if (status == NULL || !status->reachable)
    return g_strdup(_("KCPS service not running"));
  if (!status->logged_in)
    return g_strdup(_("Not logged in"));
  const char *who = status->email != NULL ? status->email : _("unknown account");
  if (g_strcmp0(status->spool_mode, "local") == 0)
    /* Translators: the account, then the spool mode. */
    return g_strdup_printf(_("%s \u00b7 local spool"), who);
  if (g_strcmp0(status->spool_mode, "cloud") == 0)
    return g_strdup_printf(_("%s \u00b7 cloud spool"), who);
  /* Translators: who is logged in. */
  return g_strdup_printf(_("Logged in as %s"), who);
}

char *kcps_tray_tooltip(const kcps_tray_status_t *status, guint waiting)
{
  return kcps_tray_tooltip_jobs(status, waiting, 0);
}

char *kcps_tray_tooltip_jobs(const kcps_tray_status_t *status, guint waiting, guint uploading)
{
  g_autofree char *who = kcps_tray_who_line(status);
  if ((waiting == 0 && uploading == 0) || status == NULL || !status->reachable)
    return g_steal_pointer(&who);
  GString *text = g_string_new(who);
  if (waiting > 0) {
    g_string_append_c(text, '\n');
    g_string_append_printf(
      text, g_dngettext(GETTEXT_PACKAGE, "%u job waiting", "%u jobs waiting", waiting), waiting);
  }
  if (uploading > 0) {
    g_string_append_c(text, '\n');
    g_string_append_printf(text,
                           g_dngettext(GETTEXT_PACKAGE, "%u job uploading to the cloud",
                                       "%u jobs uploading to the cloud", uploading),
                           uploading);
  }
  return g_string_free(text, FALSE);
}

const char *kcps_tray_login_message(long http_status)
{
  if (http_status == 0)
    return _("The KCPS service is not running on this computer. Start it and try again.");
  if (http_status == 400)
    return _("Enter your email address and password.");
  if (http_status == 401 || http_status == 403)
    return _("The email address or password is not right, or the account cannot log in now. "
             "Check them and try again later.");
  if (http_status == 502 || http_status == 503 || http_status == 504)
    return _("The KCPS server cannot be reached. Try again later.");
  return _("Logging in failed. Try again later.");
}

char *kcps_tray_locked_message(gint64 retry_at_unix, gint64 now_unix)
{
  g_autoptr(GDateTime) when =
    retry_at_unix > 0 ? g_date_time_new_from_unix_local(retry_at_unix) : NULL;
  g_autoptr(GDateTime) now = g_date_time_new_from_unix_local(now_unix);
  if (when == NULL || now == NULL)
    return g_strdup(kcps_tray_login_message(401));
  int y = 0, m = 0, d = 0, ny = 0, nm = 0, nd = 0;
  g_date_time_get_ymd(when, &y, &m, &d);
  g_date_time_get_ymd(now, &ny, &nm, &nd);
  bool today = y == ny && m == nm && d == nd;
  /* Translators: the day and time a locked account may log in again when
   * that is not today, strftime format: "29 Nov, 00:20". */
  g_autofree char *time = g_date_time_format(when, today ? "%H:%M" : _("%-d %b, %H:%M"));
  if (time == NULL)
    return g_strdup(kcps_tray_login_message(401));
  /* Translators: %s is a time today ("15:42") or a day and time
   * ("29 Nov, 00:20"). */
  return g_strdup_printf(_("Too many failed attempts. Try again after %s."), time);
}

/* --- notifications ------------------------------------------------------- */

void kcps_tray_notice_free(kcps_tray_notice_t *notice)
{
  if (notice == NULL)
    return;
  g_free(notice->id);
  g_free(notice->title);
  g_free(notice->body);
  g_free(notice);
}

static void add_notice(GPtrArray *notices, kcps_tray_notice_kind_t kind, const char *id,
                       char *title, char *body)
{
  kcps_tray_notice_t *notice = g_new0(kcps_tray_notice_t, 1);
  notice->kind = kind;
  notice->id = g_strdup(id);
  notice->title = title;
  notice->body = body;
  g_ptr_array_add(notices, notice);
}

static const kcps_tray_job_info_t *find_job(GPtrArray *jobs, const char *id)
{
  for (guint i = 0; i < jobs->len; i++) {
    const kcps_tray_job_info_t *job = g_ptr_array_index(jobs, i);
    if (g_strcmp0(job->id, id) == 0)
      return job;
  }
  return NULL;
}

static bool is_failure(const char *state)
{
  return g_strcmp0(state, "failed") == 0 || g_strcmp0(state, "aborted") == 0 ||
         g_strcmp0(state, "canceled") == 0;
}

/* How long before its expiry a job is warned about: a day, or a quarter of
 * its time in the spool when that is shorter (with kcpsd's default retention
 * of a day, 6 hours before), so a job is not "about to expire" the moment it
 * arrives. */
static gint64 expiry_warning(const kcps_tray_job_info_t *job)
{
  if (job->created > 0 && job->expires > job->created)
    return MIN(KCPS_TRAY_EXPIRY_WARNING, (job->expires - job->created) / 4);
  return KCPS_TRAY_EXPIRY_WARNING;
}

GPtrArray *kcps_tray_notices(GPtrArray *before, GPtrArray *after, GHashTable *warned,
                             GDateTime *now)
{
  GPtrArray *notices = g_ptr_array_new_with_free_func((GDestroyNotify)kcps_tray_notice_free);
  if (after == NULL)
    return notices;
  gint64 now_s = now != NULL ? g_date_time_to_unix(now) : 0;
  const kcps_tray_job_info_t *first_new = NULL;
  guint new_jobs = 0;
  for (guint i = 0; i < after->len; i++) {
    const kcps_tray_job_info_t *job = g_ptr_array_index(after, i);
    const char *name = job->name != NULL && *job->name != '\0' ? job->name : _("Untitled");
    /* Expiry is the spool's clock, not a change: warn once a job. */
    if (job->expires > 0 && kcps_tray_job_is_waiting(job->state) && now != NULL &&
        job->expires - now_s <= expiry_warning(job) && warned != NULL &&
        !g_hash_table_contains(warned, job->id)) {
      g_hash_table_add(warned, g_strdup(job->id));
      g_autofree char *id = g_strconcat("expiring-", job->id, NULL);
      g_autofree char *when = kcps_tray_format_time(job->expires, now);
      /* Translators: a job's name, then when it is deleted ("Today, 18:00"). */
      add_notice(notices, KCPS_TRAY_NOTICE_EXPIRING, id, g_strdup(_("Print job about to expire")),
                 g_strdup_printf(_("\u201c%s\u201d will be deleted if it is not printed (deletion: %s)."),
                                 name, when));
    }
    if (before == NULL)
      continue;
    const kcps_tray_job_info_t *old = find_job(before, job->id);
    if (old == NULL) {
      if (kcps_tray_job_is_waiting(job->state)) {
        if (first_new == NULL)
          first_new = job;
        new_jobs++;
      }
      continue;
    }
    /* A release that ended badly: the job itself stays held. */
    if (is_failure(job->release_state) && g_strcmp0(old->release_state, job->release_state) != 0) {
      g_autofree char *fid = g_strconcat("failed-", job->id, NULL);
      add_notice(notices, KCPS_TRAY_NOTICE_FAILED, fid, g_strdup(_("Printing failed")),
                 g_strdup_printf(_("\u201c%s\u201d could not be printed."), name));
    }
    if (g_strcmp0(old->state, job->state) == 0)
      continue;
    g_autofree char *id = NULL;
    if (g_strcmp0(job->state, "printed") == 0) {
      id = g_strconcat("printed-", job->id, NULL);
      /* Translators: %s is a job's name. */
      add_notice(notices, KCPS_TRAY_NOTICE_PRINTED, id, g_strdup(_("Printed")),
                 g_strdup_printf(_("\u201c%s\u201d was printed."), name));
    } else if (g_strcmp0(job->state, "uploaded") == 0) {
      id = g_strconcat("uploaded-", job->id, NULL);
      /* Translators: %s is a job's name. */
      add_notice(notices, KCPS_TRAY_NOTICE_UPLOADED, id, g_strdup(_("Uploaded")),
                 g_strdup_printf(_("\u201c%s\u201d is in the cloud, ready to print at any "
                                   "printer."), name));
    } else if (is_failure(job->state)) {
      id = g_strconcat("failed-", job->id, NULL);
      /* Translators: %s is a job's name. */
      add_notice(notices, KCPS_TRAY_NOTICE_FAILED, id, g_strdup(_("Printing failed")),
                 g_strdup_printf(_("\u201c%s\u201d could not be printed."), name));
    }
  }
  if (new_jobs == 1) {
    const char *name =
      first_new->name != NULL && *first_new->name != '\0' ? first_new->name : _("Untitled");
    /* Translators: %s is a job's name. */
    add_notice(notices, KCPS_TRAY_NOTICE_SPOOLED, "spooled", g_strdup(_("Print job received")),
               g_strdup_printf(_("\u201c%s\u201d is waiting to be printed."), name));
  } else if (new_jobs > 1) {
    add_notice(notices, KCPS_TRAY_NOTICE_SPOOLED, "spooled", g_strdup(_("Print jobs received")),
               g_strdup_printf(g_dngettext(GETTEXT_PACKAGE, "%u job is waiting to be printed.",
                                           "%u jobs are waiting to be printed.", new_jobs),
                               new_jobs));
  }
  return notices;
}

char *kcps_tray_quota_line(const kcps_tray_status_t *status)
{
  if (status == NULL || !status->reachable || !status->logged_in || !status->quota_known)
    return NULL;
  if (status->quota_unlimited)
    return g_strdup(_("No page limit this month"));
  unsigned long left = (unsigned long)status->quota_left;
  return g_strdup_printf(g_dngettext(GETTEXT_PACKAGE, "%lu page left this month",
                                     "%lu pages left this month", left),
                         left);
}

bool kcps_tray_quota_low(const kcps_tray_status_t *status)
{
  if (status == NULL || !status->reachable || !status->logged_in || !status->quota_known ||
      status->quota_unlimited)
    return false;
  return status->quota_left <= KCPS_TRAY_QUOTA_LOW_PAGES ||
         status->quota_left * 10 <= status->quota_pages;
}

kcps_tray_notice_t *kcps_tray_quota_notice(const kcps_tray_status_t *status)
{
  if (!kcps_tray_quota_low(status))
    return NULL;
  kcps_tray_notice_t *notice = g_new0(kcps_tray_notice_t, 1);
  notice->kind = KCPS_TRAY_NOTICE_QUOTA_LOW;
  notice->id = g_strdup("quota-low");
  notice->title = g_strdup(_("Few pages left"));
  notice->body = kcps_tray_quota_line(status);
  return notice;
}

/* --- the jobs window: previews, releases, progress --------------------------- */

double kcps_tray_progress_fraction(gint64 done, gint64 total)
{
  if (total <= 0 || done < 0)
    return -1;
  if (done >= total)
    return 1;
  return (double)done / (double)total;
}

char *kcps_tray_upload_progress(gint64 done, gint64 total)
{
  double fraction = kcps_tray_progress_fraction(done, total);
  if (fraction < 0 || done >= total)
    return NULL;
  g_autofree char *done_text = kcps_tray_format_size(done);
  g_autofree char *total_text = kcps_tray_format_size(total);
  int percent = (int)(fraction * 100);
  /* Translators: an upload's progress: bytes sent, bytes in all, percent
   * (e.g. "Uploading: 1.2 MB of 3.4 MB (35 %)"). */
  return g_strdup_printf(_("Uploading: %s of %s (%d %%)"), done_text, total_text, percent);
}

static const struct {
  const char *state;
  const char *label;
  double fraction;
  bool running;
} release_states[] = {
  {"pending", N_("Waiting to print…"), 0.1, true},
  {"retrying", N_("Printer busy, trying again…"), 0.1, true},
  {"sending", N_("Sending to the printer…"), 0.4, true},
  {"printing", N_("Printing…"), 0.7, true},
  {"completed", N_("Printed"), 1.0, false},
  {"aborted", N_("The printer stopped the job"), 1.0, false},
  {"canceled", N_("Printing was canceled"), 1.0, false},
  {"failed", N_("Printing failed"), 1.0, false},
};

const char *kcps_tray_release_label(const char *state)
{
  if (state == NULL)
    return NULL;
  for (size_t i = 0; i < G_N_ELEMENTS(release_states); i++)
    if (strcmp(state, release_states[i].state) == 0)
      return _(release_states[i].label);
  return state;
}

bool kcps_tray_release_running(const char *state)
{
  for (size_t i = 0; state != NULL && i < G_N_ELEMENTS(release_states); i++)
    if (strcmp(state, release_states[i].state) == 0)
      return release_states[i].running;
  return false;
}

double kcps_tray_release_fraction(const char *state)
{
  for (size_t i = 0; state != NULL && i < G_N_ELEMENTS(release_states); i++)
    if (strcmp(state, release_states[i].state) == 0)
      return release_states[i].fraction;
  return -1;
}

bool kcps_tray_job_releasable(const kcps_tray_job_info_t *job)
{
  if (job == NULL || kcps_tray_release_running(job->release_state))
    return false;
  return g_strcmp0(job->state, "spooled") == 0 || g_strcmp0(job->state, "registered") == 0 ||
         g_strcmp0(job->state, "pulled") == 0;
}

void kcps_tray_printer_free(kcps_tray_printer_t *printer)
{
  if (printer == NULL)
    return;
  g_free(printer->name);
  g_free(printer->uri);
  g_free(printer);
}

GPtrArray *kcps_tray_printers_parse(JsonNode *node, GError **error)
{
  JsonNode *list = NULL;
  if (node != NULL && JSON_NODE_HOLDS_OBJECT(node))
    list = json_object_get_member(json_node_get_object(node), "printers");
  if (list == NULL || !JSON_NODE_HOLDS_ARRAY(list)) {
    g_set_error_literal(error, model_error_quark(), 1, "printers: no \"printers\" array");
    return NULL;
  }
  JsonArray *array = json_node_get_array(list);
  guint n = json_array_get_length(array);
  GPtrArray *printers = g_ptr_array_new_full(n, (GDestroyNotify)kcps_tray_printer_free);
  for (guint i = 0; i < n; i++) {
    JsonNode *item = json_array_get_element(array, i);
    const char *uri = JSON_NODE_HOLDS_OBJECT(item)
                        ? kcps_json_string(json_node_get_object(item), "uri") : NULL;
    if (!kcps_tray_printer_uri_ok(uri)) {
      g_set_error(error, model_error_quark(), 1, "printers[%u]: uri is missing or mistyped", i);
      g_ptr_array_unref(printers);
      return NULL;
    }
    const char *name = kcps_json_string(json_node_get_object(item), "name");
    kcps_tray_printer_t *printer = g_new0(kcps_tray_printer_t, 1);
    printer->uri = g_strdup(uri);
    printer->name = g_strdup(name != NULL && *name != '\0' ? name : uri);
    g_ptr_array_add(printers, printer);
  }
  return printers;
}

/* The object member name of obj, or NULL. */
static JsonObject *member_object(JsonObject *obj, const char *name)
{
  JsonNode *member = obj != NULL ? json_object_get_member(obj, name) : NULL;
  return member != NULL && JSON_NODE_HOLDS_OBJECT(member) ? json_node_get_object(member) : NULL;
}

bool kcps_tray_caps_parse(JsonNode *node, kcps_tray_caps_t *caps, GError **error)
{
  memset(caps, 0, sizeof(*caps));
  JsonObject *printer = NULL, *c = NULL, *copies = NULL;
  if (node != NULL && JSON_NODE_HOLDS_OBJECT(node))
    printer = member_object(json_node_get_object(node), "printer");
  if (printer != NULL)
    c = member_object(printer, "capabilities");
  if (c == NULL) {
    g_set_error_literal(error, model_error_quark(), 1, "printer: no \"capabilities\" object");
    return false;
  }
  JsonNode *color = json_object_get_member(c, "color");
  JsonNode *duplex = json_object_get_member(c, "duplex");
  copies = member_object(c, "copies");
  const char *bad = NULL;
  if (color == NULL || json_node_get_value_type(color) != G_TYPE_BOOLEAN)
    bad = "color";
  else if (duplex == NULL || json_node_get_value_type(duplex) != G_TYPE_BOOLEAN)
    bad = "duplex";
  else if (copies == NULL || !kcps_json_int(copies, "min", &caps->copies_min) ||
           !kcps_json_int(copies, "max", &caps->copies_max) || caps->copies_min < 1 ||
           caps->copies_max < caps->copies_min)
    bad = "copies";
  if (bad != NULL) {
    g_set_error(error, model_error_quark(), 1, "capabilities: %s is missing or mistyped", bad);
    memset(caps, 0, sizeof(*caps));
    return false;
  }
  caps->color = json_node_get_boolean(color);
  caps->duplex = json_node_get_boolean(duplex);
  return true;
}

void kcps_tray_release_controls(const kcps_tray_caps_t *caps,
                                kcps_tray_release_controls_t *controls)
{
  memset(controls, 0, sizeof(*controls));
  controls->copies_min = 1;
  controls->copies_max = KCPS_TRAY_COPIES_MAX;
  if (caps == NULL)
    return;
  controls->show_color = caps->color;
  controls->show_duplex = caps->duplex;
  gint64 min = CLAMP(caps->copies_min, 1, KCPS_TRAY_COPIES_MAX);
  gint64 max = CLAMP(caps->copies_max, min, KCPS_TRAY_COPIES_MAX);
  controls->copies_min = (int)min;
  controls->copies_max = (int)max;
}

bool kcps_tray_printer_uri_ok(const char *text)
{
  if (text == NULL || strlen(text) > 1024)
    return false;
  const char *host = NULL;
  if (g_str_has_prefix(text, "ipp://"))
    host = text + strlen("ipp://");
  else if (g_str_has_prefix(text, "ipps://"))
    host = text + strlen("ipps://");
  if (host == NULL || *host == '\0' || *host == '/' || *host == ':')
    return false;
  for (const char *p = text; *p != '\0'; p++)
    if ((unsigned char)*p <= ' ' || *p == 0x7f)
      return false;
  return true;
}

JsonNode *kcps_tray_release_body(const char *printer, int copies, int color, bool duplex)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "printer");
  json_builder_add_string_value(b, printer);
  json_builder_set_member_name(b, "copies");
  json_builder_add_int_value(b, CLAMP(copies, 1, KCPS_TRAY_COPIES_MAX));
  if (color >= 0) {
    json_builder_set_member_name(b, "color");
    json_builder_add_boolean_value(b, color > 0);
  }
  json_builder_set_member_name(b, "duplex");
  json_builder_add_boolean_value(b, duplex);
  json_builder_end_object(b);
  return json_builder_get_root(b);
}

bool kcps_tray_release_parse(JsonNode *node, char **id, char **state, char **message)
{
  *id = *state = *message = NULL;
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node))
    return false;
  JsonObject *obj = json_node_get_object(node);
  const char *i = kcps_json_string(obj, "id"), *s = kcps_json_string(obj, "state");
  if (i == NULL || *i == '\0' || s == NULL || *s == '\0')
    return false;
  *id = g_strdup(i);
  *state = g_strdup(s);
  *message = g_strdup(kcps_json_string(obj, "message"));
  return true;
}

/* --- settings ------------------------------------------------------------- */

static bool spool_mode_ok(const char *mode)
{
  return mode == NULL || strcmp(mode, "local") == 0 || strcmp(mode, "cloud") == 0;
}

bool kcps_tray_settings_parse(JsonNode *node, kcps_tray_settings_t *settings, GError **error)
{
  memset(settings, 0, sizeof(*settings));
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node)) {
    g_set_error(error, model_error_quark(), 1, "settings: not an object");
    return false;
  }
  JsonObject *obj = json_node_get_object(node);
  const char *bad = NULL;
  if (!optional_string(obj, "spool_mode", &settings->spool_mode) ||
      !spool_mode_ok(settings->spool_mode))
    bad = "spool_mode";
  else if (!optional_string(obj, "organization_spool_mode",
                            &settings->organization_spool_mode) ||
           !spool_mode_ok(settings->organization_spool_mode))
    bad = "organization_spool_mode";
  else if ((settings->effective_spool_mode =
              g_strdup(kcps_json_string(obj, "effective_spool_mode"))) == NULL ||
           !spool_mode_ok(settings->effective_spool_mode))
    bad = "effective_spool_mode";
  if (bad != NULL) {
    g_set_error(error, model_error_quark(), 1, "settings: %s is missing or mistyped", bad);
    kcps_tray_settings_clear(settings);
    return false;
  }
  return true;
}

void kcps_tray_settings_clear(kcps_tray_settings_t *settings)
{
  g_clear_pointer(&settings->spool_mode, g_free);
  g_clear_pointer(&settings->effective_spool_mode, g_free);
  g_clear_pointer(&settings->organization_spool_mode, g_free);
}

kcps_tray_spool_choice_t kcps_tray_spool_choice(const kcps_tray_settings_t *settings)
{
  const char *mode = settings != NULL ? settings->spool_mode : NULL;
  if (g_strcmp0(mode, "local") == 0)
    return KCPS_TRAY_SPOOL_LOCAL;
  if (g_strcmp0(mode, "cloud") == 0)
    return KCPS_TRAY_SPOOL_CLOUD;
  return KCPS_TRAY_SPOOL_ORGANIZATION;
}

/* A spool mode's name in a sentence. */
static const char *spool_mode_word(const char *mode)
{
  if (g_strcmp0(mode, "local") == 0)
    return _("on this computer");
  if (g_strcmp0(mode, "cloud") == 0)
    return _("in the cloud");
  return NULL;
}

char *kcps_tray_spool_choice_label(kcps_tray_spool_choice_t choice,
                                   const kcps_tray_settings_t *settings)
{
  switch (choice) {
  case KCPS_TRAY_SPOOL_LOCAL: return g_strdup(_("On this computer (local)"));
  case KCPS_TRAY_SPOOL_CLOUD: return g_strdup(_("In the cloud"));
  case KCPS_TRAY_SPOOL_ORGANIZATION: break;
  }
  const char *org = NULL;
  if (settings != NULL)
    org = spool_mode_word(settings->organization_spool_mode != NULL
                            ? settings->organization_spool_mode
                            : (settings->spool_mode == NULL ? settings->effective_spool_mode
                                                            : NULL));
  if (org == NULL)
    return g_strdup(_("Organization default"));
  /* Translators: the spool mode choice that follows the organization; %s is
   * "on this computer" or "in the cloud". */
  return g_strdup_printf(_("Organization default (%s)"), org);
}

JsonNode *kcps_tray_settings_body(kcps_tray_spool_choice_t choice)
{
  g_autoptr(JsonBuilder) builder = json_builder_new();
  json_builder_begin_object(builder);
  json_builder_set_member_name(builder, "spool_mode");
  if (choice == KCPS_TRAY_SPOOL_LOCAL)
    json_builder_add_string_value(builder, "local");
  else if (choice == KCPS_TRAY_SPOOL_CLOUD)
    json_builder_add_string_value(builder, "cloud");
  else
    json_builder_add_null_value(builder);
  json_builder_end_object(builder);
  return json_builder_get_root(builder);
}

const char *kcps_tray_settings_message(long http_status)
{
  if (http_status == 0)
    return _("The KCPS service is not running on this computer. Start it and try again.");
  if (http_status == 409)
    return _("Jobs cannot be kept in the cloud: this computer is not connected to a KCPS "
             "server.");
  return _("The spool mode could not be changed. Try again later.");
}

char *kcps_tray_ini_path(void)
{
  return g_build_filename(g_get_user_config_dir(), "kcps", "tray.ini", NULL);
}

char *kcps_tray_ini_get(const char *key)
{
  g_autofree char *path = kcps_tray_ini_path();
  g_autoptr(GKeyFile) file = g_key_file_new();
  if (!g_key_file_load_from_file(file, path, G_KEY_FILE_NONE, NULL))
    return NULL;
  return g_key_file_get_string(file, "tray", key, NULL);
}

bool kcps_tray_ini_set(const char *key, const char *value, GError **error)
{
  g_autofree char *path = kcps_tray_ini_path();
  g_autofree char *dir = g_path_get_dirname(path);
  g_autoptr(GKeyFile) file = g_key_file_new();
  /* Keep the other keys (the notifications switch, the idle time, ...). */
  (void)g_key_file_load_from_file(file, path, G_KEY_FILE_KEEP_COMMENTS, NULL);
  if (value != NULL)
    g_key_file_set_string(file, "tray", key, value);
  else
    (void)g_key_file_remove_key(file, "tray", key, NULL);
  gsize length = 0;
  g_autofree char *text = g_key_file_to_data(file, &length, NULL);
  if (g_mkdir_with_parents(dir, 0700) != 0) {
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "cannot make %s", dir);
    return false;
  }
  return g_file_set_contents_full(path, text, (gssize)length, G_FILE_SET_CONTENTS_CONSISTENT,
                                  0600, error);
}

guint kcps_tray_printer_index(GPtrArray *printers, const char *name)
{
  if (printers == NULL || name == NULL)
    return 0;
  for (guint i = 0; i < printers->len; i++) {
    const kcps_tray_printer_t *printer = g_ptr_array_index(printers, i);
    if (g_strcmp0(printer->name, name) == 0)
      return i;
  }
  return 0;
}

guint kcps_tray_default_printer_index(GPtrArray *printers)
{
  g_autofree char *name = kcps_tray_ini_get("default_printer");
  return kcps_tray_printer_index(printers, name);
}
