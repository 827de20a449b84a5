/* Request body checks: every field's presence, type and range, so that a
 * route either gets a complete, sane request or answers 400 naming the field
 * before anything is stored. */
#include "server-validate.h"

#include "server.h"

#include <string.h>

static void
set_bad(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void
set_bad(GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error_literal(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_BAD_REQUEST, msg);
  g_free(msg);
}

/* The member node, or NULL with "missing field" when required. */
static JsonNode *
member(JsonObject *obj, const char *name, bool required, bool *present, GError **error)
{
  JsonNode *node = obj ? json_object_get_member(obj, name) : NULL;
  *present = node != NULL;
  if (!node && required)
    set_bad(error, "missing field \"%s\"", name);
  return node;
}

/* C0 controls, DEL and the C1 controls (U+0080..U+009F); s is valid UTF-8. */
static bool
has_control(const char *s)
{
  for (const char *p = s; *p; p = g_utf8_next_char(p)) {
    gunichar c = g_utf8_get_char(p);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f))
      return true;
  }
  return false;
}

bool
kcps__server_field_string(JsonObject *obj, const char *name, size_t min, size_t max,
                          kcps_server_text_t flags, const char **out, GError **error)
{
  bool present;
  bool required = !(flags & KCPS_TEXT_OPTIONAL);
  JsonNode *node = member(obj, name, required, &present, error);
  if (!present) {
    *out = NULL;
    return !required;
  }
  if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING) {
    set_bad(error, "field \"%s\" must be a string", name);
    return false;
  }
  const char *s = json_node_get_string(node);
  size_t len = s ? strlen(s) : 0;
  if (!s || len < min || len > max) {
    if (min > 0)
      set_bad(error, "field \"%s\" must be %zu to %zu bytes long", name, min, max);
    else
      set_bad(error, "field \"%s\" must be at most %zu bytes long", name, max);
    return false;
  }
  if (!g_utf8_validate(s, (gssize)len, NULL)) {
    set_bad(error, "field \"%s\" is not valid UTF-8", name);
    return false;
  }
  if (!(flags & KCPS_TEXT_CONTROL) && has_control(s)) {
    set_bad(error, "field \"%s\" must not contain control characters", name);
    return false;
  }
  *out = s;
  return true;
}

bool
kcps__server_field_int(JsonObject *obj, const char *name, bool required, gint64 lo, gint64 hi,
                       gint64 dflt, gint64 *out, GError **error)
{
  bool present;
  JsonNode *node = member(obj, name, required, &present, error);
  if (!present) {
    *out = dflt;
    return !required;
  }
  if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_INT64) {
    set_bad(error, "field \"%s\" must be an integer", name);
    return false;
  }
  gint64 v = json_node_get_int(node);
  if (v < lo || v > hi) {
    set_bad(error, "field \"%s\" must be an integer from %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT,
            name, lo, hi);
    return false;
  }
  *out = v;
  return true;
}

bool
kcps__server_field_bool(JsonObject *obj, const char *name, bool required, bool dflt, bool *out,
                        GError **error)
{
  bool present;
  JsonNode *node = member(obj, name, required, &present, error);
  if (!present) {
    *out = dflt;
    return !required;
  }
  if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_BOOLEAN) {
    set_bad(error, "field \"%s\" must be true or false", name);
    return false;
  }
  *out = json_node_get_boolean(node);
  return true;
}

bool
kcps__server_field_enum(JsonObject *obj, const char *name, bool required,
                        const char *const *values, int dflt, int *out, GError **error)
{
  const char *s = NULL;
  if (!kcps__server_field_string(obj, name, 1, 256,
                                 required ? KCPS_TEXT_PLAIN : KCPS_TEXT_OPTIONAL, &s, error))
    return false;
  if (!s) {
    *out = dflt;
    return true;
  }
  for (int i = 0; values[i]; i++)
    if (strcmp(s, values[i]) == 0) {
      *out = i;
      return true;
    }
  g_autoptr(GString) list = g_string_new(NULL);
  for (int i = 0; values[i]; i++)
    g_string_append_printf(list, "%s\"%s\"", i == 0 ? "" : values[i + 1] ? ", " : " or ",
                           values[i]);
  set_bad(error, "field \"%s\" must be %s%s", name, values[0] && values[1] ? "one of " : "",
          list->str);
  return false;
}

