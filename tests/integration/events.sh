#!/bin/bash
# Integration test of kcpsd's push channel (GET /v1/events on the local API,
# server-sent events), with curl -N against a real kcpsd --user and
# kcps-server (--demo) on free loopback ports:
#  - a subscriber first gets "ready"; a job printed to the IPP port brings a
#    "job" event with its id; DELETE /v1/jobs/{id} brings another, and the job
#    is gone from /v1/jobs (a second DELETE and another id: 404);
#  - a login brings "session"; /v1/status then names the spool mode and its
#    source and the quota (alice given 40 pages: read again at a login);
#  - a release (ippeveprinter) brings "release" events and, once the server
#    took its usage record, "quota"; the status then shows 39 pages left; a
#    DELETE while a release of the job runs gets 409;
#  - PUT /v1/settings brings "settings";
#  - another OS account (nobody, as root) is refused (403 forbidden_user);
#  - more streams than the per-account cap get 503, and closing streams frees
#    their places (the peer going away unsubscribes);
#  - stopping kcpsd ends open streams at once (curl exits by itself).
# Usage: events.sh BUILD_DIR SOURCE_DIR. Exit 0 pass, 1 fail.
set -u

if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
  exit 1
fi
BUILD=$(realpath "$1")
SRC=$(realpath "$2")
. "$SRC/tests/integration/lib.sh"

SERVER_BIN=$BUILD/server-stub/kcps-server
KCPSD_BIN=$BUILD/client/kcpsd
for bin in "$SERVER_BIN" "$KCPSD_BIN"; do
  [ -x "$bin" ] || { echo "events: FAIL: $bin is not built" >&2; exit 1; }
done
for tool in curl ipptool qpdf jq; do
  command -v "$tool" >/dev/null || { echo "events: FAIL: $tool is not installed" >&2; exit 1; }
done
# The release part needs ippeveprinter, which needs a system D-Bus and avahi:
# as root, in a private /run of our own (as direct-print.sh).
CAN_PRINT=0
if [ "$(id -u)" = 0 ] && command -v ippeveprinter >/dev/null &&
  command -v avahi-daemon >/dev/null && command -v dbus-daemon >/dev/null; then
  lib_isolate_run "$0" "$@" || { echo "events: FAIL: cannot isolate /run" >&2; exit 1; }
  CAN_PRINT=1
fi

lib_test_begin events

DATA=$TMP/server
start_kcps_server "$SERVER_BIN" "$DATA" "$TMP/kcps-server.log" ||
  abort "kcps-server prints its listening line"
ALICE_PASSWORD=$(demo_credential "$DATA" "alice@a.test password")
[ -n "$ALICE_PASSWORD" ] || abort "alice's password in $DATA/demo-credentials.txt"
start_kcpsd "$KCPSD_BIN" "$TMP/kcpsd" "$KCPS_SERVER_URL" "$DATA/server.crt" ||
  abort "kcpsd prints its ready line"
KCPSD_PID=$(lib_pid_of kcpsd)
API=http://127.0.0.1:$KCPSD_LOCAL_PORT
pass "kcpsd ready: local=$KCPSD_LOCAL_PORT"

# subscribe NAME: curl -N on /v1/events into $TMP/NAME.sse, recorded; waits for "ready".
subscribe() {
  lib_start "sse-$1" "$TMP/$1.sse" curl -sS -N "$API/v1/events"
  wait_for_line 20 "$TMP/$1.sse" '^event: ready$' "$LIB_PID" >/dev/null
}
# events_of NAME: the data lines received so far.
events_of() { grep '^data: ' "$TMP/$1.sse" | sed 's/^data: //'; }

subscribe main || abort "GET /v1/events answers with a ready event"
pass "GET /v1/events: the first event is ready"
check_eq "the stream is text/event-stream" \
  "$(curl -sS -m 5 -o /dev/null -D - "$API/v1/events" 2>/dev/null | tr -d '\r' |
    sed -n 's/^[Cc]ontent-[Tt]ype: //p')" "text/event-stream"

# A job printed to the IPP port.
qpdf --empty --pages /usr/share/cups/data/default-testpage.pdf -- "$TMP/one.pdf" ||
  abort "qpdf makes a PDF"
