/* The session kept in the user's keyring, the email code step, resuming. */
#define G_LOG_DOMAIN "kcps-tray"

#include "ui/tray-session.h"

#include <string.h>

#include <glib/gi18n-lib.h>

#include "client/keyring.h"
#include "common/json-util.h"
#include "ui/tray-client.h"
#include "common/sso-loopback.h"

typedef struct session_s {
  char *mfa_token;      /* the code step under way, or NULL */
  bool resuming;        /* a keyring look-up or POST /v1/session in flight */
  bool sso_posted;      /* the login in flight is an SSO code's */
  char *nothing_kept;   /* the server whose keyring look-up found nothing */
} session_t;

static void idle_follow(KcpsTrayApp *app);
static void idle_from_answer(KcpsTrayApp *app, JsonObject *obj);

static void session_free(gpointer data)
{
  session_t *s = data;
  if (s->mfa_token != NULL)
    explicit_bzero(s->mfa_token, strlen(s->mfa_token));
  g_free(s->mfa_token);
  g_free(s->nothing_kept);
  g_free(s);
}

static session_t *session_of(KcpsTrayApp *app)
{
  session_t *s = g_object_get_data(G_OBJECT(app), "kcps-session");
  if (s == NULL) {
    s = g_new0(session_t, 1);
    g_object_set_data_full(G_OBJECT(app), "kcps-session", s, session_free);
  }
  return s;
}

static void wipe_string_member(JsonNode *body, const char *name)
{
  if (body == NULL || !JSON_NODE_HOLDS_OBJECT(body))
    return;
  const char *value = kcps_json_string(json_node_get_object(body), name);
  if (value != NULL)
    explicit_bzero((char *)value, strlen(value));
}

/* --- the keyring, off the main thread (D-Bus round trips) ------------------ */

typedef enum { KEYRING_STORE, KEYRING_CLEAR, KEYRING_LOOKUP } keyring_op_t;

typedef struct keyring_job_s {
  keyring_op_t op;
  char *server;
  char *email;
  char *token;
} keyring_job_t;

static void keyring_job_free(gpointer data)
{
  keyring_job_t *job = data;
  g_free(job->server);
  g_free(job->email);
  kcps_keyring_free(job->token);
  g_free(job);
}

static void keyring_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
  (void)source, (void)cancel;
  keyring_job_t *job = data;
  GError *error = NULL;
  bool ok = true;
  char *found = NULL;
  switch (job->op) {
  case KEYRING_STORE:
    ok = kcps_keyring_store(job->server, job->email, job->token, &error);
    if (ok && !kcps_keyring_available())
      g_message("no keyring (no Secret Service on the session bus): the session is kept in "
                "%s instead (mode 0600: readable by you alone, but not encrypted)",
                kcps_keyring_file_path());
    break;
  case KEYRING_CLEAR:
    ok = kcps_keyring_clear(job->server, &error);
    break;
  case KEYRING_LOOKUP:
    found = kcps_keyring_lookup(job->server, NULL, &error);
    ok = error == NULL;
    break;
  }
  if (!ok)
    g_task_return_error(task, error);
  else
    g_task_return_pointer(task, found, (GDestroyNotify)kcps_keyring_free);
}

static void keyring_run(KcpsTrayApp *app, keyring_op_t op, const char *server,
                        const char *email, const char *token, GAsyncReadyCallback done)
{
  keyring_job_t *job = g_new0(keyring_job_t, 1);
  job->op = op;
  job->server = g_strdup(server);
  job->email = g_strdup(email);
  job->token = g_strdup(token);
  g_application_hold(G_APPLICATION(app));
  GTask *task = g_task_new(app, NULL, done, NULL);
  g_task_set_task_data(task, job, keyring_job_free);
  g_task_run_in_thread(task, keyring_thread);
  g_object_unref(task);
}

static void keyring_done(GObject *source, GAsyncResult *result, gpointer data)
{
  (void)data;
  KcpsTrayApp *app = KCPS_TRAY_APP(source);
  g_autoptr(GError) error = NULL;
  char *nothing = g_task_propagate_pointer(G_TASK(result), &error);
  kcps_keyring_free(nothing);
  if (error != NULL)
    g_message("the keyring did not keep the session: %s", error->message);
  g_application_release(G_APPLICATION(app));
}