/* name for a message: printable ASCII kept, other bytes '?', cut at 64. */
static char *
printable(const char *name)
{
  GString *out = g_string_new(NULL);
  size_t i = 0;
  for (; name[i] && i < 64; i++)
    g_string_append_c(out, g_ascii_isprint(name[i]) && name[i] != '"' && name[i] != '\\'
                                ? name[i]
                                : '?');
  if (name[i])
    g_string_append(out, "...");
  return g_string_free(out, FALSE);
}

bool
kcps__server_check_fields(JsonObject *obj, const char *const *allowed, GError **error)
{
  if (!obj)
    return true;
  g_autoptr(GList) names = json_object_get_members(obj);
  for (GList *l = names; l; l = l->next) {
    const char *name = l->data;
    bool known = false;
    for (size_t i = 0; allowed && allowed[i] && !known; i++)
      known = strcmp(allowed[i], name) == 0;
    if (!known) {
      g_autofree char *shown = printable(name);
      set_bad(error, "unknown field \"%s\"", shown);
      return false;
    }
  }
  return true;
}

static bool
check_email(const char *name, const char *email, GError **error)
{
  const char *at = strchr(email, '@');
  bool ok = at && at != email && at[1] != '\0' && !strchr(at + 1, '@');
  for (const char *p = email; ok && *p; p++)
    if (*p == ' ')
      ok = false;
  if (!ok)
    set_bad(error, "field \"%s\" must be an email address (name@domain)", name);
  return ok;
}

bool
kcps__server_field_email(JsonObject *obj, const char *name, bool required, const char **out,
                         GError **error)
{
  const char *s = NULL;
  if (!kcps__server_field_string(obj, name, 3, KCPS_SERVER_MAX_EMAIL,
                                 required ? KCPS_TEXT_PLAIN : KCPS_TEXT_OPTIONAL, &s, error))
    return false;
  if (s && !check_email(name, s, error))
    return false;
  *out = s;
  return true;
}

bool
kcps__server_check_login(JsonObject *obj, kcps_server_login_req_t *out, GError **error)
{
  static const char *const fields[] = {"email", "password", "client", NULL};
  static const char *const clients[] = {"web", "desktop", NULL};
  kcps_server_login_req_t r = {0};
  int client = 0;
  if (!kcps__server_check_fields(obj, fields, error) ||
      !kcps__server_field_email(obj, "email", true, &r.email, error) ||
      !kcps__server_field_string(obj, "password", 1, KCPS_SERVER_MAX_PASSWORD,
                                 KCPS_TEXT_CONTROL, &r.password, error) ||
      !kcps__server_field_enum(obj, "client", false, clients, 0, &client, error))
    return false;
  r.client = clients[client];
  *out = r;
  return true;
}

/* Client job ids end up in pull URLs: URL-unreserved characters only. */
static bool
is_client_job_id(const char *s)
{
  for (; *s; s++)
    if (!g_ascii_isalnum(*s) && !strchr("-._~", *s))
      return false;
  return true;
}

static bool
check_https_url(const char *url, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(GUri) uri = g_uri_parse(url, G_URI_FLAGS_NONE, &local);
  if (!uri) {
    set_bad(error, "field \"pull_url\" is not a URL: %s", local->message);
    return false;
  }
  const char *host = g_uri_get_host(uri);
  /* The literal lower-case prefix: consumers may compare it as text. */
  if (g_strcmp0(g_uri_get_scheme(uri), "https") != 0 || !g_str_has_prefix(url, "https://")) {
    set_bad(error, "field \"pull_url\" must be an https:// URL");
    return false;
  }
  if (!host || !*host) {
    set_bad(error, "field \"pull_url\" has no host");
    return false;
  }
  if (g_uri_get_userinfo(uri)) {
    set_bad(error, "field \"pull_url\" must not carry user information");
    return false;
  }
  for (const char *p = url; *p; p++)
    if (g_ascii_isspace(*p) || (unsigned char)*p >= 0x80) {
      set_bad(error, "field \"pull_url\" must be ASCII without spaces (percent-encode the rest)");
      return false;
    }
  return true;
}

