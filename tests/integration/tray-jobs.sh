#!/bin/bash
# The tray's jobs window (issue 6) under Xvfb with a private session D-Bus,
# against a real kcps-server (--demo), kcpsd and an ippeveprinter:
#  - kcpsd's GET /v1/jobs/{id}/document gives the spooled PDF byte for byte
#    (404 for an unknown job, 405 for another method);
#  - a job printed to kcpsd's IPP port shows in the list with a thumbnail
#    drawn (the tray's test state names the job once its row shows it);
#  - the search finds a job by its name (any case, full-width), by state
#    words, none (the window says so), and all again when emptied;
#  - the preview shows page 1 of 2, Next turns to page 2 of 2;
#  - the menu's Release… opens the dialog (a job to pick);
#  - Release… on the job opens the dialog; the ippeveprinter's capabilities
#    set its controls (colour hidden, duplex shown); Print releases it, the
#    dialog follows the release to completed and kcpsd says printed;
#  - Delete removes the other job;
#  - screenshots of the jobs window with thumbnails and of the release
#    dialog in BUILD_DIR/ui-screenshots/jobs/.
# Usage: tray-jobs.sh BUILD_DIR SOURCE_DIR. Exit 0 pass, 1 fail, 77 skip.
set -u

BUILD=$(realpath "${1:?usage: tray-jobs.sh BUILD_DIR SOURCE_DIR}")
SRC=$(realpath "${2:?usage: tray-jobs.sh BUILD_DIR SOURCE_DIR}")
. "$SRC/tests/integration/lib.sh"
SERVER_BIN=$BUILD/server-stub/kcps-server
KCPSD_BIN=$BUILD/client/kcpsd
KCPS_BIN=$BUILD/client/kcps
TRAY_BIN=$BUILD/ui/kcps-tray
PDF=/usr/share/cups/data/default-testpage.pdf
for tool in Xvfb dbus-daemon gdbus ipptool ippeveprinter qpdf curl jq avahi-daemon; do
  command -v "$tool" >/dev/null || { echo "tray-jobs: FAIL: $tool is not installed"; exit 1; }
done
for bin in "$SERVER_BIN" "$KCPSD_BIN" "$KCPS_BIN" "$TRAY_BIN"; do
  [ -x "$bin" ] || { echo "tray-jobs: FAIL: $bin is not built"; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "SKIP: ippeveprinter needs a system D-Bus and avahi (root here)"; exit 77; }
lib_isolate_run "$0" "$@" || { echo "tray-jobs: FAIL: cannot isolate /run"; exit 1; }

lib_test_begin tray-jobs
SHOTS=$BUILD/ui-screenshots/jobs
rm -rf "$SHOTS"
mkdir -p "$SHOTS"
chmod 0700 "$SHOTS"
lib_test_show_more() {
  for f in "$TMP"/*.log; do echo "== $f"; tail -n 40 "$f"; done
}

# --- peers ---------------------------------------------------------------
start_dbus_avahi "$TMP" || abort "system D-Bus and avahi start"
P_PRN=$(free_port) || abort "a free port"
mkdir -p "$TMP/printer/spool"
lib_start ippeveprinter "$TMP/ippeve.log" ippeveprinter -f application/pdf,image/pwg-raster -2 \
  -p "$P_PRN" -d "$TMP/printer/spool" -n localhost -k "kcps-tray-jobs-$P_PRN"
URI_PRN="ipp://127.0.0.1:$P_PRN/ipp/print"
wait_for 30 "the ippeveprinter" ipp_printer_ready "$URI_PRN" || abort "the ippeveprinter answers"
start_kcps_server "$SERVER_BIN" "$TMP/server" "$TMP/kcps-server.log" ||
  abort "kcps-server prints its listening line"
start_kcpsd "$KCPSD_BIN" "$TMP/kcpsd" "$KCPS_SERVER_URL" "$TMP/server/server.crt" ||
  abort "kcpsd prints its ready line"
pass "kcps-server, kcpsd (local=$KCPSD_LOCAL_PORT) and an ippeveprinter on $P_PRN"
KCPS() { "$KCPS_BIN" --port "$KCPSD_LOCAL_PORT" "$@"; }

qpdf --empty --pages "$PDF" "$PDF" -- "$TMP/two.pdf" || abort "qpdf makes a 2-page PDF"
for name in "jobs one" "jobs two"; do
  out=$(lib_print_job "ipp://127.0.0.1:$KCPSD_IPP_PORT/ipp/print" "$TMP/two.pdf" "$name") ||
    abort "Print-Job '$name' to kcpsd: $out"
done
job_id() { KCPS jobs --json | jq -r --arg n "$1" '.[] | select(.name == $n) | .id'; }
job_state() { KCPS jobs --json | jq -r --arg id "$1" '.[] | select(.id == $id) | .state'; }
J1=$(job_id "jobs one")
J2=$(job_id "jobs two")
[ -n "$J1" ] && [ -n "$J2" ] || abort "the two jobs are spooled: $(KCPS jobs --json)"

# --- GET /v1/jobs/{id}/document ---------------------------------------------
BASE="http://127.0.0.1:$KCPSD_LOCAL_PORT"
code=$(curl -s -o "$TMP/doc.pdf" -w '%{http_code}' "$BASE/v1/jobs/$J1/document")
spooled=$(ls "$TMP"/kcpsd/spool/*/"$J1"* "$TMP"/kcpsd/spool/"$J1"* 2>/dev/null | head -n1)
if [ "$code" = 200 ] && [ "$(head -c 5 "$TMP/doc.pdf")" = "%PDF-" ] &&
  [ "$(stat -c %s "$TMP/doc.pdf")" = "$(KCPS jobs --json | jq -r --arg id "$J1" '.[] | select(.id == $id) | .size')" ]; then
  pass "GET /v1/jobs/{id}/document gives the spooled PDF (its size as listed)"