/* Keeps the session of kcpsd's answer (email, refresh_token). */
static void keep(KcpsTrayApp *app, JsonNode *body)
{
  if (body == NULL || !JSON_NODE_HOLDS_OBJECT(body))
    return;
  JsonObject *obj = json_node_get_object(body);
  const char *email = kcps_json_string(obj, "email");
  const char *refresh = kcps_json_string(obj, "refresh_token");
  const char *server = app->status.server;
  if (email == NULL || refresh == NULL || server == NULL)
    return;
  session_t *s = session_of(app);
  g_clear_pointer(&s->nothing_kept, g_free);
  keyring_run(app, KEYRING_STORE, server, email, refresh, keyring_done);
  wipe_string_member(body, "refresh_token");
}

/* --- login and the code step ------------------------------------------------ */

bool kcps__tray_session_login_reply(KcpsTrayApp *app, long status, JsonNode *body)
{
  session_t *s = session_of(app);
  if (status != 200)
    return s->mfa_token != NULL;
  s->sso_posted = false;
  JsonObject *obj = body != NULL && JSON_NODE_HOLDS_OBJECT(body) ? json_node_get_object(body)
                                                                 : NULL;
  const char *mfa = obj != NULL ? kcps_json_string(obj, "mfa_token") : NULL;
  if (mfa != NULL) {
    g_free(s->mfa_token);
    s->mfa_token = g_strdup(mfa);
    wipe_string_member(body, "mfa_token");
    return true;
  }
  if (s->mfa_token != NULL)
    explicit_bzero(s->mfa_token, strlen(s->mfa_token));
  g_clear_pointer(&s->mfa_token, g_free);
  idle_from_answer(app, obj);
  keep(app, body);
  return false;
}

const char *kcps__tray_session_failure(KcpsTrayApp *app, long status)
{
  session_t *s = session_of(app);
  if (!s->sso_posted)
    return NULL;
  s->sso_posted = false;
  if (status == 0 || status >= 500)
    return kcps_tray_login_message(status);
  return _("Your organization's sign-in refused the login. Try again, or log in with your "
           "email address and password.");
}

bool kcps__tray_session_code_pending(KcpsTrayApp *app)
{
  return session_of(app)->mfa_token != NULL;
}

void kcps__tray_session_cancel_code(KcpsTrayApp *app)
{
  session_t *s = session_of(app);
  if (s->mfa_token != NULL)
    explicit_bzero(s->mfa_token, strlen(s->mfa_token));
  g_clear_pointer(&s->mfa_token, g_free);
}

void kcps__tray_session_send_code(KcpsTrayApp *app, const char *code)
{
  session_t *s = session_of(app);
  g_autoptr(JsonBuilder) builder = json_builder_new();
  json_builder_begin_object(builder);
  json_builder_set_member_name(builder, "mfa_token");
  json_builder_add_string_value(builder, s->mfa_token != NULL ? s->mfa_token : "");
  json_builder_set_member_name(builder, "code");
  json_builder_add_string_value(builder, code);
  json_builder_end_object(builder);
  g_autoptr(JsonNode) body = json_builder_get_root(builder);
  kcps__tray_login_post(app, "/v1/login/mfa", body);
}

/* --- single sign-on: the loopback redirect (RFC 8252) ------------------------ */

/* The server keeps a sign-in's state 10 minutes: no use waiting longer. */
#define SSO_WAIT_S 600
#define SSO_READ_MAX 8192

typedef struct sso_s {
  GSocketService *service;
  char *verifier;
  char *state;
  guint timeout;
} sso_t;

static sso_t *sso_of(KcpsTrayApp *app)
{
  return g_object_get_data(G_OBJECT(app), "kcps-sso");
}

static void sso_free(gpointer data)
{
  sso_t *sso = data;
  if (sso->service != NULL) {
    g_socket_service_stop(sso->service);
    g_socket_listener_close(G_SOCKET_LISTENER(sso->service));
    g_object_unref(sso->service);
  }
  if (sso->timeout != 0)
    g_source_remove(sso->timeout);
  if (sso->verifier != NULL)
    explicit_bzero(sso->verifier, strlen(sso->verifier));
  g_free(sso->verifier);
  g_free(sso->state);
  g_free(sso);
}