/* "sha256//" + standard base64 of a 32-byte SHA-256 (44 characters). */
static bool
check_pin_form(const char *pin, GError **error)
{
  static const char prefix[] = "sha256//";
  bool ok = g_str_has_prefix(pin, prefix);
  const char *b64 = ok ? pin + strlen(prefix) : pin;
  ok = ok && strlen(b64) == 44 && b64[43] == '=';
  for (size_t i = 0; ok && i < 43; i++)
    ok = g_ascii_isalnum(b64[i]) || b64[i] == '+' || b64[i] == '/';
  if (ok) {
    gsize len = 0;
    g_free(g_base64_decode(b64, &len));
    ok = len == 32;
  }
  if (!ok)
    set_bad(error, "field \"pull_pin\" must be sha256// and the base64 of 32 bytes");
  return ok;
}

bool
kcps__server_check_job(JsonObject *obj, kcps_server_job_req_t *out, GError **error)
{
  static const char *const fields[] = {"client_job_id", "name", "pages", "size",
                                       "sha256", "pull_url", "pull_pin", NULL};
  kcps_server_job_req_t r = {0};
  const char *sha = NULL;

  if (!kcps__server_check_fields(obj, fields, error) ||
      !kcps__server_field_string(obj, "client_job_id", 1, KCPS_SERVER_MAX_CLIENT_JOB_ID,
                                 KCPS_TEXT_PLAIN, &r.client_job_id, error))
    return false;
  if (!is_client_job_id(r.client_job_id)) {
    set_bad(error, "field \"client_job_id\" may hold only letters, digits and - . _ ~");
    return false;
  }
  /* An empty name is allowed: not every application names its documents. */
  if (!kcps__server_field_string(obj, "name", 0, KCPS_SERVER_MAX_NAME, KCPS_TEXT_PLAIN, &r.name,
                                 error) ||
      !kcps__server_field_int(obj, "pages", true, 1, KCPS_SERVER_MAX_PAGES, 0, &r.pages, error) ||
      !kcps__server_field_int(obj, "size", true, 0, KCPS_SERVER_MAX_SIZE, 0, &r.size, error) ||
      !kcps__server_field_string(obj, "sha256", 64, 64, KCPS_TEXT_PLAIN, &sha, error))
    return false;
  for (size_t i = 0; i < 64; i++) {
    if (!g_ascii_isxdigit(sha[i])) {
      set_bad(error, "field \"sha256\" must be 64 hexadecimal characters");
      return false;
    }
    r.sha256[i] = g_ascii_tolower(sha[i]);
  }
  r.sha256[64] = '\0';
  if (!kcps__server_field_string(obj, "pull_url", 9, KCPS_SERVER_MAX_URL, KCPS_TEXT_PLAIN,
                                 &r.pull_url, error) ||
      !check_https_url(r.pull_url, error) ||
      !kcps__server_field_string(obj, "pull_pin", 1, 64, KCPS_TEXT_PLAIN, &r.pull_pin, error) ||
      !check_pin_form(r.pull_pin, error))
    return false;
  *out = r;
  return true;
}

bool
kcps__server_check_device_login(JsonObject *obj, kcps_server_device_login_req_t *out,
                                GError **error)
{
  static const char *const fields[] = {"device", "secret", NULL};
  kcps_server_device_login_req_t r = {0};
  if (!kcps__server_check_fields(obj, fields, error) ||
      !kcps__server_field_string(obj, "device", 1, KCPS_SERVER_MAX_DEVICE, KCPS_TEXT_PLAIN,
                                 &r.device, error) ||
      !kcps__server_field_string(obj, "secret", 1, KCPS_SERVER_MAX_SECRET, KCPS_TEXT_PLAIN,
                                 &r.secret, error))
    return false;
  *out = r;
  return true;
}

