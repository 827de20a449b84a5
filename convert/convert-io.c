/* Buffered reading of the incoming document from a fd (pipe or file). */
#include "convert/convert-private.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

void kcps__reader_init(kcps_reader_t *r, int fd) {
  r->fd = fd;
  r->eof = r->failed = false;
  r->errno_saved = 0;
  r->pos = r->len = 0;
  r->consumed = 0;
}

static bool fill(kcps_reader_t *r) {
  if (r->eof || r->failed)
    return false;
  for (;;) {
    ssize_t n = read(r->fd, r->buf, sizeof r->buf);
    if (n > 0) {
      r->pos = 0;
      r->len = (size_t)n;
      return true;
    }
    if (n == 0) {
      r->eof = true;
      return false;
    }
    if (errno != EINTR) {
      r->failed = true;
      r->errno_saved = errno;
      return false;
    }
  }
}

size_t kcps__reader_read(kcps_reader_t *r, void *dst, size_t n) {
  unsigned char *out = dst;
  size_t done = 0;
  while (done < n) {
    if (r->pos == r->len && !fill(r))
      break;
    size_t take = MIN(n - done, r->len - r->pos);
    memcpy(out + done, r->buf + r->pos, take);
    r->pos += take;
    done += take;
  }
  r->consumed += done;
  return done;
}

int kcps__reader_byte(kcps_reader_t *r) {
  if (r->pos == r->len && !fill(r))
    return -1;
  r->consumed++;
  return r->buf[r->pos++];
}

void kcps__reader_short(kcps_reader_t *r, const char *what, GError **error) {
  if (r->failed)
    g_set_error(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_IO, "reading the document: %s",
                g_strerror(r->errno_saved));
  else
    g_set_error(error, KCPS_CONVERT_ERROR, KCPS_CONVERT_ERROR_TRUNCATED,
                "the document ends inside %s (after %" G_GUINT64_FORMAT " bytes)", what,
                r->consumed);
}
