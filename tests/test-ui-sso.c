/* Unit tests of the tray's single sign-on logic (common/sso-loopback.c): PKCE S256
 * against RFC 7636's own example, the start address, and the loopback
 * redirect's request parser (right state and code, wrong state, another
 * path, the provider's error, junk, partial requests). */
#include "common/sso-loopback.h"

#include <check.h>
#include <string.h>

START_TEST(test_challenge_rfc7636)
{
  /* RFC 7636 appendix B. */
  g_autofree char *challenge =
    kcps_sso_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
  ck_assert_str_eq(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}
END_TEST

START_TEST(test_random)
{
  g_autofree char *a = kcps_sso_random();
  g_autofree char *b = kcps_sso_random();
  ck_assert_ptr_nonnull(a);
  ck_assert_uint_eq(strlen(a), 43);
  ck_assert_str_ne(a, b);
  for (const char *p = a; *p; p++)
    ck_assert(g_ascii_isalnum(*p) || *p == '-' || *p == '_');
}
END_TEST

START_TEST(test_start_url)
{
  g_autofree char *url = kcps_sso_start_url("https://kcps.example:8443/", "org-1", 40000,
                                                 "st", "ch", NULL);
  ck_assert_str_eq(url, "https://kcps.example:8443/api/v1/sso/org-1/start?redirect_uri="
                        "http%3A%2F%2F127.0.0.1%3A40000%2Fkcps-sso%3Fstate%3Dst"
                        "&code_challenge=ch&code_challenge_method=S256");
  g_autofree char *hinted = kcps_sso_start_url("https://k", "o", 1, "s", "c",
                                                    "first.last+x@example.com&a=b");
  ck_assert_str_eq(hinted, "https://k/api/v1/sso/o/start?redirect_uri="
                           "http%3A%2F%2F127.0.0.1%3A1%2Fkcps-sso%3Fstate%3Ds"
                           "&code_challenge=c&code_challenge_method=S256"
                           "&login_hint=first.last%2Bx%40example.com%26a%3Db");
  ck_assert_ptr_null(kcps_sso_start_url("https://k", "", 1, "s", "c", NULL));
  ck_assert_ptr_null(kcps_sso_start_url("https://k", "a/../b", 1, "s", "c", NULL));
  ck_assert_ptr_null(kcps_sso_start_url("https://k", "a?x", 1, "s", "c", NULL));
  ck_assert_ptr_null(kcps_sso_start_url("https://k", "org", 0, "s", "c", NULL));
}
END_TEST

START_TEST(test_preset_fits)
{
  ck_assert(kcps_sso_preset_fits("entra", "entra"));
  ck_assert(kcps_sso_preset_fits("google", "google"));
  ck_assert(!kcps_sso_preset_fits("entra", "google"));
  ck_assert(!kcps_sso_preset_fits("google", "entra"));
  ck_assert(!kcps_sso_preset_fits("google", "generic"));
  ck_assert(kcps_sso_preset_fits(NULL, "generic"));
  ck_assert(kcps_sso_preset_fits(NULL, "entra"));
  ck_assert(!kcps_sso_preset_fits(NULL, "okta"));
  ck_assert(!kcps_sso_preset_fits(NULL, NULL));
  ck_assert(!kcps_sso_preset_fits("entra", NULL));
}
END_TEST

static kcps_sso_result_t parse(const char *request, char **code, char **error)
{
  return kcps_sso_parse_request(request, strlen(request), "S1", code, error);
}

START_TEST(test_parse)
{
  char *code = NULL, *error = NULL;
  ck_assert_int_eq(parse("GET /kcps-sso?state=S1&code=abc%2D1 HTTP/1.1\r\nHost: x\r\n\r\n",
                         &code, &error), KCPS_SSO_CODE);
  ck_assert_str_eq(code, "abc-1");
  ck_assert_ptr_null(error);
  g_free(code);
  /* The order of the parameters does not matter. */
  ck_assert_int_eq(parse("GET /kcps-sso?code=xyz&state=S1 HTTP/1.0\n", &code, &error),
                   KCPS_SSO_CODE);
  ck_assert_str_eq(code, "xyz");
  g_free(code);
  /* Another state, none, twice; another path, method, junk. */
  ck_assert_int_eq(parse("GET /kcps-sso?state=S2&code=x HTTP/1.1\r\n", &code, &error),
                   KCPS_SSO_BAD);
  ck_assert_int_eq(parse("GET /kcps-sso?state=S&code=x HTTP/1.1\r\n", &code, &error),
                   KCPS_SSO_BAD);
  ck_assert_int_eq(parse("GET /kcps-sso?code=x HTTP/1.1\r\n", &code, &error),
                   KCPS_SSO_BAD);
  ck_assert_int_eq(parse("GET /kcps-sso?state=S1&state=S1&code=x HTTP/1.1\r\n", &code, &error),
                   KCPS_SSO_BAD);
  ck_assert_int_eq(parse("GET /other?state=S1&code=x HTTP/1.1\r\n", &code, &error),
                   KCPS_SSO_BAD);
  ck_assert_int_eq(parse("GET /kcps-sso/x?state=S1&code=x HTTP/1.1\r\n", &code, &error),
                   KCPS_SSO_BAD);
  ck_assert_int_eq(parse("POST /kcps-sso?state=S1&code=x HTTP/1.1\r\n", &code, &error),
                   KCPS_SSO_BAD);
  ck_assert_int_eq(parse("GET /kcps-sso?state=S1&code= HTTP/1.1\r\n", &code, &error),
                   KCPS_SSO_BAD);
  ck_assert_int_eq(parse("GET /kcps-sso?state=S1&code=a%00b HTTP/1.1\r\n", &code, &error),
                   KCPS_SSO_BAD);
  ck_assert_int_eq(parse("\r\n", &code, &error), KCPS_SSO_BAD);
  ck_assert_ptr_null(code);
  /* Not a whole line yet. */
  ck_assert_int_eq(parse("GET /kcps-sso?state=S1&co", &code, &error),
                   KCPS_SSO_INCOMPLETE);
  /* The provider said no. */
  ck_assert_int_eq(parse("GET /kcps-sso?state=S1&error=access_denied HTTP/1.1\r\n", &code,
                         &error), KCPS_SSO_REFUSED);
  ck_assert_str_eq(error, "access_denied");
  ck_assert_ptr_null(code);
  g_free(error);
}
END_TEST

int main(void)
{
  Suite *suite = suite_create("ui-sso");
  TCase *tc = tcase_create("sso");
  tcase_add_test(tc, test_challenge_rfc7636);
  tcase_add_test(tc, test_random);
  tcase_add_test(tc, test_start_url);
  tcase_add_test(tc, test_preset_fits);
  tcase_add_test(tc, test_parse);
  suite_add_tcase(suite, tc);
  SRunner *runner = srunner_create(suite);
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed == 0 ? 0 : 1;
}
