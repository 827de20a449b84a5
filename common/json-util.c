/* Typed reads from json-glib objects that never warn on a wrong type. */
#include "common/json-util.h"

const char *
kcps_json_string(JsonObject *obj, const char *name)
{
  JsonNode *node = obj ? json_object_get_member(obj, name) : NULL;

  if (!node || !JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string(node);
}

bool
kcps_json_int(JsonObject *obj, const char *name, gint64 *out)
{
  JsonNode *node = obj ? json_object_get_member(obj, name) : NULL;

  if (!node || !JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_INT64)
    return false;
  *out = json_node_get_int(node);
  return true;
}

gint64
kcps_json_locked_until(JsonNode *body, gint64 *retry_after)
{
  JsonObject *obj = body != NULL && JSON_NODE_HOLDS_OBJECT(body) ? json_node_get_object(body)
                                                                 : NULL;
  gint64 after = -1;

  if (retry_after != NULL)
    *retry_after = -1;
  if (obj == NULL || g_strcmp0(kcps_json_string(obj, "error"), "account_locked") != 0)
    return 0;
  const char *at = kcps_json_string(obj, "retry_at");
  g_autoptr(GDateTime) when = at != NULL ? g_date_time_new_from_iso8601(at, NULL) : NULL;
  gint64 until = when != NULL ? g_date_time_to_unix(when) : 0;
  if (until <= 0)
    return 0;
  if (retry_after != NULL && kcps_json_int(obj, "retry_after", &after) && after >= 0
      && after <= KCPS_JSON_RETRY_AFTER_MAX)
    *retry_after = after;
  return until;
}

bool
kcps_json_bool(JsonObject *obj, const char *name, bool *out)
{
  JsonNode *node = obj ? json_object_get_member(obj, name) : NULL;

  if (!node || !JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_BOOLEAN)
    return false;
  *out = json_node_get_boolean(node);
  return true;
}

char *
kcps_json_to_string(JsonNode *node)
{
  JsonGenerator *gen = json_generator_new();
  json_generator_set_root(gen, node);
  char *text = json_generator_to_data(gen, NULL);
  g_object_unref(gen);
  return text;
}

JsonNode *
kcps_json_parse_object(const char *text, gssize len, GError **error)
{
  JsonParser *parser = json_parser_new_immutable();
  GError *local = NULL;

  if (!text || !json_parser_load_from_data(parser, text ? text : "", len, &local)) {
    g_set_error(error, JSON_PARSER_ERROR, local ? local->code : JSON_PARSER_ERROR_INVALID_DATA,
                "body is not JSON: %s", local ? local->message : "empty");
    g_clear_error(&local);
    g_object_unref(parser);
    return NULL;
  }

  JsonNode *root = json_parser_get_root(parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
    g_set_error(error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_INVALID_DATA,
                "body is not a JSON object");
    g_object_unref(parser);
    return NULL;
  }
  root = json_node_copy(root);
  g_object_unref(parser);
  return root;
}
