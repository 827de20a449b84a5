/* Placeholder check of the fixture until the access matrix lands. */
#include "server-fixture.h"

START_TEST(test_fixture)
{
  g_autofree char *token = sfx_login("admin@a.test", sfx.admin_pw);
  gint64 sub = sfx_add_org("Sales A", "Customer Z", "customer");
  ck_assert_int_gt(sub, 0);
  sfx_add_user("Customer Z", "z@z.test", "customer_user", "Aa1!aaaa");
  g_autofree char *z = sfx_login("z@z.test", "Aa1!aaaa");
  g_autofree char *pub = sfx_org_public_id("Customer Z");
  ck_assert_int_eq(strlen(pub), 36);
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("server-access");
  TCase *tc = tcase_create("fixture");
  tcase_add_checked_fixture(tc, sfx_setup, sfx_teardown);
  tcase_add_test(tc, test_fixture);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