cat >"$TMP/print.test" <<'EOF'
{
  OPERATION Print-Job
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR name requesting-user-name $user
  ATTR name job-name "events one"
  ATTR mimeMediaType document-format application/pdf
  FILE $filename
  STATUS successful-ok
}
EOF
out=$(ipptool -t -T 30 -f "$TMP/one.pdf" "ipp://127.0.0.1:$KCPSD_IPP_PORT/ipp/print" \
  "$TMP/print.test" 2>&1) || abort "Print-Job to kcpsd: $out"
JOB_ID=$(curl -sS "$API/v1/jobs" | jq -r '.jobs[] | select(.name == "events one") | .id')
[ -n "$JOB_ID" ] || abort "the job is listed"
if wait_for_line 20 "$TMP/main.sse" "^data: \\{\"type\":\"job\",\"id\":\"$JOB_ID\"\\}" >/dev/null; then
  pass "a spooled job brings event job with its id"
else
  fail "no job event for $JOB_ID: $(events_of main | tr '\n' ' ')"
fi
check_eq "the event line names the type" "$(grep -c '^event: job$' "$TMP/main.sse")" 1

# Deleting it.
: >"$TMP/main.mark"
before=$(grep -c '^event: job$' "$TMP/main.sse")
check_eq "DELETE /v1/jobs/{id}: 204" \
  "$(curl -sS -o /dev/null -w '%{http_code}' -X DELETE "$API/v1/jobs/$JOB_ID")" 204
if wait_for 20 "a second job event" test "$(grep -c '^event: job$' "$TMP/main.sse")" -gt "$before"; then
  pass "a delete brings event job"
else
  fail "no job event after the delete: $(events_of main | tr '\n' ' ')"
fi
check_eq "the deleted job is not listed" \
  "$(curl -sS "$API/v1/jobs" | jq -r --arg id "$JOB_ID" '[.jobs[] | select(.id == $id)] | length')" 0
check_eq "DELETE again: 404" \
  "$(curl -sS -o /dev/null -w '%{http_code}' -X DELETE "$API/v1/jobs/$JOB_ID")" 404
check_eq "DELETE of an unknown id: 404" \
  "$(curl -sS -o /dev/null -w '%{http_code}' -X DELETE "$API/v1/jobs/no-such-job")" 404
check_eq "GET /v1/jobs/{id}: 405" \
  "$(curl -sS -o /dev/null -w '%{http_code}' "$API/v1/jobs/$JOB_ID")" 405

# Status before and after a login.
check_eq "status logged out: quota null, spool mode local from kcpsd" \
  "$(curl -sS "$API/v1/status" | jq -c '[.quota, .spool_mode, .spool_mode_source]')" \
  '[null,"local","kcpsd"]'
code=$(curl -sS -o "$TMP/login.json" -w '%{http_code}' -H 'Content-Type: application/json' \
  --data-binary @- "$API/v1/login" <<EOF
{"email":"alice@a.test","password":"$ALICE_PASSWORD"}
EOF
)
check_eq "alice logs in" "$code" 200
if wait_for 20 "a session event" grep -q '^event: session$' "$TMP/main.sse"; then
  pass "a login brings event session"
else
  fail "no session event: $(events_of main | tr '\n' ' ')"
fi
STATUS=$(curl -sS "$API/v1/status")
check_eq "status names the spool mode and its source" \
  "$(printf '%s' "$STATUS" | jq -c '[.spool_mode, .spool_mode_source]')" '["local","kcpsd"]'
# server_login EMAIL PASSWORD: prints the login answer of the server.
server_login() {
  jq -n --arg e "$1" --arg p "$2" '{email: $e, password: $p}' |
    curl -sS --cacert "$DATA/server.crt" -H "Content-Type: application/json" \
      --data-binary @- "$KCPS_SERVER_URL/api/v1/login"
}
ADMIN_PASSWORD=$(demo_credential "$DATA" "admin@a.test password")
ADMIN_TOKEN=$(server_login admin@a.test "$ADMIN_PASSWORD" | jq -r '.token // empty')
ALICE_LOGIN=$(server_login alice@a.test "$ALICE_PASSWORD")
ALICE_TOKEN=$(printf '%s' "$ALICE_LOGIN" | jq -r '.token // empty')
ALICE_ID=$(printf '%s' "$ALICE_LOGIN" | jq -r '.user.id // empty')
[ -n "$ADMIN_TOKEN" ] && [ -n "$ALICE_TOKEN" ] && [ -n "$ALICE_ID" ] ||
  abort "admin and alice log in to the server"
