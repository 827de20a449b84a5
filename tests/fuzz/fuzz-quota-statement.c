/* Fuzz target: quota statements (common/quota-statement.c), which kcpsd
 * reads from the server and from its state folder. Two ways in: the input
 * as a whole statement (form and signature checks), and the input as a
 * payload signed with a key of this run, which reaches the payload parser
 * behind the signature. */
#include "common/quota-statement.h"
#include "common/ticket.h"

#include <glib/gstdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *key_dir, *key_path, *key_pub;

static void remove_key(void)
{
  g_unlink(key_path);
  g_rmdir(key_dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (key_dir == NULL) {
    key_dir = g_dir_make_tmp("kcps-fuzz-quota-XXXXXX", NULL);
    if (key_dir == NULL)
      __builtin_trap();
    key_path = g_build_filename(key_dir, "key.pem", NULL);
    kcps_ticket_key_t *key = kcps_ticket_key_load_or_create(key_path, NULL);
    if (key == NULL)
      __builtin_trap();
    key_pub = kcps_ticket_key_public_b64(key);
    kcps_ticket_key_free(key);
    atexit(remove_key);
  }
  char *text = g_strndup((const char *)data, size);
  kcps_quota_statement_t st;
  GError *error = NULL;
  /* Unsigned input never verifies. */
  if (kcps_quota_statement_verify(key_pub, text, 0, &st, &error))
    __builtin_trap();
  if (error == NULL || error->message[0] == '\0')
    __builtin_trap();
  g_clear_error(&error);

  if (strlen(text) == size && size <= 2048) {
    char *signed_text = kcps_quota_statement_sign(key_path, text, NULL);
    if (signed_text == NULL)
      __builtin_trap();
    bool ok = kcps_quota_statement_verify(key_pub, signed_text, 0, &st, &error);
    if (ok && (st.user[0] == '\0' || st.start >= st.end || st.exp <= 0))
      __builtin_trap();
    if (!ok && error == NULL)
      __builtin_trap();
    if (ok)
      (void)kcps_quota_statement_left(&st, true, (gint64)size, 1);
    g_clear_error(&error);
    g_free(signed_text);
  }
  g_free(text);
  return 0;
}
