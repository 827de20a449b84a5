/* Fuzz target: what an OpenID provider sends kcps-server — its discovery
 * document, its key set (JWKS) and ID tokens. Input: "D" + a discovery
 * document, or "T" + an ID token + "\n" + a JWKS. Either is accepted with
 * sane results (https endpoints; claims with a short sub) or refused with
 * a KCPS_OIDC_ERROR whose message is printable ASCII. The clock is fixed so
 * the signed seeds stay valid. */
#include "server-stub/server-oidc.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FIXED_NOW 1700000100

static void
check_refusal(const GError *error)
{
  if (!error || error->domain != KCPS_OIDC_ERROR || error->code < 0 ||
      error->code > KCPS_OIDC_ERROR_CLAIMS)
    __builtin_trap();
  for (const char *p = error->message; *p; p++)
    if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
      __builtin_trap();
  (void)kcps__oidc_step_name(error->code);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  GError *error = NULL;
  const char *text = (const char *)data + 1;
  size_t len = size - 1;
  if (data[0] == 'D') {
    kcps_oidc_discovery_t d;
    if (kcps__oidc_parse_discovery(text, len, "https://idp.test", &d, &error)) {
      if (error || !g_str_has_prefix(d.authorization_endpoint, "https://") ||
          !g_str_has_prefix(d.token_endpoint, "https://") ||
          !g_str_has_prefix(d.jwks_uri, "https://"))
        __builtin_trap();
      kcps__oidc_discovery_clear(&d);
    } else {
      check_refusal(error);
    }
  } else if (data[0] == 'T') {
    const char *nl = memchr(text, '\n', len);
    char *token = g_strndup(text, nl ? (size_t)(nl - text) : len);
    const char *jwks = nl ? nl + 1 : "";
    size_t jwks_len = nl ? len - (size_t)(nl + 1 - text) : 0;
    kcps_oidc_expect_t expect = {"https://idp.test", "kcps-fuzz", "n-fuzz", FIXED_NOW};
    JsonNode *claims = kcps__oidc_verify_id_token(token, jwks, jwks_len, &expect, &error);
    if (claims) {
      JsonNode *sub = json_object_get_member(json_node_get_object(claims), "sub");
      if (error || !sub || strlen(json_node_get_string(sub)) == 0 ||
          strlen(json_node_get_string(sub)) > 255)
        __builtin_trap();
      json_node_unref(claims);
    } else {
      check_refusal(error);
    }
    g_free(token);
  }
  g_clear_error(&error);
  return 0;
}
