/* Fuzz target: the untrusted input of the usage and quota routes
 * (server-usage.c): a usage record's time, the JSON body of POST
 * /api/v1/usage and of POST /api/v1/me/quota/check, and a quota statement
 * as kcpsd would read it. The input is up to four lines: time, usage body,
 * check body, statement. An accepted time lies within the bounds; an
 * accepted record has its required fields in range; no statement verifies
 * under a key that signed nothing. */
#include "server-stub/server-private.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1800000000

static JsonObject *
parse_object(JsonParser *parser, const char *text)
{
  GError *error = NULL;
  bool ok = text && kcps__server_check_json_text(text, strlen(text), &error) &&
            json_parser_load_from_data(parser, text, -1, NULL) &&
            JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser));
  g_clear_error(&error);
  return ok ? json_node_get_object(json_parser_get_root(parser)) : NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *text = g_strndup((const char *)data, size);
  char **lines = g_strsplit(text, "\n", 4);
  const char *time_text = lines[0];
  const char *usage = time_text ? lines[1] : NULL;
  const char *check = usage ? lines[2] : NULL;
  const char *statement = check ? lines[3] : NULL;
  GError *error = NULL;

  gint64 t = 0;
  bool ok = kcps__server_parse_usage_time(time_text, NOW, &t, &error);
  if (ok && (error || t > NOW + 300 || t < NOW - 62 * 24 * 3600))
    __builtin_trap();
  if (!ok && !error)
    __builtin_trap();
  g_clear_error(&error);

  JsonParser *parser = json_parser_new();
  JsonObject *obj = parse_object(parser, usage);
  if (obj) {
    kcps_server_usage_req_t in;
    ok = kcps__server_check_usage(obj, NOW, &in, &error);
    if (ok && (error || !in.key || !*in.key || !in.printer || !*in.printer || in.pages < 1 ||
               in.copies < 1 || g_strcmp0(in.job_type, "print") != 0 || in.time > NOW + 300 ||
               (in.job_id && !*in.job_id)))
      __builtin_trap();
    if (!ok && !error)
      __builtin_trap();
    g_clear_error(&error);
  }
  g_object_unref(parser);

  parser = json_parser_new();
  obj = parse_object(parser, check);
  if (obj) {
    gint64 pages = 0, copies = 0;
    bool color = false;
    ok = kcps__server_check_quota_check(obj, &pages, &copies, &color, &error);
    if (ok && (error || pages < 1 || copies < 1))
      __builtin_trap();
    g_clear_error(&error);
  }
  g_object_unref(parser);

  /* The all-zero key signs nothing; nothing may verify under it. */
  kcps_server_quota_statement_t st;
  if (kcps__server_quota_statement_verify("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", statement,
                                          NOW, &st, &error))
    __builtin_trap();
  if (!error)
    __builtin_trap();
  g_clear_error(&error);

  g_strfreev(lines);
  g_free(text);
  return 0;
}