void kcps__tray_session_sso_stop(KcpsTrayApp *app)
{
  g_object_set_data(G_OBJECT(app), "kcps-sso", NULL);
}

typedef struct conn_s {
  KcpsTrayApp *app;
  GSocketConnection *connection;
  GString *data;
  char buffer[1024];
} conn_t;

static void conn_free(conn_t *conn)
{
  g_object_unref(conn->connection);
  g_string_free(conn->data, TRUE);
  g_object_unref(conn->app);
  g_free(conn);
}

/* Answers the browser with a short page and closes. */
static void conn_answer(conn_t *conn, unsigned status, const char *text)
{
  g_autofree char *answer = kcps_sso_answer(status, text);
  GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(conn->connection));
  /* A few hundred bytes to a local socket: written at once. */
  g_output_stream_write_all(out, answer, strlen(answer), NULL, NULL, NULL);
  g_io_stream_close(G_IO_STREAM(conn->connection), NULL, NULL);
}

static void conn_read(GObject *source, GAsyncResult *result, gpointer data)
{
  conn_t *conn = data;
  gssize got = g_input_stream_read_finish(G_INPUT_STREAM(source), result, NULL);
  KcpsTrayApp *app = conn->app;
  sso_t *sso = sso_of(app);
  if (got <= 0 || sso == NULL) {
    conn_free(conn);
    return;
  }
  g_string_append_len(conn->data, conn->buffer, got);
  char *code = NULL, *error = NULL;
  kcps_sso_result_t res =
    kcps_sso_parse_request(conn->data->str, conn->data->len, sso->state, &code, &error);
  if (res == KCPS_SSO_INCOMPLETE && conn->data->len < SSO_READ_MAX) {
    g_input_stream_read_async(G_INPUT_STREAM(source), conn->buffer, sizeof conn->buffer,
                              G_PRIORITY_DEFAULT, NULL, conn_read, conn);
    return;
  }
  if (res == KCPS_SSO_CODE) {
    conn_answer(conn, 200, _("You are signed in to KCPS. You can close this page."));
    g_autoptr(JsonBuilder) builder = json_builder_new();
    json_builder_begin_object(builder);
    json_builder_set_member_name(builder, "code");
    json_builder_add_string_value(builder, code);
    json_builder_set_member_name(builder, "code_verifier");
    json_builder_add_string_value(builder, sso->verifier);
    json_builder_end_object(builder);
    g_autoptr(JsonNode) body = json_builder_get_root(builder);
    kcps__tray_session_sso_stop(app); /* one code, one sign-in */
    session_of(app)->sso_posted = true;
    kcps__tray_login_post(app, "/v1/login/sso", body);
  } else if (res == KCPS_SSO_REFUSED) {
    conn_answer(conn, 200, _("Signing in to KCPS did not work. You can close this page."));
    kcps__tray_session_sso_stop(app);
    g_free(app->login_message);
    app->login_message = g_strdup(_("Your organization's sign-in refused the login. Try again, "
                                    "or log in with your email address and password."));
    kcps__tray_state_changed(app);
  } else {
    /* Not ours (another path, another state): keep waiting for ours. */
    conn_answer(conn, 400, _("This is not a KCPS sign-in."));
  }
  if (code != NULL)
    explicit_bzero(code, strlen(code));
  g_free(code);
  g_free(error);
  conn_free(conn);
}

static gboolean on_incoming(GSocketService *service, GSocketConnection *connection,
                            GObject *source, gpointer data)
{
  (void)service, (void)source;
  conn_t *conn = g_new0(conn_t, 1);
  conn->app = g_object_ref(KCPS_TRAY_APP(data));
  conn->connection = g_object_ref(connection);
  conn->data = g_string_new(NULL);
  GInputStream *in = g_io_stream_get_input_stream(G_IO_STREAM(connection));
  g_input_stream_read_async(in, conn->buffer, sizeof conn->buffer, G_PRIORITY_DEFAULT, NULL,
                            conn_read, conn);
  return TRUE;
}