check_eq "alice's monthly quota set to 40 pages" "$(curl -sS --cacert "$DATA/server.crt" \
  -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer $ADMIN_TOKEN" \
  -H "Content-Type: application/json" -d '{"pages":40,"color_pages":null}' \
  "$KCPS_SERVER_URL/api/v1/users/$ALICE_ID/quota")" 200
MONTH=$(curl -sS --cacert "$DATA/server.crt" -H "Authorization: Bearer $ALICE_TOKEN" \
  "$KCPS_SERVER_URL/api/v1/me/quota" | jq -r '.month')
check_eq "status: the quota read at login stays until something changes it (unlimited)" \
  "$(curl -sS "$API/v1/status" | jq -c '.quota')" \
  "{\"month\":\"$MONTH\",\"quota_pages\":null,\"remaining_pages\":null}"
check_eq "alice logs in again" "$(jq -n --arg p "$ALICE_PASSWORD" \
  '{email: "alice@a.test", password: $p}' | curl -sS -o /dev/null -w '%{http_code}' \
  -H 'Content-Type: application/json' --data-binary @- "$API/v1/login")" 200
check_eq "status: alice's quota read afresh at login" \
  "$(curl -sS "$API/v1/status" | jq -c '.quota')" \
  "{\"month\":\"$MONTH\",\"quota_pages\":40,\"remaining_pages\":40}"

# Releases: a release of a job is refused a delete while it runs (409); one
# that reaches the printer brings "release" events, and "quota" once the
# server counted its page, after which the status shows one page less.
if [ "$CAN_PRINT" = 1 ]; then
start_dbus_avahi "$TMP" || abort "D-Bus and avahi for ippeveprinter"
DEAD_PORT=$(free_port) || abort "a free port"
PRINTER_PORT=$(free_port) || abort "a free port"
start_ippeveprinter "$TMP/printer" "$PRINTER_PORT" events-pdf || abort "ippeveprinter starts"
sed 's/"events one"/"events two"/' "$TMP/print.test" >"$TMP/print2.test"
out=$(ipptool -t -T 30 -f "$TMP/one.pdf" "ipp://127.0.0.1:$KCPSD_IPP_PORT/ipp/print" \
  "$TMP/print2.test" 2>&1) || abort "Print-Job 2 to kcpsd: $out"
JOB2=$(curl -sS "$API/v1/jobs" | jq -r '.jobs[] | select(.name == "events two") | .id')
[ -n "$JOB2" ] || abort "the second job is listed"
# release JOB URI: prints the release id.
release() {
  jq -n --arg p "$2" '{printer: $p}' | curl -sS -H 'Content-Type: application/json' \
    --data-binary @- "$API/v1/jobs/$1/release" | jq -r '.id // empty'
}
# A printer nobody listens on: kcpsd retries for its printer-gone window (15 s;
# the DELETE comes right after the 202, and the state read after it says
# whether the release still ran).
REL1=$(release "$JOB2" "ipp://127.0.0.1:$DEAD_PORT/ipp/print")
[ -n "$REL1" ] || abort "a release to an absent printer starts"
code=$(curl -sS -o "$TMP/del.json" -w '%{http_code}' -X DELETE "$API/v1/jobs/$JOB2")
state=$(curl -sS "$API/v1/releases/$REL1" | jq -r '.state')
case "$code:$state" in
  409:*) pass "DELETE while a release of the job runs: 409 ($(jq -r .message "$TMP/del.json"))" ;;
  *) fail "DELETE during the release (now $state): got $code $(cat "$TMP/del.json")" ;;
esac
if wait_for_line 20 "$TMP/main.sse" "^data: \\{\"type\":\"release\",\"id\":\"$REL1\"\\}" >/dev/null; then
  pass "a release brings event release with its id"
else
  fail "no release event for $REL1: $(events_of main | tr '\n' ' ')"
