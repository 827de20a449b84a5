/* GET /v1/sso?email=ADDRESS (or ?domain=DOMAIN): which organization signs
 * in users of this email domain with single sign-on, and with which
 * provider, for "Sign in with Microsoft" / "Sign in with Google" in the
 * tray. Only the domain goes to the server (GET /api/v1/sso/lookup); the
 * address itself never leaves this computer. */
#define G_LOG_DOMAIN "kcpsd"

#include "client/daemon-private.h"
#include "common/json-util.h"

#include <string.h>

#define LOOKUP_TIMEOUT_S 15

/* The lower-case domain of an email address or a bare domain: letters,
 * digits, '-' and '.', with a dot, no empty label. NULL when it is none. */
char *kcps__sso_domain_of(const char *email_or_domain)
{
  if (email_or_domain == NULL)
    return NULL;
  const char *at = strrchr(email_or_domain, '@');
  if (at != NULL && (at == email_or_domain || memchr(email_or_domain, '@',
                                                     (size_t)(at - email_or_domain)) != NULL))
    return NULL;
  const char *d = at != NULL ? at + 1 : email_or_domain;
  size_t n = strlen(d);
  if (n < 3 || n > 253 || strchr(d, '.') == NULL || d[0] == '.' || d[0] == '-'
      || d[n - 1] == '.' || d[n - 1] == '-' || strstr(d, "..") != NULL)
    return NULL;
  for (const char *p = d; *p; p++)
    if (!g_ascii_isalnum(*p) && *p != '-' && *p != '.')
      return NULL;
  return g_ascii_strdown(d, -1);
}

void kcps__local_get_sso(kcps_daemon_t *daemon, kcps_http_req_t *req, uid_t uid)
{
  (void)uid;
  const char *email = kcps_http_req_query(req, "email");
  const char *given = email != NULL ? email : kcps_http_req_query(req, "domain");
  if (given == NULL || *given == '\0') {
    kcps_http_respond_error(req, 400, "bad_request",
                            "give your work email address (?email=) or its domain (?domain=)");
    return;
  }
  g_autofree char *domain = kcps__sso_domain_of(given);
  if (domain == NULL) {
    kcps_http_respond_error(req, 400, "bad_request",
                            email != NULL ? "the email address has no valid domain after the @"
                                          : "domain must be a domain name such as example.com");
    return;
  }
  if (daemon->server_url == NULL) {
    kcps_http_respond_error(req, 503, "no_server",
                            "no server is configured (start kcpsd with --server URL)");
    return;
  }

  kcps_http_opts_t opts;
  kcps__daemon_server_opts(daemon, &opts, NULL, LOOKUP_TIMEOUT_S);
  g_autofree char *escaped = g_uri_escape_string(domain, NULL, FALSE);
  g_autofree char *url =
    g_strdup_printf("%s/api/v1/sso/lookup?domain=%s", daemon->server_url, escaped);
  g_autoptr(JsonNode) answer = NULL;
  g_autoptr(GError) error = NULL;
  long status = 0;
  kcps_net_status_t net = kcps_http_call_json("GET", url, &opts, NULL, &status, &answer, &error);
  JsonObject *obj = answer != NULL && JSON_NODE_HOLDS_OBJECT(answer)
                      ? json_node_get_object(answer) : NULL;
  if (net == KCPS_NET_OK) {
    const char *org = obj != NULL ? kcps_json_string(obj, "org") : NULL;
    const char *preset = obj != NULL ? kcps_json_string(obj, "preset") : NULL;
    const char *start = obj != NULL ? kcps_json_string(obj, "start_url") : NULL;
    if (org == NULL || preset == NULL || start == NULL) {
      kcps_http_respond_error(req, 502, "bad_answer",
                              "the server's single sign-on lookup lacks org, preset or start_url");
      return;
    }
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "domain");
    json_builder_add_string_value(b, domain);
    json_builder_set_member_name(b, "org");
    json_builder_add_string_value(b, org);
    json_builder_set_member_name(b, "preset");
    json_builder_add_string_value(b, preset);
    json_builder_set_member_name(b, "start_url");
    json_builder_add_string_value(b, start);
    json_builder_end_object(b);
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    kcps_http_respond_json(req, 200, root);
  } else if (status == 404) {
    kcps_http_respond_error(req, 404, "not_found",
                            "no organization signs in users of %s with single sign-on", domain);
  } else if (net == KCPS_NET_RETRY) {
    kcps_http_respond_error(req, 502, "server_unreachable",
                            "cannot ask the server about single sign-on: %s", error->message);
  } else {
    kcps_http_respond_error(req, 502, "server_refused",
                            "the server refused the single sign-on lookup: %s",
                            error != NULL ? error->message : "no answer");
  }
}
