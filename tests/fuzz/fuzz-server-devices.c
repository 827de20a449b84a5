/* Fuzz target: the bodies of kcps-server's device, PIN and ID card routes
 * (untrusted JSON from admins' and devices' HTTPS clients) through the
 * strict JSON check and the device body checks. A check either accepts
 * fields within the documented rules or refuses with a message naming a
 * field (quoted), UTF-8 without control characters. */
#include "server-stub/server-devices-private.h"

#include "common/json-util.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_result(bool ok, GError *error)
{
  if (ok != (error == NULL))
    __builtin_trap();
  if (ok)
    return;
  if (!strchr(error->message, '"') || !g_utf8_validate(error->message, -1, NULL))
    __builtin_trap();
  for (const char *p = error->message; *p; p++)
    if ((unsigned char)*p < 0x20)
      __builtin_trap();
}

static void
check_only(JsonObject *obj, const char *const *allowed)
{
  g_autoptr(GList) names = json_object_get_members(obj);
  for (GList *l = names; l; l = l->next)
    if (!g_strv_contains(allowed, l->data))
      __builtin_trap();
}

static void
check_text(const char *s, size_t min, size_t max)
{
  if (!s || strlen(s) < min || strlen(s) > max || !g_utf8_validate(s, -1, NULL))
    __builtin_trap();
  for (const char *p = s; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      __builtin_trap();
}

static void
check_device(JsonObject *obj, bool patch)
{
  GError *error = NULL;
  kcps_server_device_req_t r;
  bool ok = kcps__server_check_device(obj, patch, &r, &error);
  check_result(ok, error);
  g_clear_error(&error);
  if (!ok)
    return;
  static const char *const reg[] = {"serial", "name", "login_options", NULL};
  static const char *const pat[] = {"name", "login_options", NULL};
  check_only(obj, patch ? pat : reg);
  if (r.options < 0 || r.options > KCPS_LOGIN_ALL || (patch && !r.name && !r.has_options))
    __builtin_trap();
  if (!patch) {
    check_text(r.serial, 1, KCPS_SERVER_MAX_SERIAL);
    for (const char *p = r.serial; *p; p++)
      if (!g_ascii_isalnum(*p) && !strchr("-._", *p))
        __builtin_trap();
  }
  if (r.name || !patch)
    check_text(r.name, 1, KCPS_SERVER_MAX_DEVICE);
}

static void
check_card(JsonObject *obj, bool login)
{
  GError *error = NULL;
  kcps_server_card_req_t r;
  bool ok = kcps__server_check_card(obj, login, &r, &error);
  check_result(ok, error);
  g_clear_error(&error);
  if (!ok)
    return;
  static const char *const reg[] = {"card_id", "label", NULL};
  static const char *const log[] = {"card_id", NULL};
  check_only(obj, login ? log : reg);
  check_text(r.card_id, KCPS_SERVER_MIN_CARD_ID, KCPS_SERVER_MAX_CARD_ID);
  for (const char *p = r.card_id; *p; p++)
    if (g_ascii_islower(*p) || (!g_ascii_isalnum(*p) && !strchr("-:._", *p)))
      __builtin_trap();
  if (login && r.label)
    __builtin_trap();
  if (!login)
    check_text(r.label, 1, KCPS_SERVER_MAX_LABEL);
}

static void
check_pin_set(JsonObject *obj, bool admin)
{
  GError *error = NULL;
  kcps_server_pin_set_req_t r;
  bool ok = kcps__server_check_pin_set(obj, admin, &r, &error);
  check_result(ok, error);
  g_clear_error(&error);
  if (!ok)
    return;
  if (r.generate ? (!admin || r.pin != NULL) : r.pin == NULL)
    __builtin_trap();
  if (r.pin) {
    check_text(r.pin, 1, KCPS_SERVER_MAX_PIN_FIELD);
    for (const char *p = r.pin; *p; p++)
      if (!g_ascii_isdigit(*p))
        __builtin_trap();
  }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  /* As the server reads a body: the strict text check, then the parser. */
  GError *error = NULL;
  bool strict = kcps__server_check_json_text((const char *)data, size, &error);
  g_clear_error(&error);
  if (!strict)
    return 0;
  JsonNode *node = kcps_json_parse_object((const char *)data, (gssize)size, NULL);
  if (!node)
    return 0;
  JsonObject *obj = json_node_get_object(node);
  check_device(obj, false);
  check_device(obj, true);
  check_card(obj, false);
  check_card(obj, true);
  check_pin_set(obj, false);
  check_pin_set(obj, true);
  json_node_unref(node);
  return 0;
}
