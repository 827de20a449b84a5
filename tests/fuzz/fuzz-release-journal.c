/* Fuzz target: the release journal (STATE_DIR/releases.jsonl). kcpsd wrote
 * the file itself, but a kill mid-write tears it and a disk may damage it:
 * each line goes through the line parser; what it takes must come back the
 * same from its own line (write, parse, write again: identical), and the
 * job-name tag of its id must match itself. */
#include "client/release.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *text = (const char *)data;
  size_t pos = 0;
  while (pos < size) {
    const char *nl = memchr(text + pos, '\n', size - pos);
    size_t n = nl != NULL ? (size_t)(nl - (text + pos)) : size - pos;
    GError *error = NULL;
    kcps_release_record_t *rec = kcps_release_journal_parse_line(text + pos, n, &error);
    if (rec == NULL) {
      if (error == NULL || error->message[0] == '\0')
        __builtin_trap();
      g_clear_error(&error);
    } else {
      if (error != NULL || rec->copies < 1 || rec->copies > 999 || rec->printer_job_id < 0
          || rec->pages < 0 || strlen(rec->id) < 8)
        __builtin_trap();
      char *line = kcps_release_journal_line(rec);
      size_t len = strlen(line);
      kcps_release_record_t *again = kcps_release_journal_parse_line(line, len - 1, &error);
      if (again == NULL)
        __builtin_trap();
      char *line2 = kcps_release_journal_line(again);
      if (strcmp(line, line2) != 0)
        __builtin_trap();
      char *name = kcps_release_job_name(rec->job_id, rec->id);
      if (strlen(name) > 255 || !kcps_release_job_matches(rec->id, NULL, name, NULL))
        __builtin_trap();
      g_free(name);
      g_free(line);
      g_free(line2);
      kcps_release_record_free(again);
      kcps_release_record_free(rec);
    }
    pos += n + 1;
  }
  return 0;
}