static gboolean sso_expired(gpointer data)
{
  KcpsTrayApp *app = data;
  sso_t *sso = sso_of(app);
  if (sso != NULL)
    sso->timeout = 0;
  kcps__tray_session_sso_stop(app);
  return G_SOURCE_REMOVE;
}

void kcps__tray_session_sso(KcpsTrayApp *app, const char *org, const char *login_hint)
{
  kcps__tray_session_sso_stop(app);
  g_clear_pointer(&app->login_message, g_free);
  sso_t *sso = g_new0(sso_t, 1);
  sso->verifier = kcps_sso_random();
  sso->state = kcps_sso_random();
  sso->service = g_socket_service_new();
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any_port = g_inet_socket_address_new(loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GError) error = NULL;
  bool listening =
    sso->verifier != NULL && sso->state != NULL
    && g_socket_listener_add_address(G_SOCKET_LISTENER(sso->service), any_port,
                                     G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL, &bound,
                                     &error);
  guint16 port = listening ? g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound)) : 0;
  g_autofree char *challenge = listening ? kcps_sso_challenge(sso->verifier) : NULL;
  g_autofree char *url = listening ? kcps_sso_start_url(app->status.server, org, port,
                                                             sso->state, challenge, login_hint)
                                   : NULL;
  if (url == NULL) {
    if (error != NULL)
      g_message("no loopback listener for the sign-in: %s", error->message);
    sso_free(sso);
    app->login_message = g_strdup(
      app->status.server == NULL ? kcps_tray_login_message(502)
      : listening ? kcps_tray_login_message(-1) /* the server named no usable org */
                  : _("Signing in with your organization cannot start on this computer."));
    kcps__tray_state_changed(app);
    return;
  }
  g_signal_connect(sso->service, "incoming", G_CALLBACK(on_incoming), app);
  g_socket_service_start(sso->service);
  sso->timeout = g_timeout_add_seconds(SSO_WAIT_S, sso_expired, app);
  g_object_set_data_full(G_OBJECT(app), "kcps-sso", sso, sso_free);
  if (app->test_dir != NULL) {
    /* Test hook: the test plays the browser. */
    g_autofree char *path = g_build_filename(app->test_dir, "sso-start-url", NULL);
    if (!g_file_set_contents_full(path, url, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &error))
      g_message("cannot write %s: %s", path, error->message);
  } else if (!g_app_info_launch_default_for_uri(url, NULL, &error)) {
    g_message("cannot open the browser: %s", error->message);
    kcps__tray_session_sso_stop(app);
    app->login_message = g_strdup(_("No web browser could be opened for the sign-in."));
    kcps__tray_state_changed(app);
    return;
  }
  app->login_message = g_strdup(_("Continue in your web browser, then come back here."));
  kcps__tray_state_changed(app);
}

/* --- "Sign in with Microsoft / Google": which organization, which provider -- */

typedef struct sso_lookup_s {
  KcpsTrayApp *app;
  char *wanted; /* "entra", "google", or NULL for any single sign-on */
  char *email;
} sso_lookup_t;

static void sso_lookup_free(sso_lookup_t *lookup)
{
  g_free(lookup->wanted);
  g_free(lookup->email);
  g_free(lookup);
}

/* What to say when the organization signs in with another provider than
 * the button pressed. */
static const char *other_provider_message(const char *preset)
{
  if (g_strcmp0(preset, "entra") == 0)
    return _("Your organization signs in with Microsoft. Choose “Sign in with Microsoft”.");
  if (g_strcmp0(preset, "google") == 0)
    return _("Your organization signs in with Google. Choose “Sign in with Google”.");
  return _("Your organization has its own sign-in page. Choose “Other single sign-on”.");
}

