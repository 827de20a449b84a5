/* Typed, forgiving reads from JSON objects (json-glib warns on wrong types). */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>

G_BEGIN_DECLS

/* The member's string, or NULL when missing or not a string. */
const char *kcps_json_string(JsonObject *obj, const char *name);

/* The member's integer into *out; false when missing or not an integer. */
bool kcps_json_int(JsonObject *obj, const char *name, gint64 *out);

/* The member's boolean into *out; false when missing or not a boolean. */
bool kcps_json_bool(JsonObject *obj, const char *name, bool *out);

/* Compact serialization; caller g_frees. */
char *kcps_json_to_string(JsonNode *node);

/* Parses text as a JSON object. NULL + error naming the problem. Caller
 * json_node_unrefs the returned node (its object: json_node_get_object). */
JsonNode *kcps_json_parse_object(const char *text, gssize len, GError **error);

G_END_DECLS