bool
kcps__server_check_pin(JsonObject *obj, kcps_server_pin_req_t *out, GError **error)
{
  static const char *const fields[] = {"pin", NULL};
  kcps_server_pin_req_t r = {0};
  if (!kcps__server_check_fields(obj, fields, error) ||
      !kcps__server_field_string(obj, "pin", 4, 12, KCPS_TEXT_PLAIN, &r.pin, error))
    return false;
  for (const char *p = r.pin; *p; p++)
    if (!g_ascii_isdigit(*p)) {
      set_bad(error, "field \"pin\" must be 4 to 12 digits");
      return false;
    }
  *out = r;
  return true;
}

bool
kcps__server_check_log(JsonObject *obj, kcps_server_log_req_t *out, GError **error)
{
  static const char *const fields[] = {"pages", "color_pages", "duplex", "status", NULL};
  static const char *const statuses[] = {"completed", "failed", NULL};
  kcps_server_log_req_t r = {0};
  int status = 0;
  if (!kcps__server_check_fields(obj, fields, error) ||
      !kcps__server_field_int(obj, "pages", true, 0, KCPS_SERVER_MAX_PAGES, 0, &r.pages, error) ||
      !kcps__server_field_int(obj, "color_pages", false, 0, KCPS_SERVER_MAX_PAGES, 0,
                              &r.color_pages, error) ||
      !kcps__server_field_bool(obj, "duplex", false, false, &r.duplex, error) ||
      !kcps__server_field_enum(obj, "status", true, statuses, 0, &status, error))
    return false;
  if (r.color_pages > r.pages) {
    set_bad(error, "field \"color_pages\" must not exceed \"pages\"");
    return false;
  }
  r.completed = status == 0;
  *out = r;
  return true;
}

bool
kcps__server_is_uuid(const char *text)
{
  if (!text || strlen(text) != 36)
    return false;
  for (size_t i = 0; i < 36; i++) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? text[i] != '-' : !(g_ascii_isdigit(text[i]) || (text[i] >= 'a' && text[i] <= 'f')))
      return false;
  }
  return true;
}

bool
kcps__server_is_job_id(const char *text)
{
  return kcps__server_is_uuid(text);
}

/* Request framing ---------------------------------------------------------- */

bool
kcps__server_check_content_type(const char *value, GError **error)
{
  if (!value) {
    set_bad(error, "header \"Content-Type\" is missing; send application/json");
    return false;
  }
  g_auto(GStrv) parts = g_strsplit(value, ";", -1);
  g_autofree char *type = g_strstrip(g_strdup(parts[0] ? parts[0] : ""));
  if (g_ascii_strcasecmp(type, "application/json") != 0) {
    set_bad(error, "header \"Content-Type\" must be application/json");
    return false;
  }
  for (size_t i = 1; parts[i]; i++) {
    g_autofree char *param = g_strstrip(g_strdup(parts[i]));
    if (g_ascii_strncasecmp(param, "charset=", 8) != 0)
      continue;
    const char *cs = param + 8;
    size_t n = strlen(cs);
    if (n >= 2 && cs[0] == '"' && cs[n - 1] == '"') {
      cs++;
      n -= 2;
    }
    if (!(n == 5 && g_ascii_strncasecmp(cs, "utf-8", 5) == 0) &&
        !(n == 4 && g_ascii_strncasecmp(cs, "utf8", 4) == 0)) {
      set_bad(error, "header \"Content-Type\" must have charset utf-8 (JSON is UTF-8)");
      return false;
    }
  }
  return true;
}

/* A strict JSON reader that only checks: a recursive descent over the text
 * with a position, the nesting depth, and for each object the names seen. */
typedef struct {
  const char *s;
  size_t len;
  size_t pos;
  int depth;
  GError **error;
} scan_t;

static bool
scan_fail(scan_t *sc, const char *what)
{
  set_bad(sc->error, "body is not strict JSON: %s at byte %zu", what, sc->pos);
  return false;
}

static void
scan_ws(scan_t *sc)
{
  while (sc->pos < sc->len && strchr(" \t\r\n", sc->s[sc->pos]) && sc->s[sc->pos])
    sc->pos++;
}