static void sso_lookup_done(GObject *source, GAsyncResult *result, gpointer data)
{
  (void)source;
  sso_lookup_t *lookup = data;
  KcpsTrayApp *app = lookup->app;
  g_autoptr(kcps_tray_reply_t) reply = kcps_tray_call_finish(result);
  app->login_busy = false;
  app->login_attempts++;
  g_clear_pointer(&app->login_message, g_free);
  JsonObject *obj = reply->body != NULL && JSON_NODE_HOLDS_OBJECT(reply->body)
                      ? json_node_get_object(reply->body) : NULL;
  const char *org = obj != NULL ? kcps_json_string(obj, "org") : NULL;
  const char *preset = obj != NULL ? kcps_json_string(obj, "preset") : NULL;
  if (reply->status == 200 && org != NULL && kcps_sso_preset_fits(lookup->wanted, preset)) {
    g_info("single sign-on with the organization's %s provider", preset);
    kcps__tray_session_sso(app, org, lookup->email);
  } else {
    if (reply->status == 200 && org != NULL && preset != NULL) {
      app->login_message = g_strdup(other_provider_message(preset));
    } else if (reply->status == 404) {
      const char *at = strrchr(lookup->email, '@');
      app->login_message = g_strdup_printf(
        _("No organization signs in addresses at %s with single sign-on. Log in with your "
          "password, or ask your administrator."),
        at != NULL ? at + 1 : lookup->email);
    } else if (reply->status == 400) {
      app->login_message = g_strdup(
        _("Enter your work email address (such as name@example.com), then choose how to sign "
          "in."));
    } else {
      app->login_message = g_strdup(kcps_tray_login_message(reply->status));
    }
    kcps__tray_state_changed(app);
  }
  g_application_release(G_APPLICATION(app));
  sso_lookup_free(lookup);
}

void kcps__tray_session_sso_with(KcpsTrayApp *app, const char *wanted, const char *email)
{
  if (app->login_busy)
    return;
  kcps__tray_session_sso_stop(app);
  g_clear_pointer(&app->login_message, g_free);
  if (email == NULL || *email == '\0') {
    app->login_message = g_strdup(_("Type your work email address first, then choose how to "
                                    "sign in."));
    kcps__tray_state_changed(app);
    return;
  }
  sso_lookup_t *lookup = g_new0(sso_lookup_t, 1);
  lookup->app = app;
  lookup->wanted = g_strdup(wanted);
  lookup->email = g_strdup(email);
  /* kcpsd sends the server only the domain. */
  g_autofree char *escaped = g_uri_escape_string(email, NULL, FALSE);
  g_autofree char *path = g_strdup_printf("/v1/sso?email=%s", escaped);
  app->login_busy = true;
  g_application_hold(G_APPLICATION(app));
  kcps_tray_call_async(app->port, "GET", path, NULL, NULL, sso_lookup_done, lookup);
  kcps__tray_state_changed(app);
}

/* --- resuming from the keyring ------------------------------------------------ */

static void session_done(GObject *source, GAsyncResult *result, gpointer data)
{
  (void)source;
  KcpsTrayApp *app = data;
  session_t *s = session_of(app);
  g_autoptr(kcps_tray_reply_t) reply = kcps_tray_call_finish(result);
  s->resuming = false;
  if (reply->status == 200) {
    g_info("the session kept in the keyring was resumed");
    idle_from_answer(app, reply->body != NULL && JSON_NODE_HOLDS_OBJECT(reply->body)
                            ? json_node_get_object(reply->body) : NULL);
    keep(app, reply->body); /* rotated */
    kcps__tray_refresh(app);
  } else if (reply->status == 401 && app->status.server != NULL) {
    /* Used up, expired or ended: of no use any more. */
    g_info("the session kept in the keyring has ended");
    keyring_run(app, KEYRING_CLEAR, app->status.server, NULL, NULL, keyring_done);
  } else {
    g_info("kcpsd did not resume the session (HTTP %ld)", reply->status);
  }
  g_application_release(G_APPLICATION(app));
}

