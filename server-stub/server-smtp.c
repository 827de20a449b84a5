/* Outgoing mail through the relay of --smtp-url (libcurl SMTP): builds the
 * RFC 5322 message and hands it over with TLS verified. */
#include "server-smtp.h"

#include "server-private.h"

#include "common/crypto.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <string.h>

#define CONNECT_TIMEOUT_S 10L
#define TOTAL_TIMEOUT_S 30L

bool
kcps__server_smtp_address_ok(const char *address)
{
  size_t len = address ? strlen(address) : 0;
  if (len < 3 || len > 254)
    return false;
  const char *at = strchr(address, '@');
  if (!at || at == address || at[1] == '\0' || strchr(at + 1, '@'))
    return false;
  for (const unsigned char *p = (const unsigned char *)address; *p; p++)
    if (*p <= 0x20 || *p >= 0x7f || strchr("<>()[]\\\",;:", *p))
      return false;
  return true;
}

static bool
fail(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static bool
fail(GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error_literal(error, KCPS_SERVER_ERROR, KCPS_SERVER_ERROR_CONFIG, msg);
  return false;
}

/* RFC 5322 date-time in UTC; English names whatever the locale. */
static char *
rfc5322_date(void)
{
  static const char *const days[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  g_autoptr(GDateTime) now = g_date_time_new_now_utc();
  return g_strdup_printf("%s, %02d %s %04d %02d:%02d:%02d +0000",
                         days[g_date_time_get_day_of_week(now) - 1],
                         g_date_time_get_day_of_month(now),
                         months[g_date_time_get_month(now) - 1], g_date_time_get_year(now),
                         g_date_time_get_hour(now), g_date_time_get_minute(now),
                         g_date_time_get_second(now));
}

/* The whole message with CRLF line ends; the body's lines converted. */
static char *
build_message(const char *from, const char *to, const char *subject, const char *body)
{
  g_autofree char *date = rfc5322_date();
  g_autofree char *unique = kcps_crypto_random_token(18);
  GString *m = g_string_new(NULL);
  g_string_append_printf(m,
                         "Date: %s\r\n"
                         "From: %s\r\n"
                         "To: %s\r\n"
                         "Subject: %s\r\n"
                         "Message-ID: <%s%s>\r\n"
                         "MIME-Version: 1.0\r\n"
                         "Content-Type: text/plain; charset=UTF-8\r\n"
                         "Content-Transfer-Encoding: 8bit\r\n"
                         "Auto-Submitted: auto-generated\r\n"
                         "\r\n",
                         date, from, to, subject, unique ? unique : "kcps", strchr(from, '@'));
  for (const char *p = body; *p; p++) {
    if (*p == '\n' && (p == body || p[-1] != '\r'))
      g_string_append_c(m, '\r');
    g_string_append_c(m, *p);
  }
  if (m->len < 2 || strcmp(m->str + m->len - 2, "\r\n") != 0)
    g_string_append(m, "\r\n");
  return g_string_free(m, FALSE);
}

typedef struct {
  const char *data;
  size_t len;
  size_t pos;
} upload_t;

static size_t
read_cb(char *buf, size_t size, size_t n, void *data)
{
  upload_t *up = data;
  size_t want = MIN(size * n, up->len - up->pos);
  memcpy(buf, up->data + up->pos, want);
  up->pos += want;
  return want;
}

/* Adds the extra CA file to the system ones (CURLOPT_CAINFO would replace
 * the default bundle). */
static CURLcode
ssl_ctx_cb(CURL *curl, void *ssl_ctx, void *data)
{
  (void)curl;
  X509_STORE *store = SSL_CTX_get_cert_store(ssl_ctx);
  return store && X509_STORE_load_file(store, data) == 1 ? CURLE_OK
                                                         : CURLE_SSL_CACERT_BADFILE;
}

static void
global_init(void)
{
  static gsize done = 0;
  if (g_once_init_enter(&done)) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    g_once_init_leave(&done, 1);
  }
}

bool
kcps__server_smtp_send(const kcps_server_t *server, const char *to, const char *subject,
                       const char *body, GError **error)
{
  const char *url = server->smtp_url;
  if (!url || !*url)
    return fail(error, "no mail relay is configured (--smtp-url)");
  if (!g_str_has_prefix(url, "smtp://") && !g_str_has_prefix(url, "smtps://"))
    return fail(error, "the mail relay URL must start with smtp:// or smtps://");
  if (!kcps__server_smtp_address_ok(server->smtp_from))
    return fail(error, "the sender address (--smtp-from) is not a plain address");
  if (!kcps__server_smtp_address_ok(to))
    return fail(error, "the recipient address is not a plain address");
  for (const char *p = subject; *p; p++)
    if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
      return fail(error, "the subject must be printable ASCII");

  /* Credentials in the URL are never sent without TLS. */
  bool credentials = false;
  CURLU *u = curl_url();
  char *user = NULL;
  if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK && user && *user)
    credentials = true;
  curl_free(user);
  curl_url_cleanup(u);

  global_init();
  CURL *curl = curl_easy_init();
  if (!curl)
    return fail(error, "mail: no libcurl handle");
  char *message = build_message(server->smtp_from, to, subject, body);
  upload_t up = {message, strlen(message), 0};
  g_autofree char *from = g_strdup_printf("<%s>", server->smtp_from);
  g_autofree char *rcpt_text = g_strdup_printf("<%s>", to);
  struct curl_slist *rcpt = curl_slist_append(NULL, rcpt_text);
  char errbuf[CURL_ERROR_SIZE] = "";

  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  curl_easy_setopt(curl, CURLOPT_USE_SSL,
                   credentials ? (long)CURLUSESSL_ALL : (long)CURLUSESSL_TRY);
  curl_easy_setopt(curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  if (server->smtp_ca_file &&
      (curl_easy_setopt(curl, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb) != CURLE_OK ||
       curl_easy_setopt(curl, CURLOPT_SSL_CTX_DATA, server->smtp_ca_file) != CURLE_OK))
    curl_easy_setopt(curl, CURLOPT_CAINFO, server->smtp_ca_file); /* not OpenSSL */
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, TOTAL_TIMEOUT_S);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_MAIL_FROM, from);
  curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpt);
  curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_cb);
  curl_easy_setopt(curl, CURLOPT_READDATA, &up);
  curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)up.len);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  CURLcode rc = curl_easy_perform(curl);
  long reply = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply);

  curl_slist_free_all(rcpt);
  curl_easy_cleanup(curl);
  OPENSSL_cleanse(message, up.len);
  g_free(message);
  if (rc != CURLE_OK)
    return fail(error, "mail relay: %s%s%s (last reply %ld)", curl_easy_strerror(rc),
                *errbuf ? ": " : "", errbuf, reply);
  return true;
}
