/* Unit tests of common/: base64url, constant-time compare, SHA-256, tickets,
 * self-signed TLS material, and the HTTP server/client pair over real TLS. */
#include "common/crypto.h"
#include "common/http-client.h"
#include "common/http-server.h"
#include "common/json-util.h"
#include "common/ticket.h"
#include "common/tls.h"

#include <check.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *
make_tmpdir(void)
{
  char *dir = g_dir_make_tmp("kcps-test-common-XXXXXX", NULL);
  ck_assert_ptr_nonnull(dir);
  return dir;
}

static void
rm_rf(const char *dir)
{
  char *cmd = g_strdup_printf("rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
  g_free(cmd);
}

/* --- base64url, table-driven (RFC 4648 test vectors, url alphabet) --- */
START_TEST(test_base64url_vectors)
{
  static const struct {
    const char *plain, *encoded;
  } table[] = {
      {"", ""},         {"f", "Zg"},          {"fo", "Zm8"},       {"foo", "Zm9v"},
      {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}, {"\xfb\xff", "-_8"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(table); i++) {
    char *enc = kcps_base64url_encode(table[i].plain, strlen(table[i].plain));
    ck_assert_msg(strcmp(enc, table[i].encoded) == 0, "encode(%s): got %s, expected %s",
                  table[i].plain, enc, table[i].encoded);
    size_t len = 0;
    guchar *dec = kcps_base64url_decode(table[i].encoded, &len);
    ck_assert_ptr_nonnull(dec);
    ck_assert_uint_eq(len, strlen(table[i].plain));
    ck_assert(memcmp(dec, table[i].plain, len) == 0);
    g_free(enc);
    g_free(dec);
  }
}
END_TEST

START_TEST(test_base64url_rejects)
{
  static const char *bad[] = {"Zm9v+", "Zm9v/", "Z", "Zm9 v", "Zh", "Zm9vYh"};
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    guchar *dec = kcps_base64url_decode(bad[i], NULL);
    ck_assert_msg(dec == NULL, "decode(\"%s\") should fail", bad[i]);
  }
}
END_TEST

START_TEST(test_streq_and_sha256)
{
  ck_assert(kcps_crypto_streq("secret", "secret"));
  ck_assert(!kcps_crypto_streq("secret", "secreT"));
  ck_assert(!kcps_crypto_streq("secre", "secret"));
  ck_assert(!kcps_crypto_streq("secrets", "secret"));
  ck_assert(!kcps_crypto_streq(NULL, "x"));
  ck_assert(!kcps_crypto_streq("", "x"));

  char hex[65];
  kcps_crypto_sha256_hex("abc", 3, hex);
  ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

  char *dir = make_tmpdir();
  char *path = g_build_filename(dir, "f", NULL);
  ck_assert(g_file_set_contents(path, "abc", 3, NULL));
  char filehex[65];
  ck_assert(kcps_crypto_sha256_file(path, filehex, NULL));
  ck_assert_str_eq(filehex, hex);
  GError *error = NULL;
  ck_assert(!kcps_crypto_sha256_file("/nonexistent/kcps", filehex, &error));
  ck_assert_ptr_nonnull(strstr(error->message, "/nonexistent/kcps"));
  g_clear_error(&error);

  char *t1 = kcps_crypto_random_token(32), *t2 = kcps_crypto_random_token(32);
  ck_assert_uint_eq(strlen(t1), 43);
  ck_assert_str_ne(t1, t2);
  g_free(t1);
  g_free(t2);
  rm_rf(dir);
  g_free(path);
  g_free(dir);
}
END_TEST

/* --- tickets --- */
static kcps_ticket_t sample_ticket = {
    .tid = "t-1", .job = "42", .cjob = "c-7", .user = "alice@a.test", .device = "MFP-1"};

/* A refused login's lock: its end and retry_after, or 0 / -1 for any
 * other answer and for times that are missing or make no sense. */
START_TEST(test_json_locked_until)
{
  g_autoptr(GDateTime) utc = g_date_time_new_utc(2026, 11, 28, 15, 42, 0);
  gint64 at = g_date_time_to_unix(utc);
  struct {
    const char *body;
    gint64 until, after;
  } cases[] = {
    {"{\"error\":\"account_locked\",\"message\":\"m\",\"retry_after\":1800,"
     "\"retry_at\":\"2026-11-28T15:42:00Z\"}", at, 1800},
    {"{\"error\":\"account_locked\",\"retry_after\":0,"
     "\"retry_at\":\"2026-11-28T16:42:00+01:00\"}", at, 0},
    {"{\"error\":\"account_locked\",\"retry_at\":\"2026-11-28T15:42:00Z\"}", at, -1},
    {"{\"error\":\"account_locked\",\"retry_after\":\"1800\","
     "\"retry_at\":\"2026-11-28T15:42:00Z\"}", at, -1},
    {"{\"error\":\"account_locked\",\"retry_after\":-5,"
     "\"retry_at\":\"2026-11-28T15:42:00Z\"}", at, -1},
    {"{\"error\":\"account_locked\",\"retry_after\":99999999999,"
     "\"retry_at\":\"2026-11-28T15:42:00Z\"}", at, -1},
    {"{\"error\":\"account_locked\",\"retry_after\":{},"
     "\"retry_at\":\"2026-11-28T15:42:00Z\"}", at, -1},
    {"{\"error\":\"account_locked\",\"retry_after\":1800}", 0, -1},
    {"{\"error\":\"account_locked\",\"retry_at\":\"soon\"}", 0, -1},
    {"{\"error\":\"account_locked\",\"retry_at\":1800}", 0, -1},
    {"{\"error\":\"account_locked\",\"retry_at\":\"2026-13-45T99:00:00Z\"}", 0, -1},
    {"{\"error\":\"account_locked\",\"retry_at\":\"1969-12-31T00:00:00Z\"}", 0, -1},
    {"{\"error\":\"invalid_credentials\",\"retry_after\":1800,"
     "\"retry_at\":\"2026-11-28T15:42:00Z\"}", 0, -1},
    {"{\"error\":[\"account_locked\"]}", 0, -1},
    {"[\"account_locked\"]", 0, -1},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(JsonNode) body = json_from_string(cases[i].body, NULL);
    ck_assert_msg(body != NULL, "case %zu does not parse", i);
    gint64 after = 42;
    gint64 until = kcps_json_locked_until(body, &after);
    ck_assert_msg(until == cases[i].until && after == cases[i].after,
                  "case %zu: got %" G_GINT64_FORMAT "/%" G_GINT64_FORMAT ", expected %"
                  G_GINT64_FORMAT "/%" G_GINT64_FORMAT, i, until, after, cases[i].until,
                  cases[i].after);
    ck_assert_int_eq(kcps_json_locked_until(body, NULL), cases[i].until);
  }
  gint64 after = 42;
  ck_assert_int_eq(kcps_json_locked_until(NULL, &after), 0);
  ck_assert_int_eq(after, -1);
}
END_TEST

START_TEST(test_ticket_roundtrip_and_forgery)
{
  char *dir = make_tmpdir();
  char *path = g_build_filename(dir, "ticket.pem", NULL);
  char *path2 = g_build_filename(dir, "other.pem", NULL);
  GError *error = NULL;

  kcps_ticket_key_t *key = kcps_ticket_key_load_or_create(path, &error);
  ck_assert_msg(key, "key: %s", error ? error->message : "");
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_int_eq(st.st_mode & 0777, 0600);

  kcps_ticket_t t = sample_ticket;
  t.exp = 2000;
  char *text = kcps_ticket_sign(key, &t, &error);
  ck_assert_ptr_nonnull(text);

  /* Verify with the public half only, as kcpsd does. */
  char *pub = kcps_ticket_key_public_b64(key);
  kcps_ticket_key_t *verifier = kcps_ticket_key_from_public(pub, &error);
  ck_assert_ptr_nonnull(verifier);
  kcps_ticket_t *got = kcps_ticket_verify(verifier, text, 1000, &error);
  ck_assert_msg(got, "verify: %s", error ? error->message : "");
  ck_assert_str_eq(got->tid, "t-1");
  ck_assert_str_eq(got->cjob, "c-7");
  ck_assert_str_eq(got->user, "alice@a.test");
  ck_assert_int_eq(got->exp, 2000);
  kcps_ticket_free(got);

  /* A public key cannot sign. */
  ck_assert_ptr_null(kcps_ticket_sign(verifier, &t, &error));
  g_clear_error(&error);

  /* Expired. */
  ck_assert_ptr_null(kcps_ticket_verify(verifier, text, 2000, &error));
  ck_assert_int_eq(error->code, KCPS_CRYPTO_ERROR_EXPIRED);
  g_clear_error(&error);

  /* Signed by another key. */
  kcps_ticket_key_t *other = kcps_ticket_key_load_or_create(path2, &error);
  char *forged = kcps_ticket_sign(other, &t, &error);
  ck_assert_ptr_null(kcps_ticket_verify(verifier, forged, 1000, &error));
  ck_assert_int_eq(error->code, KCPS_CRYPTO_ERROR_SIGNATURE);
  g_clear_error(&error);

  /* Payload altered, signature kept. */
  kcps_ticket_t t2 = t;
  t2.cjob = "c-8";
  char *other_payload = kcps_ticket_sign(key, &t2, &error);
  char *spliced = g_strconcat(strtok(g_strdup(other_payload), "."), strchr(text, '.'), NULL);
  ck_assert_ptr_null(kcps_ticket_verify(verifier, spliced, 1000, &error));
  ck_assert_int_eq(error->code, KCPS_CRYPTO_ERROR_SIGNATURE);
  g_clear_error(&error);

  /* Malformed forms. */
  static const char *bad[] = {"", "abc", "a.b.c", ".", "abc.!!!"};
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    ck_assert_ptr_null(kcps_ticket_verify(verifier, bad[i], 1000, &error));
    ck_assert_msg(error->code == KCPS_CRYPTO_ERROR_MALFORMED, "\"%s\": got code %d", bad[i],
                  error->code);
    g_clear_error(&error);
  }

  /* Reloading gives the same key. */
  kcps_ticket_key_t *again = kcps_ticket_key_load_or_create(path, &error);
  char *pub2 = kcps_ticket_key_public_b64(again);
  ck_assert_str_eq(pub, pub2);

  /* Not-a-key files and bad public keys are named errors. */
  ck_assert_ptr_null(kcps_ticket_key_from_public("abc", &error));
  g_clear_error(&error);
  char *junk = g_build_filename(dir, "junk.pem", NULL);
  g_file_set_contents(junk, "not a key", -1, NULL);
  ck_assert_ptr_null(kcps_ticket_key_load_or_create(junk, &error));
  ck_assert_ptr_nonnull(strstr(error->message, "Ed25519"));
  g_clear_error(&error);

  g_free(junk);
  g_free(pub2);
  kcps_ticket_key_free(again);
  g_free(spliced);
  g_free(other_payload);
  g_free(forged);
  kcps_ticket_key_free(other);
  g_free(pub);
  g_free(text);
  kcps_ticket_key_free(verifier);
  kcps_ticket_key_free(key);
  rm_rf(dir);
  g_free(path);
  g_free(path2);
  g_free(dir);
}
END_TEST