fi
# The real release: a third job (the second stays held by its retrying release).
sed 's/"events one"/"events three"/' "$TMP/print.test" >"$TMP/print3.test"
out=$(ipptool -t -T 30 -f "$TMP/one.pdf" "ipp://127.0.0.1:$KCPSD_IPP_PORT/ipp/print" \
  "$TMP/print3.test" 2>&1) || abort "Print-Job 3 to kcpsd: $out"
JOB3=$(curl -sS "$API/v1/jobs" | jq -r '.jobs[] | select(.name == "events three") | .id')
[ -n "$JOB3" ] || abort "the third job is listed"
quotas=$(grep -c '^event: quota$' "$TMP/main.sse")
REL2=$(release "$JOB3" "$IPPEVE_URI")
[ -n "$REL2" ] || abort "a release to ippeveprinter starts"
if wait_for 90 "the release to complete" bash -c \
  "curl -sS '$API/v1/releases/$REL2' | jq -e '.state == \"completed\"'"; then
  pass "the release to ippeveprinter completed"
else
  fail "the release to ippeveprinter: $(curl -sS "$API/v1/releases/$REL2")"
fi
if wait_for 60 "a quota event" bash -c \
  "[ \"\$(grep -c '^event: quota\$' '$TMP/main.sse')\" -gt $quotas ]"; then
  pass "the server's count of the release brings event quota"
else
  fail "no quota event after the release: $(events_of main | tr '\n' ' ')"
fi
check_eq "status: one page less left after the release" \
  "$(curl -sS "$API/v1/status" | jq -c '[.quota.quota_pages, .quota.remaining_pages]')" '[40,39]'
else
  echo "skip - releases (need root, ippeveprinter, avahi-daemon and dbus-daemon)"
fi

# Settings.
check_eq "PUT /v1/settings: 200" "$(curl -sS -o /dev/null -w '%{http_code}' -X PUT \
  -H 'Content-Type: application/json' -d '{"spool_mode":"local"}' "$API/v1/settings")" 200
if wait_for 20 "a settings event" grep -q '^event: settings$' "$TMP/main.sse"; then
  pass "PUT /v1/settings brings event settings"
else
  fail "no settings event: $(events_of main | tr '\n' ' ')"
fi
check_eq "status: the spool mode is now the user's" \
  "$(curl -sS "$API/v1/status" | jq -r '.spool_mode_source')" user

# Another OS account.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
  # nobody writes no file: the answer comes back on stdout, the status last.
  out=$(cd / && setpriv --reuid=nobody --regid=nogroup --clear-groups curl -sS -m 10 \
    -w '\n%{http_code}' "$API/v1/events" 2>&1)
  if [ "$(printf '%s' "$out" | tail -n1)" = 403 ] && [[ "$out" == *forbidden_user* ]]; then
    pass "another OS account cannot subscribe (403 forbidden_user)"
  else
    fail "nobody's GET /v1/events: got $out"
  fi
else
  echo "skip - another OS account (needs root, setpriv and nobody)"
fi

# The per-account cap (8 streams): main + 7 more fill it, the next gets 503.
for i in 1 2 3 4 5 6 7; do
  subscribe "extra$i" || abort "stream $i of 8 starts"
done
check_eq "a ninth stream: 503" \
  "$(curl -sS -m 10 -o /dev/null -w '%{http_code}' "$API/v1/events")" 503
for i in 1 2 3 4 5 6 7; do
  stop_pid "$(lib_pid_of "sse-extra$i")"
done
# Closed streams free their places (the peer's hang-up unsubscribes).
if subscribe again; then
  pass "streams closed by the peer free their places"
else
  fail "no stream after closing seven"
fi

# kcpsd stops: the open streams end by themselves.
MAIN_CURL=$(lib_pid_of sse-main)
AGAIN_CURL=$(lib_pid_of sse-again)
kill -TERM "$KCPSD_PID"
if wait_for 20 "kcpsd to exit" bash -c "! kill -0 $KCPSD_PID 2>/dev/null"; then
  pass "kcpsd stops with event streams open"
else
  fail "kcpsd did not exit within 20 s with streams open"
fi
if wait_for 10 "the streams to end" bash -c "! kill -0 $MAIN_CURL 2>/dev/null && ! kill -0 $AGAIN_CURL 2>/dev/null"; then
  pass "kcpsd's shutdown ends the streams"
else
  fail "curl still reads a stream after kcpsd stopped"
fi