static int
hex_value(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static bool
scan_u4(scan_t *sc, unsigned *out)
{
  if (sc->len - sc->pos < 4)
    return scan_fail(sc, "a \\u escape needs four hexadecimal digits");
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hex_value(sc->s[sc->pos + (size_t)i]);
    if (h < 0)
      return scan_fail(sc, "a \\u escape needs four hexadecimal digits");
    v = v * 16 + (unsigned)h;
  }
  sc->pos += 4;
  *out = v;
  return true;
}

/* A string at sc->pos (on its opening quote); its decoded text goes to out
 * when out is not NULL (member names, for the duplicate check). */
static bool
scan_string(scan_t *sc, GString *out)
{
  sc->pos++;
  while (sc->pos < sc->len) {
    unsigned char c = (unsigned char)sc->s[sc->pos];
    if (c == '"') {
      sc->pos++;
      return true;
    }
    if (c < 0x20)
      return scan_fail(sc, "a control character inside a string must be escaped");
    if (c != '\\') {
      if (out)
        g_string_append_c(out, (char)c);
      sc->pos++;
      continue;
    }
    sc->pos++;
    if (sc->pos >= sc->len)
      break;
    char e = sc->s[sc->pos++];
    const char *simple = strchr("\"\\/bfnrt", e);
    if (simple && e) {
      if (out)
        g_string_append_c(out, "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"]);
      continue;
    }
    if (e != 'u') {
      sc->pos--;
      return scan_fail(sc, "unknown escape in a string");
    }
    unsigned u;
    if (!scan_u4(sc, &u))
      return false;
    if (u == 0)
      return scan_fail(sc, "\\u0000 is not allowed in a string");
    if (u >= 0xdc00 && u <= 0xdfff)
      return scan_fail(sc, "a low surrogate without a high one");
    if (u >= 0xd800 && u <= 0xdbff) {
      unsigned lo;
      if (sc->len - sc->pos < 2 || sc->s[sc->pos] != '\\' || sc->s[sc->pos + 1] != 'u')
        return scan_fail(sc, "a high surrogate without a low one");
      sc->pos += 2;
      if (!scan_u4(sc, &lo))
        return false;
      if (lo < 0xdc00 || lo > 0xdfff)
        return scan_fail(sc, "a high surrogate without a low one");
      u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
    }
    if (out)
      g_string_append_unichar(out, (gunichar)u);
  }
  return scan_fail(sc, "a string is not closed");
}

