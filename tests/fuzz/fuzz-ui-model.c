/* Fuzz target: what the tray believes of kcpsd's answers on 5572 (another
 * local process could be listening there): the bodies of GET /v1/status and
 * GET /v1/jobs, parsed and then formatted as the windows show them; the
 * first part also as a refused login's answer (account_locked, retry_at);
 * each job's name searched for in the jobs window's search.
 * Input: "status-json\n\x1ejobs-json" (the record separator splits them). */
#include "common/json-util.h"
#include "ui/tray-model.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static JsonNode *parse(const char *text, size_t len)
{
  g_autoptr(JsonParser) parser = json_parser_new();
  if (!json_parser_load_from_data(parser, text, (gssize)len, NULL))
    return NULL;
  JsonNode *root = json_parser_get_root(parser);
  return root != NULL ? json_node_copy(root) : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *text = (const char *)data;
  const char *sep = memchr(text, 0x1e, size);
  size_t status_len = sep != NULL ? (size_t)(sep - text) : size;
  const char *jobs_text = sep != NULL ? sep + 1 : "";
  size_t jobs_len = sep != NULL ? size - status_len - 1 : 0;

  kcps_tray_status_t status;
  memset(&status, 0, sizeof status);
  JsonNode *node = parse(text, status_len);
  if (node != NULL) {
    GError *error = NULL;
    bool ok = kcps_tray_status_parse(node, &status, &error);
    /* Accepted: kcpsd answered; refused: a message naming the member, and
     * nothing kept. */
    if (ok ? !status.reachable : (error == NULL || status.user != NULL || status.email != NULL))
      __builtin_trap();
    g_clear_error(&error);
    json_node_unref(node);
  }

  /* The same bytes as a refused login's answer: the lock's end, and the
   * sentence the login window shows (a fallback for any garbage). */
  node = parse(text, status_len);
  if (node != NULL) {
    gint64 after = 0;
    gint64 until = kcps_json_locked_until(node, &after);
    g_autofree char *locked = kcps_tray_locked_message(until, 1795000000);
    if (until < 0 || after < -1 || after > KCPS_JSON_RETRY_AFTER_MAX
        || (until == 0 && after != -1) || locked == NULL || !g_utf8_validate(locked, -1, NULL))
      __builtin_trap();
    json_node_unref(node);
  }

  g_autoptr(GDateTime) now = g_date_time_new_from_unix_utc(1795000000);
  guint waiting = 0;
  node = parse(jobs_text, jobs_len);
  if (node != NULL) {
    GPtrArray *jobs = kcps_tray_jobs_parse(node, NULL);
    if (jobs != NULL) {
      for (guint i = 0; i < jobs->len; i++) {
        const kcps_tray_job_info_t *job = g_ptr_array_index(jobs, i);
        if (job->id == NULL)
          __builtin_trap();
        g_autofree char *summary = kcps_tray_job_summary(job, now);
        if (summary == NULL || !g_utf8_validate(summary, -1, NULL))
          __builtin_trap();
        if (kcps_tray_job_is_waiting(job->state))
          waiting++;
        /* The search, with the job's own name as the text: it finds itself. */
        g_auto(GStrv) words = kcps_tray_search_words(job->name);
        const char *label = kcps_tray_state_label(job->state);
        if (!kcps_tray_job_matches(words, job->name, label))
          __builtin_trap();
      }
      /* The notices: against nothing, itself and an empty read (ids,
       * names and expiry times from the input). */
      g_autoptr(GPtrArray) empty = g_ptr_array_new();
      g_autoptr(GHashTable) warned = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
      GPtrArray *befores[] = {NULL, jobs, empty};
      for (size_t b = 0; b < G_N_ELEMENTS(befores); b++) {
        g_autoptr(GPtrArray) notices = kcps_tray_notices(befores[b], jobs, warned, now);
        for (guint i = 0; i < notices->len; i++) {
          const kcps_tray_notice_t *n = g_ptr_array_index(notices, i);
          if (n->id == NULL || !g_utf8_validate(n->body, -1, NULL))
            __builtin_trap();
        }
      }
      g_ptr_array_unref(jobs);
    }
    json_node_unref(node);
  }
  (void)kcps_tray_icon_name(kcps_tray_icon_state(&status, waiting));
  kcps_tray_status_clear(&status);
  return 0;
}