/* --- HTTP server + client over real TLS --- */
typedef struct {
  int calls;
  char *file;
} echo_ctx_t;

static void
echo_handler(kcps_http_req_t *req, void *data)
{
  echo_ctx_t *ctx = data;
  ctx->calls++;
  const char *path = kcps_http_req_path(req);

  if (strcmp(path, "/echo") == 0) {
    GError *error = NULL;
    JsonObject *obj = kcps_http_req_json(req, &error);
    if (!obj) {
      kcps_http_respond_error(req, 400, "bad_request", "%s", error->message);
      g_clear_error(&error);
      return;
    }
    JsonNode *node = json_node_alloc();
    json_node_init_object(node, obj);
    json_object_set_string_member(obj, "bearer",
                                  kcps_http_req_bearer(req) ? kcps_http_req_bearer(req) : "");
    kcps_http_respond_json(req, 200, node);
    json_node_unref(node);
  } else if (strcmp(path, "/file") == 0) {
    int fd = open(ctx->file, O_RDONLY);
    struct stat st;
    fstat(fd, &st);
    kcps_http_respond_fd(req, 200, "application/pdf", fd, (guint64)st.st_size);
  } else if (strcmp(path, "/silent") == 0) {
    /* no answer: the server must say 500 */
  } else {
    kcps_http_respond_error(req, 404, "not_found", "no route %s", path);
  }
}

