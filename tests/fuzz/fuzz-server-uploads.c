/* Fuzz target: the untrusted input of the cloud spool routes
 * (server-uploads.c): a Range header, a chunk's ?offset= and Content-Range,
 * and the JSON body of POST /api/v1/uploads. The input is up to four lines:
 * Range, offset query, Content-Range, JSON body. An accepted range lies
 * within the document; an accepted offset agrees with the body length and
 * the declared size; an accepted body has a 64-digit lower-case sha256. */
#include "server-stub/server-private.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *text = g_strndup((const char *)data, size);
  char **lines = g_strsplit(text, "\n", 4);
  const char *range = lines[0];
  const char *query = range ? lines[1] : NULL;
  const char *crange = query ? lines[2] : NULL;
  const char *body = crange ? lines[3] : NULL;

  static const gint64 sizes[] = {1, 100, G_GINT64_CONSTANT(1) << 40};
  for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
    gint64 s = -1, e = -1;
    if (kcps__server_parse_range(range, sizes[i], &s, &e) &&
        (s < 0 || e < s || e >= sizes[i]))
      __builtin_trap();
    gint64 off = kcps__server_chunk_offset(query, crange, 5, sizes[i]);
    if (off < -1 || (off >= 0 && !query && !crange))
      __builtin_trap();
  }

  if (body) {
    GError *error = NULL;
    if (kcps__server_check_json_text(body, strlen(body), &error)) {
      JsonParser *parser = json_parser_new();
      if (json_parser_load_from_data(parser, body, -1, NULL) &&
          JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
        JsonObject *obj = json_node_get_object(json_parser_get_root(parser));
        const char *key = NULL, *name = NULL;
        gint64 pages = 0, declared = 0;
        char sha[65] = "";
        bool ok = kcps__server_check_upload(obj, &key, &name, &pages, &declared, sha, &error);
        if (ok && (error || !key || !name || declared < 1 || pages < 1 || strlen(sha) != 64 ||
                   strspn(sha, "0123456789abcdef") != 64))
          __builtin_trap();
        if (!ok && !error)
          __builtin_trap();
      }
      g_object_unref(parser);
    }
    g_clear_error(&error);
  }
  g_strfreev(lines);
  g_free(text);
  return 0;
}