static void lookup_done(GObject *source, GAsyncResult *result, gpointer data)
{
  (void)data;
  KcpsTrayApp *app = KCPS_TRAY_APP(source);
  session_t *s = session_of(app);
  g_autoptr(GError) error = NULL;
  char *token = g_task_propagate_pointer(G_TASK(result), &error);
  keyring_job_t *job = g_task_get_task_data(G_TASK(result));
  if (token == NULL) {
    s->resuming = false;
    if (error != NULL)
      g_message("cannot read the keyring: %s", error->message);
    /* Not asked again for this server until a login keeps something. */
    g_free(s->nothing_kept);
    s->nothing_kept = g_strdup(job->server);
  } else if (app->status.logged_in) {
    s->resuming = false; /* logged in meanwhile */
  } else {
    g_autoptr(JsonBuilder) builder = json_builder_new();
    json_builder_begin_object(builder);
    json_builder_set_member_name(builder, "refresh_token");
    json_builder_add_string_value(builder, token);
    json_builder_end_object(builder);
    g_autoptr(JsonNode) body = json_builder_get_root(builder);
    g_application_hold(G_APPLICATION(app));
    /* The call serializes the body on its thread: not wiped here. */
    kcps_tray_call_async(app->port, "POST", "/v1/session", body, NULL, session_done, app);
  }
  kcps_keyring_free(token);
  g_application_release(G_APPLICATION(app));
}

void kcps__tray_session_status(KcpsTrayApp *app)
{
  session_t *s = session_of(app);
  const char *server = app->status.server;
  /* Logged in (here or by the CLI): the keyring may keep it, look again
   * after the next logout of kcpsd (its restart). */
  if (app->status.logged_in)
    g_clear_pointer(&s->nothing_kept, g_free);
  idle_follow(app);
  if (!app->status.reachable || app->status.logged_in || server == NULL || s->resuming
      || app->login_busy || g_strcmp0(s->nothing_kept, server) == 0)
    return;
  s->resuming = true;
  keyring_run(app, KEYRING_LOOKUP, server, NULL, NULL, lookup_done);
}

void kcps__tray_session_forget(KcpsTrayApp *app)
{
  kcps__tray_session_cancel_code(app);
  if (app->status.server == NULL)
    return;
  session_t *s = session_of(app);
  g_free(s->nothing_kept);
  s->nothing_kept = g_strdup(app->status.server);
  keyring_run(app, KEYRING_CLEAR, app->status.server, NULL, NULL, keyring_done);
}

/* --- automatic logout after idle time ---------------------------------------- */

/* ONE timeout while logged in, for the whole limit; activity only notes the
 * time (no timer work per event). When it fires early activity came: it is
 * re-armed for what is left; else the tray logs out. No polling. */
typedef struct idle_s {
  guint source;
  gint64 last_activity; /* monotonic us */
  guint org_minutes;    /* the organization's desktop limit (0: not known) */
  guint user_minutes;   /* the user's own (tray.ini; 0: the organization's) */
  guint test_seconds;   /* test hook: the limit in seconds instead */
  bool loaded;
} idle_t;

static idle_t *idle_of(KcpsTrayApp *app)
{
  idle_t *idle = g_object_get_data(G_OBJECT(app), "kcps-idle");
  if (idle == NULL) {
    idle = g_new0(idle_t, 1);
    idle->last_activity = g_get_monotonic_time();
    g_object_set_data_full(G_OBJECT(app), "kcps-idle", idle, g_free);
  }
  if (!idle->loaded) {
    idle->loaded = true;
    g_autofree char *path =
      g_build_filename(g_get_user_config_dir(), "kcps", "tray.ini", NULL);
    g_autoptr(GKeyFile) file = g_key_file_new();
    if (g_key_file_load_from_file(file, path, G_KEY_FILE_NONE, NULL)) {
      gint minutes = g_key_file_get_integer(file, "tray", "idle_logout_minutes", NULL);
      idle->user_minutes = minutes > 0 ? (guint)minutes : 0;
    }
  }
  return idle;
}

/* The limit in seconds, 0 for none (the test hook's seconds instead when
 * set: the tests cannot wait minutes). */
static guint idle_limit_s(KcpsTrayApp *app)
{
  idle_t *idle = idle_of(app);
  guint minutes = idle->org_minutes;
  if (idle->user_minutes > 0 && (minutes == 0 || idle->user_minutes < minutes))
    minutes = idle->user_minutes;
  if (idle->test_seconds > 0 && minutes > 0)
    return idle->test_seconds;
  return minutes * 60;
}

static gboolean idle_fired(gpointer data);

static void idle_arm(KcpsTrayApp *app, guint seconds)
{
  idle_t *idle = idle_of(app);
  if (idle->source != 0)
    g_source_remove(idle->source);
  idle->source = seconds > 0 ? g_timeout_add_seconds(seconds, idle_fired, app) : 0;
}