else
  fail "document: HTTP $code, $(head -c 5 "$TMP/doc.pdf" | od -c | head -n1)"
fi
check_code() {
  local got
  got=$(curl -s -o /dev/null -w '%{http_code}' "${@:3}" "$BASE$2")
  [ "$got" = "$1" ] && pass "${*:3} $2 -> $1" || fail "${*:3} $2: HTTP $got, expected $1"
}
check_code 404 "/v1/jobs/no-such-job/document"
check_code 405 "/v1/jobs/$J1/document" -X DELETE
check_code 404 "/v1/jobs/$J1/document/more"

# --- the tray -------------------------------------------------------------------
lib_start_desktop "$TMP" || abort "Xvfb and a session bus start"
export NO_AT_BRIDGE=1 GTK_A11Y=none
export G_DEBUG=fatal-criticals G_MESSAGES_DEBUG=kcps-tray LC_ALL=C.UTF-8
unset LANGUAGE KCPS_TRAY_LOCALEDIR

prop() {
  gdbus call --session -d org.kcps.Tray -o /org/kcps/Tray/JobsTest \
    -m org.freedesktop.DBus.Properties.Get org.kcps.Tray1.JobsTest "$1" 2>/dev/null
}
prop_is() { [ "$(prop "$1")" = "$2" ]; }
prop_has() { prop "$1" | grep -qF "$2"; }
app_prop() {
  gdbus call --session -d org.kcps.Tray -o /org/kcps/Tray/Test \
    -m org.freedesktop.DBus.Properties.Get org.kcps.Tray1.Test "$1" 2>/dev/null
}
action() {
  gdbus call --session -d org.kcps.Tray -o /org/kcps/Tray -m org.gtk.Actions.Activate \
    "$1" "${2:-[]}" '{}' >/dev/null
}
png_ok() { [ "$(head -c 8 "$1" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; }
shot() {
  rm -f "$SHOTS/$1.png"
  action screenshot "[<'$1'>]"
  wait_for 20 "the screenshot of $1" png_ok "$SHOTS/$1.png" && mv "$SHOTS/$1.png" "$SHOTS/$2.png" &&
    pass "screenshot $SHOTS/$2.png" || fail "no screenshot of $1"
}

# No tray host: the jobs window opens by itself.
lib_start kcps-tray "$TMP/tray.log" "$TRAY_BIN" --local-port "$KCPSD_LOCAL_PORT" --test-dir "$SHOTS"
wait_for 30 "the jobs window" bash -c "gdbus call --session -d org.kcps.Tray -o /org/kcps/Tray/Test -m org.freedesktop.DBus.Properties.Get org.kcps.Tray1.Test Windows 2>/dev/null | grep -q jobs" ||
  abort "the jobs window opens: $(app_prop Windows)"
if wait_for 30 "both thumbnails" bash -c "$(declare -f prop prop_has); prop_has ThumbnailJobs \"'jobs one'\" && prop_has ThumbnailJobs \"'jobs two'\""; then
  pass "both rows show a thumbnail of their first page ($(prop ThumbnailsRendered))"
else
  fail "thumbnails: $(prop ThumbnailJobs), rendered $(prop ThumbnailsRendered)"
fi
grep -q 'thumbnail of “jobs one” drawn' "$TMP/tray.log" && pass "the tray logs the thumbnail" ||
  fail "no thumbnail line in the tray's log"
shot jobs jobs-thumbnails

# The search: by name (case and width aside), by state, none, then all again.
search() { action search-jobs "[<'$1'>]"; }
shown_is() { prop_is JobsShown "(<uint32 $1>,)" && prop_is JobsPage "(<'$2'>,)"; }
search "TWO"
wait_for 10 "one job shown" shown_is 1 list && pass "searching TWO shows jobs two only" ||
  fail "search TWO: $(prop JobsShown) $(prop JobsPage)"
search "ｊｏｂｓ ｏｎｅ"
wait_for 10 "one job shown" shown_is 1 list && pass "full-width ｊｏｂｓ ｏｎｅ finds jobs one" ||
  fail "search ｊｏｂｓ ｏｎｅ: $(prop JobsShown) $(prop JobsPage)"
search "jobs waiting"
wait_for 10 "both jobs shown" shown_is 2 list && pass "name and state words together find both" ||
  fail "search jobs waiting: $(prop JobsShown) $(prop JobsPage)"
search "no-such-job"
wait_for 10 "none shown" shown_is 0 no-match && pass "a search for nothing says no job matches" ||
  fail "search no-such-job: $(prop JobsShown) $(prop JobsPage)"
shot jobs jobs-no-match
search ""
wait_for 10 "both jobs shown" shown_is 2 list && pass "an empty search shows every job" ||
  fail "empty search: $(prop JobsShown) $(prop JobsPage)"

# The preview: page 1 of 2, then 2 of 2.
action preview-job "[<'$J1'>]"
wait_for 30 "the preview's first page" prop_is PreviewPage "(<'1/2'>,)" && pass "the preview shows page 1 of 2" ||
  fail "preview: $(prop PreviewPage)"
fetched=$(prop DocumentsFetched)
action preview-next
wait_for 30 "the preview's second page" prop_is PreviewPage "(<'2/2'>,)" && pass "Next turns to page 2 of 2" ||
  fail "preview after Next: $(prop PreviewPage)"
[ "$(prop DocumentsFetched)" = "$fetched" ] &&
  pass "turning the page did not fetch the document again ($fetched)" ||
  fail "the document was fetched again for page 2: $fetched -> $(prop DocumentsFetched)"
shot preview preview-page

# The tray menu's Release… (dbusmenu, as a tray host sends it) opens the
# dialog with a job to pick.
layout=$(gdbus call --session -d org.kcps.Tray -o /MenuBar -m com.canonical.dbusmenu.GetLayout \
  0 'int32 -1' '@as []' 2>&1)
rid=$(grep -o "<([0-9]*, {[^}]*'label': <'_Release…'>" <<<"$layout" | head -n1 | grep -o '^<([0-9]*' | tr -d '<(')
if [ -n "$rid" ]; then
  pass "the menu has Release… (item $rid)"
  gdbus call --session -d org.kcps.Tray -o /MenuBar -m com.canonical.dbusmenu.Event \
    "$rid" clicked '<0>' 0 >/dev/null
  wait_for 20 "the release dialog from the menu" prop_is ReleaseDialog "(<true>,)" &&
    pass "Release… in the menu opens the dialog" || fail "the menu's Release… opened nothing"
  # Its GET /v1/printers is kcpsd's first: discovery starts, and when it
  # reaches avahi-daemon kcpsd pushes "printers"; the open dialog asks again.
  listed_again() { prop ReleasePrinters | grep -Eq '^\(<\(uint32 ([2-9]|[1-9][0-9]+),'; }
  wait_for 30 "the printer list asked again" listed_again &&
    pass "kcpsd's printers event made the open dialog list the printers again ($(prop ReleasePrinters))" ||
    fail "the dialog did not list the printers again: $(prop ReleasePrinters)"
  shot release release-from-menu
else
  fail "no Release… in the menu: $layout"
fi

# Release… of job one to the ippeveprinter (PDF, duplex, no colour).
action release-job "[<'$J1'>]"
wait_for 20 "the release dialog" prop_is ReleaseDialog "(<true>,)" || fail "the release dialog did not open"
action release-submit "[<'$URI_PRN'>]"
wait_for 60 "the release to complete" prop_is ReleaseState "(<'completed'>,)" &&
  pass "the release dialog follows the release to completed" ||
  fail "release: $(prop ReleaseState), started $(prop ReleasesStarted)"
controls=$(prop ReleaseControls)
case "$controls" in
  *"color=0 duplex=1 copies=1-"*) pass "the printer's capabilities set the controls: $controls" ;;
  *) fail "controls for a mono duplex printer: $controls" ;;
