/* Fuzz target: the untrusted body of the user group routes
 * (server-groups.c): POST /api/v1/orgs/{id}/groups and PATCH
 * /api/v1/groups/{id}, {"name"}. An accepted name is 1..255 bytes of valid
 * UTF-8 without control characters and not blank; a refusal names why. */
#include "server-stub/server-private.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *text = g_strndup((const char *)data, size);
  GError *error = NULL;
  JsonParser *parser = json_parser_new();
  bool parsed = kcps__server_check_json_text(text, strlen(text), &error) &&
                json_parser_load_from_data(parser, text, -1, NULL) &&
                JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser));
  g_clear_error(&error);
  if (parsed) {
    const char *name = NULL;
    bool ok = kcps__server_check_group(json_node_get_object(json_parser_get_root(parser)), &name,
                                       &error);
    if (ok) {
      size_t len = name ? strlen(name) : 0;
      bool blank = true;
      for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f)
          __builtin_trap();
        blank = blank && c == ' ';
      }
      if (error || len < 1 || len > KCPS_SERVER_MAX_NAME || blank ||
          !g_utf8_validate(name, (gssize)len, NULL))
        __builtin_trap();
    } else if (!error || !strchr(error->message, '"')) {
      __builtin_trap();
    }
    g_clear_error(&error);
  }
  g_object_unref(parser);
  g_free(text);
  return 0;
}