START_TEST(test_http_tls_roundtrip)
{
  char *dir = make_tmpdir();
  char *cert = g_build_filename(dir, "c.crt", NULL);
  char *key = g_build_filename(dir, "c.key", NULL);
  const char *names[] = {"localhost", "127.0.0.1", "::1", NULL};
  GError *error = NULL;

  ck_assert_msg(kcps_tls_ensure_self_signed(cert, key, names, &error), "tls: %s",
                error ? error->message : "");
  struct stat st;
  ck_assert_int_eq(stat(key, &st), 0);
  ck_assert_int_eq(st.st_mode & 0777, 0600);
  char *pin = kcps_tls_spki_pin(cert, &error);
  ck_assert_ptr_nonnull(pin);
  ck_assert(g_str_has_prefix(pin, "sha256//"));

  /* Existing material is kept. */
  char *pin_again = NULL;
  ck_assert(kcps_tls_ensure_self_signed(cert, key, names, &error));
  pin_again = kcps_tls_spki_pin(cert, NULL);
  ck_assert_str_eq(pin, pin_again);

  echo_ctx_t ctx = {0};
  ctx.file = g_build_filename(dir, "doc.bin", NULL);
  ck_assert(g_file_set_contents(ctx.file, "%PDF-1.4 test bytes", -1, NULL));

  const char *listen[] = {"127.0.0.1:0", "[::1]:0", NULL};
  kcps_http_config_t cfg = {.listen = listen, .cert_path = cert, .key_path = key,
                            .max_body = 4096};
  kcps_http_server_t *server = kcps_http_server_new(&cfg, echo_handler, &ctx, &error);
  ck_assert_msg(server, "server: %s", error ? error->message : "");
  int port = kcps_http_server_port(server, 0);
  int port6 = kcps_http_server_port(server, 1);
  ck_assert_int_gt(port, 0);
  ck_assert_int_gt(port6, 0);

  char *url = g_strdup_printf("https://127.0.0.1:%d/echo", port);
  kcps_http_opts_t opts = {.ca_file = cert, .bearer = "tok"};
  JsonNode *body = kcps_json_parse_object("{\"a\":\"b\",\"n\":3}", -1, NULL);
  JsonNode *resp = NULL;
  long status = 0;
  kcps_net_status_t rc = kcps_http_call_json("POST", url, &opts, body, &status, &resp, &error);
  ck_assert_msg(rc == KCPS_NET_OK, "echo: %d %s", rc, error ? error->message : "");
  ck_assert_int_eq(status, 200);
  JsonObject *obj = json_node_get_object(resp);
  ck_assert_str_eq(kcps_json_string(obj, "a"), "b");
  ck_assert_str_eq(kcps_json_string(obj, "bearer"), "tok");
  gint64 n = 0;
  ck_assert(kcps_json_int(obj, "n", &n) && n == 3);
  ck_assert(!kcps_json_int(obj, "a", &n));
  ck_assert_ptr_null(kcps_json_string(obj, "n"));
  json_node_unref(resp);

  /* IPv6 loopback with the same certificate. */
  char *url6 = g_strdup_printf("https://[::1]:%d/echo", port6);
  rc = kcps_http_call_json("POST", url6, &opts, body, &status, NULL, &error);
  ck_assert_msg(rc == KCPS_NET_OK, "echo6: %s", error ? error->message : "");

  /* Malformed JSON: the handler's 400 and its message come back. */
  rc = kcps_http_call_json("POST", url, &opts, NULL, &status, &resp, &error);
  ck_assert_int_eq(rc, KCPS_NET_FATAL);
  ck_assert_int_eq(status, 400);
  ck_assert_ptr_nonnull(strstr(error->message, "empty"));
  g_clear_error(&error);
  json_node_unref(resp);

  /* A body over max_body is refused before the handler runs. */
  int calls = ctx.calls;
  GString *big = g_string_new("{\"x\":\"");
  for (int i = 0; i < 5000; i++)
    g_string_append_c(big, 'x');
  g_string_append(big, "\"}");
  JsonNode *bignode = kcps_json_parse_object(big->str, -1, NULL);
  rc = kcps_http_call_json("POST", url, &opts, bignode, &status, NULL, &error);
  ck_assert_int_eq(status, 413);
  ck_assert_int_eq(ctx.calls, calls);
  g_clear_error(&error);

  /* A handler that does not answer gives 500. */
  char *silent = g_strdup_printf("https://127.0.0.1:%d/silent", port);
  rc = kcps_http_call_json("GET", silent, &opts, NULL, &status, NULL, &error);
  ck_assert_int_eq(status, 500);
  ck_assert_int_eq(rc, KCPS_NET_RETRY);
  g_clear_error(&error);

  /* Without the CA the certificate is refused. */
  kcps_http_opts_t noca = {.ca_file = "/etc/ssl/certs/ca-certificates.crt"};
  rc = kcps_http_call_json("POST", url, &noca, body, &status, NULL, &error);
  ck_assert_int_eq(rc, KCPS_NET_FATAL);
  ck_assert_int_eq(status, 0);
  g_clear_error(&error);

  /* Pinned download streams the exact bytes; a wrong pin is refused. */
  char *fileurl = g_strdup_printf("https://127.0.0.1:%d/file", port);
  char *out = g_build_filename(dir, "out.bin", NULL);
  int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  kcps_http_opts_t pinned = {.pinned_key = pin};
  rc = kcps_http_download(fileurl, &pinned, fd, &status, &error);
  close(fd);
  ck_assert_msg(rc == KCPS_NET_OK, "download: %s", error ? error->message : "");
  char *got = NULL;
  g_file_get_contents(out, &got, NULL, NULL);
  ck_assert_str_eq(got, "%PDF-1.4 test bytes");
  g_free(got);

  fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  kcps_http_opts_t badpin = {.pinned_key = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="};
  rc = kcps_http_download(fileurl, &badpin, fd, &status, &error);
  close(fd);
  ck_assert_int_eq(rc, KCPS_NET_FATAL);
  g_clear_error(&error);

  /* An error answer of a download does not land in the file. */
  char *missing = g_strdup_printf("https://127.0.0.1:%d/nothing", port);
  fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  rc = kcps_http_download(missing, &pinned, fd, &status, &error);
  close(fd);
  ck_assert_int_eq(status, 404);
  ck_assert_ptr_nonnull(strstr(error->message, "no route"));
  g_clear_error(&error);
  ck_assert(g_file_get_contents(out, &got, NULL, NULL));
  ck_assert_str_eq(got, "");
  g_free(got);

  /* A bad listen address is a named error. */
  const char *badlisten[] = {"nonsense", NULL};
  kcps_http_config_t badcfg = {.listen = badlisten};
  ck_assert_ptr_null(kcps_http_server_new(&badcfg, echo_handler, &ctx, &error));
  ck_assert_ptr_nonnull(strstr(error->message, "nonsense"));
  g_clear_error(&error);

  kcps_http_server_free(server);

  /* Nothing listens any more: a retryable failure. */
  rc = kcps_http_call_json("GET", url, &opts, NULL, &status, NULL, &error);
  ck_assert_int_eq(rc, KCPS_NET_RETRY);
  g_clear_error(&error);

  json_node_unref(bignode);
  g_string_free(big, TRUE);
  json_node_unref(body);
  g_free(missing);
  g_free(silent);
  g_free(out);
  g_free(fileurl);
  g_free(url);
  g_free(url6);
  g_free(ctx.file);
  g_free(pin);
  g_free(pin_again);
  rm_rf(dir);
  g_free(cert);
  g_free(key);
  g_free(dir);
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("common");
  TCase *tc = tcase_create("crypto");
  tcase_add_test(tc, test_base64url_vectors);
  tcase_add_test(tc, test_base64url_rejects);
  tcase_add_test(tc, test_streq_and_sha256);
  tcase_add_test(tc, test_json_locked_until);
  suite_add_tcase(s, tc);
  tc = tcase_create("ticket");
  tcase_add_test(tc, test_ticket_roundtrip_and_forgery);
  suite_add_tcase(s, tc);
  tc = tcase_create("http");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_http_tls_roundtrip);
  suite_add_tcase(s, tc);

  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
