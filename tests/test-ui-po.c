/* Unit tests of the tray's catalogs (ui/po/): each language translates every
 * string the sources mark (checked against a fresh xgettext of POTFILES, so a
 * new string without a translation fails here), with no fuzzy entries, and
 * msgfmt --check passes; then the built catalogs are used through the view
 * model's own code (plurals through ngettext). Needs gettext's tools. */
#include "ui/tray-model.h"

#include <check.h>
#include <glib/gstdio.h>
#include <libintl.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>

#define DOMAIN "kcps" /* the tray's gettext domain (ui/meson.build) */

static const char *source_root(void)
{
  const char *dir = g_getenv("KCPS_SOURCE_ROOT");
  ck_assert_msg(dir != NULL, "KCPS_SOURCE_ROOT is not set (run through meson test)");
  return dir;
}

/* Runs argv in dir; its exit status, stderr in *err (caller g_frees). */
static int run(const char *dir, const char *const *argv, char **err)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  int status = 0;
  bool ok = g_spawn_sync(dir, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, err,
                         &status, &error);
  ck_assert_msg(ok, "cannot run %s: %s", argv[0], ok ? "" : error->message);
  return g_spawn_check_wait_status(status, NULL) ? 0 : 1;
}

static char **languages(void)
{
  g_autofree char *path = g_build_filename(source_root(), "ui", "po", "LINGUAS", NULL);
  g_autofree char *text = NULL;
  ck_assert_msg(g_file_get_contents(path, &text, NULL, NULL), "cannot read %s", path);
  return g_strsplit_set(g_strstrip(text), " \n", -1);
}

/* The catalogs cover the sources: msgmerge onto a fresh template, then
 * msgfmt --check --statistics says "N translated messages." and nothing more. */
START_TEST(test_catalogs_complete)
{
  g_autofree char *tmp = g_dir_make_tmp("kcps-ui-po-XXXXXX", NULL);
  ck_assert_ptr_nonnull(tmp);
  g_autofree char *pot = g_build_filename(tmp, "kcps.pot", NULL);
  /* The same keywords as meson's glib preset uses for the tray's sources. */
  const char *const xgettext[] = {"xgettext", "--from-code=UTF-8", "--keyword=_",
                                  "--keyword=N_", "--keyword=g_dngettext:2,3",
                                  "--files-from=ui/po/POTFILES", "-o", pot, NULL};
  g_autofree char *err = NULL;
  ck_assert_msg(run(source_root(), xgettext, &err) == 0, "xgettext failed: %s", err);
  g_auto(GStrv) langs = languages();
  guint checked = 0;
  for (guint i = 0; langs[i] != NULL; i++) {
    if (*langs[i] == '\0')
      continue;
    g_autofree char *po = g_strdup_printf("ui/po/%s.po", langs[i]);
    g_autofree char *merged = g_strdup_printf("%s/%s.po", tmp, langs[i]);
    /* The catalog as it is: well-formed (formats match, headers complete). */
    const char *const check[] = {"msgfmt", "--check", "--statistics", "-o", "/dev/null", po,
                                 NULL};
    g_clear_pointer(&err, g_free);
    int rc = run(source_root(), check, &err);
    ck_assert_msg(rc == 0, "msgfmt --check %s: %s", po, err);
    ck_assert_msg(strstr(err, "fuzzy") == NULL && strstr(err, "untranslated") == NULL &&
                    strstr(err, "warning") == NULL,
                  "%s: got '%s', expected only translated messages", po, err);
    /* And against today's sources. */
    const char *const merge[] = {"msgmerge", "--quiet", "--no-fuzzy-matching", "-o", merged,
                                 po, pot, NULL};
    g_clear_pointer(&err, g_free);
    ck_assert_msg(run(source_root(), merge, &err) == 0, "msgmerge %s: %s", po, err);
    const char *const stats[] = {"msgfmt", "--check", "--statistics", "-o", "/dev/null",
                                 merged, NULL};
    g_clear_pointer(&err, g_free);
    rc = run(source_root(), stats, &err);
    g_strstrip(err);
    ck_assert_msg(rc == 0, "msgfmt --check (merged %s): %s", po, err);
    ck_assert_msg(g_str_has_suffix(err, " translated messages.") && strchr(err, ',') == NULL &&
                    strchr(err, '\n') == NULL,
                  "%s against the sources: got '%s', expected 'N translated messages.'", po,
                  err);
    g_unlink(merged);
    checked++;
  }
  ck_assert_msg(checked >= 2, "languages checked: got %u, expected German and Japanese",
                checked);
  g_unlink(pot);
  g_rmdir(tmp);
}
END_TEST

/* The built catalogs through the model's code: LANGUAGE picks the language
 * (with a UTF-8 locale that every Debian has: C.UTF-8). */
static void use_language(const char *lang)
{
  const char *build = g_getenv("KCPS_BUILD_ROOT");
  ck_assert_msg(build != NULL, "KCPS_BUILD_ROOT is not set (run through meson test)");
  g_autofree char *dir = g_build_filename(build, "ui", "po", NULL);
  g_setenv("LANGUAGE", lang, TRUE);
  ck_assert_msg(setlocale(LC_ALL, "C.UTF-8") != NULL, "no C.UTF-8 locale");
  bindtextdomain(DOMAIN, dir);
  bind_textdomain_codeset(DOMAIN, "UTF-8");
  /* As kcps-tray does: GLib's g_dgettext decides once, at its first call,
   * whether to translate, from the default domain's catalog. */
  textdomain(DOMAIN);
}

START_TEST(test_translations_used)
{
  static const struct {
    const char *lang;
    guint waiting;
    const char *expected; /* the tooltip */
  } cases[] = {
    {"de", 1, "Nicht angemeldet\n1 Auftrag wartet"},
    {"de", 2, "Nicht angemeldet\n2 Aufträge warten"},
    {"ja", 1, "ログインしていません\n1 件のジョブが待機中"},
    {"ja", 5, "ログインしていません\n5 件のジョブが待機中"},
    {"en", 2, "Not logged in\n2 jobs waiting"},
  };
  kcps_tray_status_t status = {.reachable = true, .logged_in = false};
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    use_language(cases[i].lang);
    g_autofree char *got = kcps_tray_tooltip(&status, cases[i].waiting);
    ck_assert_msg(strcmp(got, cases[i].expected) == 0, "%s, %u waiting: got '%s', expected '%s'",
                  cases[i].lang, cases[i].waiting, got, cases[i].expected);
  }
  use_language("de");
  ck_assert_str_eq(kcps_tray_state_label("printed"), "Gedruckt");
  g_autofree char *pages = kcps_tray_format_pages(3);
  ck_assert_str_eq(pages, "3 Seiten");
  use_language("ja");
  ck_assert_str_eq(kcps_tray_login_message(401),
                   "メールアドレスまたはパスワードが正しくないか、現在このアカウントではログイン"
                   "できません。確認して、後でもう一度お試しください。");
}
END_TEST

static Suite *ui_po_suite(void)
{
  Suite *s = suite_create("ui-po");
  TCase *tc = tcase_create("catalogs");
  tcase_add_test(tc, test_catalogs_complete);
  tcase_add_test(tc, test_translations_used);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *runner = srunner_create(ui_po_suite());
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
