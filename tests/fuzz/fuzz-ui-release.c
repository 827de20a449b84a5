/* Fuzz target: the tray's parsers for the jobs window (another local
 * process could be listening on 5572): GET /v1/printers (the list), GET
 * /v1/printers?uri= (capabilities, then the release dialog's controls), and
 * a release object (POST /v1/jobs/{id}/release, GET /v1/releases/{id}).
 * Input: the JSON text, given to all three. */
#include "ui/tray-model.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autoptr(JsonParser) parser = json_parser_new();
  if (!json_parser_load_from_data(parser, (const char *)data, (gssize)size, NULL))
    return 0;
  JsonNode *node = json_parser_get_root(parser);
  if (node == NULL)
    return 0;

  GError *error = NULL;
  GPtrArray *printers = kcps_tray_printers_parse(node, &error);
  if (printers == NULL && error == NULL)
    __builtin_trap();
  for (guint i = 0; printers != NULL && i < printers->len; i++) {
    const kcps_tray_printer_t *p = g_ptr_array_index(printers, i);
    /* Only URIs a release accepts are offered, each with a name. */
    if (!kcps_tray_printer_uri_ok(p->uri) || p->name == NULL || *p->name == '\0')
      __builtin_trap();
  }
  g_clear_pointer(&printers, g_ptr_array_unref);
  g_clear_error(&error);

  kcps_tray_caps_t caps;
  bool ok = kcps_tray_caps_parse(node, &caps, &error);
  if (!ok && error == NULL)
    __builtin_trap();
  g_clear_error(&error);
  kcps_tray_release_controls_t controls;
  kcps_tray_release_controls(ok ? &caps : NULL, &controls);
  /* Whatever the printer says, the spin button's range is a real one
   * within the API's 1..999. */
  if (controls.copies_min < 1 || controls.copies_max < controls.copies_min ||
      controls.copies_max > KCPS_TRAY_COPIES_MAX)
    __builtin_trap();
  if (ok) {
    JsonNode *body = kcps_tray_release_body("ipp://printer/ipp/print", controls.copies_max,
                                            controls.show_color ? 1 : -1, controls.show_duplex);
    json_node_unref(body);
  }

  char *id = NULL, *state = NULL, *message = NULL;
  if (kcps_tray_release_parse(node, &id, &state, &message)) {
    if (id == NULL || *id == '\0' || state == NULL || *state == '\0')
      __builtin_trap();
    (void)kcps_tray_release_label(state);
    (void)kcps_tray_release_fraction(state);
  }
  g_free(id);
  g_free(state);
  g_free(message);
  return 0;
}