static gboolean idle_fired(gpointer data)
{
  KcpsTrayApp *app = data;
  idle_t *idle = idle_of(app);
  idle->source = 0;
  guint limit = idle_limit_s(app);
  if (limit == 0 || !app->status.logged_in)
    return G_SOURCE_REMOVE;
  gint64 idle_s = (g_get_monotonic_time() - idle->last_activity) / G_USEC_PER_SEC;
  if (idle_s < (gint64)limit) {
    idle_arm(app, limit - (guint)idle_s);
    return G_SOURCE_REMOVE;
  }
  g_info("no activity for %u s: logging out", limit);
  g_action_group_activate_action(G_ACTION_GROUP(app), "logout", NULL);
  return G_SOURCE_REMOVE;
}

void kcps__tray_session_activity(KcpsTrayApp *app)
{
  idle_of(app)->last_activity = g_get_monotonic_time();
}

/* Logged in: the timer runs; logged out: it stops. */
static void idle_follow(KcpsTrayApp *app)
{
  idle_t *idle = idle_of(app);
  if (!app->status.logged_in) {
    idle_arm(app, 0);
  } else if (idle->source == 0) {
    idle->last_activity = g_get_monotonic_time();
    idle_arm(app, idle_limit_s(app));
  }
}

static void idle_from_answer(KcpsTrayApp *app, JsonObject *obj)
{
  JsonNode *value = obj != NULL ? json_object_get_member(obj, "desktop_idle_logout_minutes")
                                : NULL;
  if (value != NULL && json_node_get_value_type(value) == G_TYPE_INT64
      && json_node_get_int(value) > 0)
    idle_of(app)->org_minutes = (guint)MIN(json_node_get_int(value), 43200);
  idle_arm(app, 0); /* re-armed with the new limit at the next status */
}

guint kcps__tray_session_idle_org(KcpsTrayApp *app)
{
  return idle_of(app)->org_minutes;
}

guint kcps__tray_session_idle_user(KcpsTrayApp *app)
{
  return idle_of(app)->user_minutes;
}

void kcps__tray_session_idle_changed(KcpsTrayApp *app, GtkSpinButton *spin)
{
  idle_t *idle = idle_of(app);
  idle->user_minutes = (guint)gtk_spin_button_get_value_as_int(spin);
  g_autofree char *path = g_build_filename(g_get_user_config_dir(), "kcps", "tray.ini", NULL);
  g_autofree char *dir = g_path_get_dirname(path);
  g_autoptr(GKeyFile) file = g_key_file_new();
  g_autoptr(GError) error = NULL;
  (void)g_key_file_load_from_file(file, path, G_KEY_FILE_KEEP_COMMENTS, NULL);
  g_key_file_set_integer(file, "tray", "idle_logout_minutes", (gint)idle->user_minutes);
  gsize length = 0;
  g_autofree char *text = g_key_file_to_data(file, &length, NULL);
  if (g_mkdir_with_parents(dir, 0700) != 0
      || !g_file_set_contents_full(path, text, (gssize)length, G_FILE_SET_CONTENTS_CONSISTENT,
                                   0600, &error))
    g_message("%s is not saved: %s", path, error != NULL ? error->message : "no folder");
  idle_arm(app, 0);
  idle_follow(app);
}

/* Test hook "idle-seconds" (u): the limit in seconds from now on. */
static void on_idle_seconds(GSimpleAction *action, GVariant *param, gpointer data)
{
  (void)action;
  KcpsTrayApp *app = data;
  idle_of(app)->test_seconds = g_variant_get_uint32(param);
  idle_arm(app, 0);
  idle_follow(app);
}

void kcps__tray_session_startup(KcpsTrayApp *app)
{
  if (app->test_dir == NULL)
    return;
  static const GActionEntry test_actions[] = {
    {"idle-seconds", on_idle_seconds, "u", NULL, NULL, {0}},
  };
  g_action_map_add_action_entries(G_ACTION_MAP(app), test_actions, G_N_ELEMENTS(test_actions),
                                  app);
}
