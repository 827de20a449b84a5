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

/* A refused login's lock, as kcps-server and kcpsd send it:
 * {"error":"account_locked","retry_after":N,"retry_at":"<RFC 3339>"}.
 * Returns the lock's end in Unix time, 0 when body is another answer or its
 * retry_at is missing or not a time. *retry_after (when non-NULL) gets N, or
 * -1 when N is missing, not an integer or outside 0..KCPS_JSON_RETRY_AFTER_MAX. */
#define KCPS_JSON_RETRY_AFTER_MAX (366 * 24 * 3600)
gint64 kcps_json_locked_until(JsonNode *body, gint64 *retry_after);

/* Compact serialization; caller g_frees. */
char *kcps_json_to_string(JsonNode *node);

/* Parses text as a JSON object. NULL + error naming the problem. Caller
 * json_node_unrefs the returned node (its object: json_node_get_object). */
JsonNode *kcps_json_parse_object(const char *text, gssize len, GError **error);

G_END_DECLS