static bool
scan_digits(scan_t *sc)
{
  size_t start = sc->pos;
  while (sc->pos < sc->len && g_ascii_isdigit(sc->s[sc->pos]))
    sc->pos++;
  return sc->pos > start;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool
scan_number(scan_t *sc)
{
  if (sc->s[sc->pos] == '-')
    sc->pos++;
  if (sc->pos < sc->len && sc->s[sc->pos] == '0') {
    sc->pos++;
    if (sc->pos < sc->len && (g_ascii_isdigit(sc->s[sc->pos]) || sc->s[sc->pos] == 'x' ||
                              sc->s[sc->pos] == 'X'))
      return scan_fail(sc, "numbers are decimal without leading zeros");
  } else if (!scan_digits(sc)) {
    return scan_fail(sc, "a number needs digits");
  }
  if (sc->pos < sc->len && sc->s[sc->pos] == '.') {
    sc->pos++;
    if (!scan_digits(sc))
      return scan_fail(sc, "a number needs digits after the point");
  }
  if (sc->pos < sc->len && (sc->s[sc->pos] == 'e' || sc->s[sc->pos] == 'E')) {
    sc->pos++;
    if (sc->pos < sc->len && (sc->s[sc->pos] == '+' || sc->s[sc->pos] == '-'))
      sc->pos++;
    if (!scan_digits(sc))
      return scan_fail(sc, "a number needs digits in its exponent");
  }
  return true;
}

static bool scan_value(scan_t *sc);

static bool
scan_object(scan_t *sc)
{
  g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  sc->pos++;
  scan_ws(sc);
  if (sc->pos < sc->len && sc->s[sc->pos] == '}') {
    sc->pos++;
    return true;
  }
  for (;;) {
    scan_ws(sc);
    if (sc->pos >= sc->len || sc->s[sc->pos] != '"')
      return scan_fail(sc, "a member name must be a string in double quotes");
    size_t at = sc->pos;
    GString *name = g_string_new(NULL);
    if (!scan_string(sc, name)) {
      g_string_free(name, TRUE);
      return false;
    }
    char *key = g_string_free(name, FALSE);
    if (g_hash_table_contains(seen, key)) {
      g_autofree char *shown = printable(key);
      g_free(key);
      sc->pos = at;
      set_bad(sc->error, "body is not strict JSON: field \"%s\" appears twice at byte %zu",
              shown, sc->pos);
      return false;
    }
    g_hash_table_add(seen, key);
    scan_ws(sc);
    if (sc->pos >= sc->len || sc->s[sc->pos] != ':')
      return scan_fail(sc, "a ':' must follow a member name");
    sc->pos++;
    if (!scan_value(sc))
      return false;
    scan_ws(sc);
    if (sc->pos < sc->len && sc->s[sc->pos] == ',') {
      sc->pos++;
      continue;
    }
    if (sc->pos < sc->len && sc->s[sc->pos] == '}') {
      sc->pos++;
      return true;
    }
    return scan_fail(sc, "',' or '}' expected");
  }
}

static bool
scan_array(scan_t *sc)
{
  sc->pos++;
  scan_ws(sc);
  if (sc->pos < sc->len && sc->s[sc->pos] == ']') {
    sc->pos++;
    return true;
  }
  for (;;) {
    if (!scan_value(sc))
      return false;
    scan_ws(sc);
    if (sc->pos < sc->len && sc->s[sc->pos] == ',') {
      sc->pos++;
      continue;
    }
    if (sc->pos < sc->len && sc->s[sc->pos] == ']') {
      sc->pos++;
      return true;
    }
    return scan_fail(sc, "',' or ']' expected");
  }
}

static bool
scan_word(scan_t *sc, const char *word)
{
  size_t n = strlen(word);
  if (sc->len - sc->pos < n || memcmp(sc->s + sc->pos, word, n) != 0)
    return scan_fail(sc, "a value was expected");
  sc->pos += n;
  return true;
}

static bool
scan_value(scan_t *sc)
{
  scan_ws(sc);
  if (sc->pos >= sc->len)
    return scan_fail(sc, "a value was expected");
  char c = sc->s[sc->pos];
  bool ok;
  switch (c) {
  case '{':
  case '[':
    if (++sc->depth > KCPS_SERVER_MAX_DEPTH) {
      set_bad(sc->error, "body is not strict JSON: nested deeper than %d levels at byte %zu",
              KCPS_SERVER_MAX_DEPTH, sc->pos);
      return false;
    }
    ok = c == '{' ? scan_object(sc) : scan_array(sc);
    sc->depth--;
    return ok;
  case '"':
    return scan_string(sc, NULL);
  case 't':
    return scan_word(sc, "true");
  case 'f':
    return scan_word(sc, "false");
  case 'n':
    return scan_word(sc, "null");
  default:
    if (c == '-' || g_ascii_isdigit(c))
      return scan_number(sc);
    return scan_fail(sc, "a value was expected");
  }
}

bool
kcps__server_check_json_text(const char *text, size_t len, GError **error)
{
  if (!text || len == 0) {
    set_bad(error, "body is empty, a JSON object was expected");
    return false;
  }
  const char *bad = NULL;
  if (!g_utf8_validate(text, (gssize)len, &bad)) {
    set_bad(error, "body is not UTF-8 (byte %zu)", (size_t)(bad - text));
    return false;
  }
  scan_t sc = {.s = text, .len = len, .error = error};
  if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
    sc.pos = 3;
  if (!scan_value(&sc))
    return false;
  scan_ws(&sc);
  if (sc.pos != len)
    return scan_fail(&sc, "only white space may follow the value");
  return true;
}
