/* Fuzz target: tickets as an MFP presents them to 5571 (untrusted text),
 * and the base64url and JSON-object parsers underneath. */
#include "common/crypto.h"
#include "common/json-util.h"
#include "common/ticket.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static kcps_ticket_key_t *key;

  if (!key) {
    /* A fixed public key: any input that verifies would be a forgery. */
    key = kcps_ticket_key_from_public("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", NULL);
    if (!key)
      __builtin_trap();
  }

  char *text = g_strndup((const char *)data, size);
  GError *error = NULL;
  kcps_ticket_t *t = kcps_ticket_verify(key, text, 0, &error);
  if (t)
    __builtin_trap();
  if (!error || !error->message[0])
    __builtin_trap();
  g_clear_error(&error);

  size_t len = 0;
  guchar *raw = kcps_base64url_decode(text, &len);
  if (raw) {
    char *again = kcps_base64url_encode(raw, len);
    g_free(again);
  }
  g_free(raw);

  JsonNode *node = kcps_json_parse_object((const char *)data, (gssize)size, NULL);
  if (node) {
    JsonObject *obj = json_node_get_object(node);
    gint64 n;
    bool b;
    (void)kcps_json_string(obj, "tid");
    (void)kcps_json_int(obj, "exp", &n);
    (void)kcps_json_bool(obj, "v", &b);
    json_node_unref(node);
  }
  g_free(text);
  return 0;
}