esac
wait_for 30 "job one printed" bash -c "[ \"\$(\"$KCPS_BIN\" --port $KCPSD_LOCAL_PORT jobs --json | jq -r --arg id $J1 '.[] | select(.id == \$id) | .state')\" = printed ]" &&
  pass "kcpsd says job one is printed" || fail "job one is $(job_state "$J1")"
wait_for 20 "the printer's copy of the job" bash -c "[ -n \"\$(ls -A $TMP/printer/spool)\" ]" &&
  pass "the ippeveprinter received the job" || fail "nothing reached the ippeveprinter"
shot release release-dialog

# Delete job two from its row.
action delete-job "[<'$J2'>]"
wait_for 20 "the delete question" bash -c "gdbus call --session -d org.kcps.Tray -o /org/kcps/Tray/Test -m org.freedesktop.DBus.Properties.Get org.kcps.Tray1.Test DeleteAsked | grep -q true" ||
  fail "Delete did not ask"
action confirm-delete
wait_for 30 "job two gone" bash -c "! gdbus call --session -d org.kcps.Tray -o /org/kcps/Tray/Test -m org.freedesktop.DBus.Properties.Get org.kcps.Tray1.Test JobNames | grep -q 'jobs two'" &&
  pass "Delete removes job two from the list" || fail "job two still listed: $(app_prop JobNames)"
[ -z "$(job_state "$J2")" ] || [ "$(job_state "$J2")" = deleted ] && pass "kcpsd no longer lists job two" ||
  fail "kcpsd: job two is $(job_state "$J2")"
action quit
