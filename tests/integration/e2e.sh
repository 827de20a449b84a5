#!/bin/bash
# End-to-end test of the whole print path with the real programs on free
# loopback ports: lp → private cupsd → kcpsd (spool, registration) →
# kcps-server → kcps-mfp-sim (PIN login, ticket, pull) → ippeveprinter → job
# log and usage; then single-use and forged tickets.
# Usage: e2e.sh BUILD_DIR SOURCE_DIR. Exit 0 pass, 1 fail, 77 skip (not root).
# KCPS_TEST_KEEP=1 keeps the peers' logs even when everything passed.
set -u

if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
  exit 1
fi
BUILD=$(realpath "$1")
SRC=$(realpath "$2")

# cupsd, the system D-Bus and avahi (which ippeveprinter needs) want root.
if [ "$(id -u)" != 0 ]; then
  echo "e2e: SKIP: needs root to run a private cupsd, a system D-Bus and avahi-daemon"
  exit 77
fi

. "$SRC/tests/integration/lib.sh"

# A D-Bus and avahi of our own, which no other test can stop under us.
lib_isolate_run "$(realpath "$0")" "$BUILD" "$SRC" || {
  echo "e2e: FAIL: cannot mount private /run/dbus and /run/avahi-daemon" >&2
  exit 1
}

SERVER_BIN=$BUILD/server-stub/kcps-server
KCPSD_BIN=$BUILD/client/kcpsd
KCPS_BIN=$BUILD/client/kcps
MFP_BIN=$BUILD/server-stub/mfp/kcps-mfp-sim
for bin in "$SERVER_BIN" "$KCPSD_BIN" "$KCPS_BIN" "$MFP_BIN"; do
  if [ ! -x "$bin" ]; then
    echo "e2e: FAIL: $bin is not built" >&2
    exit 1
  fi
done
for tool in cupsd lpadmin lp ipptool ippeveprinter qpdf jq sqlite3 curl sha256sum basenc \
  dbus-daemon avahi-daemon; do
  if ! command -v "$tool" >/dev/null; then
    echo "e2e: FAIL: $tool is not installed" >&2
    exit 1
  fi
done

# The test folder: traversable, because cupsd's filters run as lp; kcpsd's
# and the server's own folders inside are private.
# Readable by the private cupsd's and ippeveprinter's users.
lib_test_begin e2e 0755
lib_test_show_more() {
  [ -f "$TMP/cups/logs/error_log" ] || return 0
  echo "----- cupsd error_log (last lines) -----"
  grep -v ' \[Client\| \[CGI\]\|^D' "$TMP/cups/logs/error_log" | tail -n 30
}

# --- peers ---------------------------------------------------------------
lib_log "starting the system D-Bus and avahi-daemon (unless running; private: ${LIB_PRIVATE_RUN:-no})"
start_dbus_avahi "$TMP" || abort "D-Bus/avahi for ippeveprinter"

PRINTER_PORT=$(free_port) || abort "a free port for ippeveprinter"
lib_log "starting ippeveprinter on port $PRINTER_PORT"
start_ippeveprinter "$TMP/printer" "$PRINTER_PORT" "Test Printer" ||
  abort "ippeveprinter answers on port $PRINTER_PORT"

DATA=$TMP/server
lib_log "starting kcps-server --demo"
start_kcps_server "$SERVER_BIN" "$DATA" "$TMP/kcps-server.log" ||
  abort "kcps-server prints its listening line"
SERVER_CA=$DATA/server.crt
ALICE_PASSWORD=$(demo_credential "$DATA" "alice@a.test password")
[ -n "$ALICE_PASSWORD" ] || abort "alice's password in $DATA/demo-credentials.txt"
[ -s "$DATA/MFP-1.secret" ] || abort "the device secret in $DATA/MFP-1.secret"
[ -s "$SERVER_CA" ] || abort "the server certificate $SERVER_CA"
pass "kcps-server listening on $KCPS_SERVER_URL"

lib_log "starting kcpsd --user"
start_kcpsd "$KCPSD_BIN" "$TMP/kcpsd" "$KCPS_SERVER_URL" "$SERVER_CA" ||
  abort "kcpsd prints its ready line"
pass "kcpsd ready: ipp=$KCPSD_IPP_PORT pull=$KCPSD_PULL_PORT local=$KCPSD_LOCAL_PORT"

CUPS_PORT=$(free_port) || abort "a free port for cupsd"
lib_log "starting a private cupsd on port $CUPS_PORT"
start_cupsd "$TMP" "$CUPS_PORT" || abort "cupsd answers on port $CUPS_PORT"
if out=$(lpadmin -p KCPS -E -v "ipp://localhost:$KCPSD_IPP_PORT/ipp/print" -m everywhere 2>&1); then
  pass "lpadmin made the driverless queue KCPS to kcpsd"
else
  abort "lpadmin -p KCPS -m everywhere: $out"
fi

# --- the user logs in and prints ---------------------------------------------
if out=$(printf '%s\n' "$ALICE_PASSWORD" | "$KCPS_BIN" --port "$KCPSD_LOCAL_PORT" login alice@a.test 2>&1); then
  pass "kcps login alice@a.test"
else
  abort "kcps login alice@a.test: $out"
fi

qpdf --empty --pages /usr/share/cups/data/default-testpage.pdf \
  /usr/share/cups/data/default-testpage.pdf -- "$TMP/two-pages.pdf" ||
  abort "qpdf makes a 2-page PDF"
check_eq "test document has 2 pages" "$(qpdf --show-npages "$TMP/two-pages.pdf")" 2

JOB_NAME="e2e two pages"
out=$(lp -d KCPS -t "$JOB_NAME" "$TMP/two-pages.pdf" 2>&1) || abort "lp -d KCPS: $out"
pass "lp accepted the job: $out"

# kcps_jobs: the caller's spool jobs as a JSON array.
kcps_jobs() {
  "$KCPS_BIN" --port "$KCPSD_LOCAL_PORT" jobs --json | jq -c 'if type == "array" then . else .jobs end'
}
# spool_field NAME FIELD: FIELD of the job whose name contains NAME in `kcps jobs --json`.
spool_field() {
  kcps_jobs | jq -r --arg n "$1" "[.[] | select(.name | contains(\$n))][0].$2 // empty"
}
# spool_job FIELD: FIELD of the first test job.
spool_job() { spool_field "$JOB_NAME" "$1"; }
# spool_registered NAME...: true when every named job is registered.
spool_registered() {
  local name
  for name in "$@"; do
    [ "$(spool_field "$name" state)" = registered ] || return 1
  done
}
spool_job_registered() { spool_registered "$JOB_NAME"; }

lib_log "waiting for the job to be spooled and registered"
if ! wait_for 90 "the job to reach state registered in kcps jobs" spool_job_registered; then
  echo "kcps jobs --json: $(kcps_jobs 2>&1)" >&2
  lpstat -o -W all >&2
  abort "job registered within 90 s (last state: '$(spool_job state 2>/dev/null)')"
fi
pass "the job is spooled and registered"
SPOOL_ID=$(spool_job id)
# CUPS's ipp backend prefixes the title with its job id ("1 - title");
# the virtual printer drops that prefix.
SPOOL_NAME=$(spool_job name)
check_eq "spooled job's name (CUPS's job-id prefix dropped)" "$SPOOL_NAME" "$JOB_NAME"
SERVER_JOB=$(spool_job server_id)
check_eq "spooled job's pages" "$(spool_job pages)" 2
if [ -n "$SERVER_JOB" ]; then
  pass "spooled job has a server id ($SERVER_JOB)"
else
  abort "spooled job has no server_id: $(kcps_jobs)"
fi

# The spool file: in the folder of the OS user running the test, private.
SPOOL_DIR=$TMP/kcpsd/spool
SPOOL_FILE=$(find "$SPOOL_DIR" -type f -name "*$SPOOL_ID*" ! -name '*.tmp*' | head -n1)
if [ -z "$SPOOL_FILE" ]; then
  abort "spool file for job $SPOOL_ID under $SPOOL_DIR: $(find "$SPOOL_DIR" | head -n 20)"
fi
pass "spool file $SPOOL_FILE"
check_eq "spool file mode" "$(stat -c %a "$SPOOL_FILE")" 600
check_eq "spool folder mode" "$(stat -c %a "$(dirname "$SPOOL_FILE")")" 700
RUN_UID=$(id -u)
RUN_USER=$(id -un)
case "/${SPOOL_FILE#"$SPOOL_DIR"/}" in
  */"$RUN_UID"/* | */"$RUN_USER"/*) pass "spool file is in the folder of $RUN_USER (uid $RUN_UID)" ;;
  *) fail "spool file $SPOOL_FILE is not in a folder named $RUN_UID or $RUN_USER" ;;
esac
row=$(sqlite3 -readonly -separator ' ' "$SPOOL_DIR/spool.db" \
  "SELECT owner_uid, owner_name, pages FROM jobs WHERE id = '$SPOOL_ID'" 2>&1)
check_eq "spool index row (owner uid, owner name, pages)" "$row" "$RUN_UID $RUN_USER 2"
SPOOL_SHA=$(sha256sum "$SPOOL_FILE" | cut -d' ' -f1)
check_eq "spool file pages" "$(qpdf --show-npages "$SPOOL_FILE" 2>&1)" 2

# --- the server's view ------------------------------------------------------
# api METHOD PATH [BODY]: a call to the server with alice's token; prints the body.
api() {
  curl -sS --fail-with-body --cacert "$SERVER_CA" -X "$1" -H "Authorization: Bearer $ALICE_TOKEN" \
    -H 'Content-Type: application/json' ${3:+--data "$3"} "$KCPS_SERVER_URL$2"
}
LOGIN_BODY=$(jq -nc --arg e alice@a.test --arg p "$ALICE_PASSWORD" '{email: $e, password: $p}')
ALICE_TOKEN=$(curl -sS --fail-with-body --cacert "$SERVER_CA" -H 'Content-Type: application/json' \
  --data "$LOGIN_BODY" "$KCPS_SERVER_URL/api/v1/login" | jq -r '.token // empty')
[ -n "$ALICE_TOKEN" ] || abort "alice logs in to the server with curl"
SERVER_JOBS=$(api GET /api/v1/jobs) || abort "GET /api/v1/jobs: $SERVER_JOBS"
# server_field ID FIELD: FIELD of server job ID in $SERVER_JOBS (alice's GET /api/v1/jobs).
server_field() {
  printf '%s' "$SERVER_JOBS" | jq -r --arg id "$1" ".jobs[] | select(.id == \$id) | .$2 // empty"
}
server_job() { server_field "$SERVER_JOB" "$1"; }
check_eq "server job's sha256 equals the spool file's sha256sum" "$(server_job sha256)" "$SPOOL_SHA"
check_eq "server job's pages" "$(server_job pages)" 2
check_eq "server job's state" "$(server_job state)" waiting
check_eq "server job's owner" "$(server_job owner)" alice@a.test
PULL_URL=$(server_job pull_url)
PULL_PIN=$(server_job pull_pin)
case "$PULL_URL" in
  https://127.0.0.1:"$KCPSD_PULL_PORT"/*) pass "pull_url points at kcpsd's pull port" ;;
  *) fail "pull_url: got '$PULL_URL', expected https://127.0.0.1:$KCPSD_PULL_PORT/..." ;;
esac

# --- at the MFP ---------------------------------------------------------------
# mfp ARGS...: kcps-mfp-sim as MFP-1; its output also goes to mfp-all.log,
# which is searched for secrets at the end.
mfp() {
  local out rc
  out=$(mktemp "$TMP/mfp.XXXXXX")
  "$MFP_BIN" --server "$KCPS_SERVER_URL" --server-ca "$SERVER_CA" --device MFP-1 \
    --secret-file "$DATA/MFP-1.secret" "$@" >"$out" 2>&1
  rc=$?
  cat "$out" >>"$TMP/mfp-all.log"
  cat "$out"
  rm -f "$out"
  return $rc
}
MFP=(mfp)

if out=$("${MFP[@]}" jobs --pin 4321 2>&1); then
  line=$(printf '%s\n' "$out" | awk -F'\t' -v id="$SERVER_JOB" '$1 == id')
  check_eq "MFP-1 lists the job for alice (name and pages)" "$line" "$SERVER_JOB	$SPOOL_NAME	2"
else
  fail "kcps-mfp-sim jobs --pin 4321: $out"
fi

if out=$("${MFP[@]}" jobs --pin 0000 2>&1); then
  fail "a wrong PIN was accepted: $out"
else
  case "$out" in
    *PIN*) pass "a wrong PIN is refused ($out)" ;;
    *) fail "wrong PIN: refused, but the message does not name the PIN: $out" ;;
  esac
fi

lib_log "printing at MFP-1 (ippeveprinter takes ~15 s)"
TICKET_FILE=$TMP/ticket
PRINTED=false
if out=$("${MFP[@]}" print "$SERVER_JOB" --pin 4321 --to "$IPPEVE_URI" \
  --save-ticket "$TICKET_FILE" 2>&1); then
  PRINTER_JOB=$(printf '%s\n' "$out" | sed -n 's/^printed .* printer-job=\([0-9]*\)$/\1/p')
  check_eq "kcps-mfp-sim print" "$(printf '%s\n' "$out" | sed 's/ printer-job=[0-9]*$//')" \
    "printed $SERVER_JOB pages=2 sha256=ok"
  [ -n "$PRINTER_JOB" ] && PRINTED=true
else
  fail "kcps-mfp-sim print: $out"
fi
[ -f "$TICKET_FILE" ] && check_eq "saved ticket mode" "$(stat -c %a "$TICKET_FILE")" 600

if $PRINTED; then
  # What the printer got is what was spooled (ippeveprinter -k keeps it).
  KEPT=$(find "$TMP/printer/spool" -type f -name "$PRINTER_JOB-*" | head -n1)
  if [ -n "$KEPT" ]; then
    check_eq "bytes the printer got: sha256 equals the spool file's" \
      "$(sha256sum "$KEPT" | cut -d' ' -f1)" "$SPOOL_SHA"
  else
    fail "ippeveprinter kept no file for its job $PRINTER_JOB: $(ls -l "$TMP/printer/spool")"
  fi
  cat >"$TMP/get-job.test" <<'EOF'
{
  NAME "Get-Job-Attributes of the printed job"
  OPERATION Get-Job-Attributes
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR integer job-id $job_id
  STATUS successful-ok
  EXPECT job-state OF-TYPE enum WITH-VALUE 9
}
EOF
  if out=$(ipptool -q -d job_id="$PRINTER_JOB" "$IPPEVE_URI" "$TMP/get-job.test" 2>&1); then
    pass "ippeveprinter reports its job $PRINTER_JOB completed"
  else
    fail "ippeveprinter job $PRINTER_JOB not completed: $(ipptool -t -d job_id="$PRINTER_JOB" "$IPPEVE_URI" "$TMP/get-job.test" 2>&1 | tail -n 5)"
  fi
fi

# --- usage and states after printing ------------------------------------------
if usage=$(api GET /api/v1/me/usage); then
  check_eq "alice's usage: pages" "$(printf '%s' "$usage" | jq -r .pages)" 2
  check_eq "alice's usage: jobs" "$(printf '%s' "$usage" | jq -r .jobs)" 1
  check_eq "alice's usage: color pages" "$(printf '%s' "$usage" | jq -r .color_pages)" 0
else
  fail "GET /api/v1/me/usage: $usage"
fi
SERVER_JOBS=$(api GET /api/v1/jobs) || fail "GET /api/v1/jobs after printing: $SERVER_JOBS"
check_eq "server job's state after printing" "$(server_job state)" printed
state=$(spool_job state)
case "$state" in
  pulled | printed) pass "kcps jobs shows the job $state" ;;
  *) fail "kcps jobs state after printing: got '$state', expected pulled or printed" ;;
esac

# A printed job leaves the device's list, and gets no new ticket.
if out=$("${MFP[@]}" jobs --pin 4321 2>&1); then
  if printf '%s\n' "$out" | awk -F'\t' -v id="$SERVER_JOB" '$1 == id { found = 1 } END { exit !found }'; then
    fail "MFP-1 still lists the printed job $SERVER_JOB: $out"
  else
    pass "MFP-1 no longer lists the printed job"
  fi
else
  fail "kcps-mfp-sim jobs after printing: $out"
fi
if out=$("${MFP[@]}" ticket "$SERVER_JOB" --pin 4321 --save-ticket "$TMP/ticket-printed" 2>&1); then
  fail "a ticket was issued for a printed job: $out"
else
  case "$out" in
    *conflict* | *"HTTP 404"*) pass "no ticket for a printed job ($out)" ;;
    *) fail "ticket for a printed job: refused, but not as conflict: $out" ;;
  esac
fi

# --- tickets are single use and cannot be forged --------------------------------
PULL=("${MFP[@]}" pull "$SERVER_JOB" --pin 4321 --pull-url "$PULL_URL" --pull-pin "$PULL_PIN")
if [ -s "$TICKET_FILE" ]; then
  if out=$("${PULL[@]}" --ticket-file "$TICKET_FILE" --out "$TMP/again.pdf" 2>&1); then
    fail "the used ticket was accepted a second time: $out"
  else
    case "$out" in
      *used*) pass "a second pull with the same ticket is refused ($out)" ;;
      *) fail "second pull refused, but the message does not say used: $out" ;;
    esac
  fi
  [ -e "$TMP/again.pdf" ] && fail "a refused pull left $TMP/again.pdf"

  # The same ticket with a new ticket id: the signature no longer matches.
  ticket=$(cat "$TICKET_FILE")
  payload=${ticket%%.*}
  signature=${ticket#*.}
  padded=$payload
  while [ $((${#padded} % 4)) -ne 0 ]; do padded="$padded="; done
  forged_payload=$(printf '%s' "$padded" | basenc --base64url -d |
    jq -c '.tid = "forged" + .tid' | tr -d '\n' | basenc --base64url -w0 | tr -d '=')
  printf '%s.%s' "$forged_payload" "$signature" >"$TMP/forged-ticket"
  chmod 0600 "$TMP/forged-ticket"
  if out=$("${PULL[@]}" --ticket-file "$TMP/forged-ticket" --out "$TMP/forged.pdf" 2>&1); then
    fail "a forged ticket was accepted: $out"
  else
    case "$out" in
      *"HTTP 401"*) pass "a forged ticket is refused ($out)" ;;
      *) fail "forged ticket refused, but not with 401: $out" ;;
    esac
  fi
  printf 'not-a-ticket' >"$TMP/garbage-ticket"
  if out=$("${PULL[@]}" --ticket-file "$TMP/garbage-ticket" --out "$TMP/garbage.pdf" 2>&1); then
    fail "a malformed ticket was accepted: $out"
  else
    pass "a malformed ticket is refused ($out)"
  fi
else
  fail "no saved ticket to try again"
fi

# --- a busy printer, and a document changed after it was registered --------------
lib_log "two more jobs printed at once (the printer answers busy), one tampered job"
qpdf --empty --pages "$TMP/two-pages.pdf" /usr/share/cups/data/default-testpage.pdf -- \
  "$TMP/three-pages.pdf" || abort "qpdf makes a 3-page PDF"
for doc in "e2e busy one:/usr/share/cups/data/default-testpage.pdf" \
  "e2e busy two:$TMP/three-pages.pdf" "e2e tampered:$TMP/two-pages.pdf"; do
  out=$(lp -d KCPS -t "${doc%%:*}" "${doc#*:}" 2>&1) || abort "lp -d KCPS (${doc%%:*}): $out"
done
if ! wait_for 90 "three more jobs registered" spool_registered "e2e busy one" "e2e busy two" \
  "e2e tampered"; then
  abort "three more jobs registered within 90 s: $(kcps_jobs 2>&1)"
fi
BUSY_ONE=$(spool_field "e2e busy one" server_id)
BUSY_TWO=$(spool_field "e2e busy two" server_id)
TAMPERED=$(spool_field "e2e tampered" server_id)
check_eq "pages of the 1-page and 3-page jobs" \
  "$(spool_field "e2e busy one" pages) $(spool_field "e2e busy two" pages)" "1 3"

# A ticket for one job does not open another job's document.
SERVER_JOBS=$(api GET /api/v1/jobs) || fail "GET /api/v1/jobs: $SERVER_JOBS"
if out=$("${MFP[@]}" ticket "$BUSY_ONE" --pin 4321 --save-ticket "$TMP/ticket-one" 2>&1); then
  if out=$("${MFP[@]}" pull "$BUSY_TWO" --ticket-file "$TMP/ticket-one" --out "$TMP/other.pdf" \
    --pull-url "$(server_field "$BUSY_TWO" pull_url)" \
    --pull-pin "$(server_field "$BUSY_TWO" pull_pin)" 2>&1); then
    fail "a ticket for one job pulled another job: $out"
  else
    case "$out" in
      *"HTTP 401"*) pass "a ticket for another job is refused ($out)" ;;
      *) fail "ticket for another job: refused, but not with 401: $out" ;;
    esac
  fi
else
  fail "kcps-mfp-sim ticket: $out"
fi

busy_before=$(grep -c 'server-error-busy' "$TMP/printer/ippeveprinter.log")
"${MFP[@]}" print "$BUSY_ONE" --pin 4321 --to "$IPPEVE_URI" >"$TMP/busy-one.out" 2>&1 &
pid_one=$!
"${MFP[@]}" print "$BUSY_TWO" --pin 4321 --to "$IPPEVE_URI" >"$TMP/busy-two.out" 2>&1 &
pid_two=$!
if wait "$pid_one"; then
  pass "concurrent print 1: $(cat "$TMP/busy-one.out")"
else
  fail "concurrent print 1: $(cat "$TMP/busy-one.out")"
fi
if wait "$pid_two"; then
  pass "concurrent print 2: $(cat "$TMP/busy-two.out")"
else
  fail "concurrent print 2: $(cat "$TMP/busy-two.out")"
fi
busy_after=$(grep -c 'server-error-busy' "$TMP/printer/ippeveprinter.log")
if [ "$busy_after" -gt "$busy_before" ]; then
  pass "ippeveprinter answered busy $((busy_after - busy_before)) time(s) and the MFP retried"
else
  fail "ippeveprinter never answered busy: the concurrent prints did not overlap"
fi

# Change the spooled bytes behind kcpsd's back: the MFP must not print them.
TAMPERED_FILE=$SPOOL_DIR/$RUN_UID/$(spool_field "e2e tampered" id).pdf
kept_before=$(find "$TMP/printer/spool" -type f | wc -l)
if [ -f "$TAMPERED_FILE" ]; then
  printf '%% tampered\n' >>"$TAMPERED_FILE"
  if out=$("${MFP[@]}" print "$TAMPERED" --pin 4321 --to "$IPPEVE_URI" 2>&1); then
    fail "a tampered document was printed: $out"
  else
    case "$out" in
      *"checksum mismatch"* | *"pull refused"*) pass "a tampered document is not printed ($out)" ;;
      *) fail "tampered document: refused, but for another reason: $out" ;;
    esac
  fi
  check_eq "files the printer got after the tampered job" \
    "$(find "$TMP/printer/spool" -type f | wc -l)" "$kept_before"
else
  fail "spool file of the tampered job: $TAMPERED_FILE does not exist"
fi

if usage=$(api GET /api/v1/me/usage); then
  check_eq "alice's usage after all jobs (jobs pages)" \
    "$(printf '%s' "$usage" | jq -r '"\(.jobs) \(.pages)"')" "3 6"
else
  fail "GET /api/v1/me/usage: $usage"
fi
SERVER_JOBS=$(api GET /api/v1/jobs) || fail "GET /api/v1/jobs at the end: $SERVER_JOBS"
check_eq "server states (busy one, busy two)" \
  "$(server_field "$BUSY_ONE" state) $(server_field "$BUSY_TWO" state)" "printed printed"
case "$(server_field "$TAMPERED" state)" in
  failed | waiting) pass "server state of the tampered job: $(server_field "$TAMPERED" state)" ;;
  *) fail "server state of the tampered job: got '$(server_field "$TAMPERED" state)'," \
    "expected failed or waiting" ;;
esac

# --- a job deleted on the computer is withdrawn from the server -------------------
lib_log "a job deleted with kcps delete leaves the MFP's list"
out=$(lp -d KCPS -t "e2e deleted" /usr/share/cups/data/default-testpage.pdf 2>&1) ||
  abort "lp -d KCPS (e2e deleted): $out"
wait_for 90 "the job to delete registered" spool_registered "e2e deleted" ||
  abort "e2e deleted registered within 90 s: $(kcps_jobs 2>&1)"
DEL_SPOOL=$(spool_field "e2e deleted" id)
DEL_SERVER=$(spool_field "e2e deleted" server_id)
mfp_lists() { "${MFP[@]}" jobs --pin 4321 2>/dev/null | grep -q "^$1	"; }
mfp_lists "$DEL_SERVER" && pass "MFP-1 lists the job before it is deleted" ||
  fail "MFP-1 does not list $DEL_SERVER"
out=$("$KCPS_BIN" --port "$KCPSD_LOCAL_PORT" delete "$DEL_SPOOL" 2>&1) &&
  check_eq "kcps delete" "$out" "Deleted job $DEL_SPOOL" || fail "kcps delete: $out"
not_listed_at_mfp() { ! mfp_lists "$DEL_SERVER"; }
wait_for 30 "the MFP to stop listing the deleted job" not_listed_at_mfp &&
  pass "MFP-1 no longer lists the deleted job (kcpsd withdrew it)" ||
  fail "MFP-1 still lists $DEL_SERVER after kcps delete"
SERVER_JOBS=$(api GET /api/v1/jobs) || fail "GET /api/v1/jobs: $SERVER_JOBS"
[ -z "$(server_field "$DEL_SERVER" state)" ] && pass "the server no longer has the deleted job" ||
  fail "the server still has $DEL_SERVER: $(server_field "$DEL_SERVER" state)"
grep -q "job $DEL_SPOOL: withdrawn from the server" "$TMP/kcpsd/kcpsd.log" &&
  pass "kcpsd logged the withdrawal" || fail "no withdrawal in kcpsd's log"
out=$("$KCPS_BIN" --port "$KCPSD_LOCAL_PORT" delete "$DEL_SPOOL" 2>&1) &&
  fail "a second kcps delete succeeded: $out" || pass "a second kcps delete is refused: $out"

# --- no secret in any output or log ----------------------------------------------
# secret_absent WHAT SECRET FILE...: passes when SECRET appears in none of the files.
secret_absent() {
  local what=$1 secret=$2 found
  shift 2
  [ -n "$secret" ] || { fail "$what: nothing to look for"; return; }
  found=$(grep -lF -- "$secret" "$@" 2>/dev/null)
  if [ -z "$found" ]; then pass "$what appears in no output or log"; else fail "$what found in: $found"; fi
}
PEER_LOGS=("$TMP/kcpsd/kcpsd.log" "$TMP/printer/ippeveprinter.log" "$TMP/cups/logs/error_log"
  "$TMP/cups/logs/access_log" "$TMP/mfp-all.log")
# The server prints the demo credentials once at start, by design; nothing else.
grep -vE '^[^ ]+ (password|device secret): ' "$TMP/kcps-server.log" >"$TMP/kcps-server.log.rest"
secret_absent "alice's password" "$ALICE_PASSWORD" "${PEER_LOGS[@]}" "$TMP/kcps-server.log.rest"
secret_absent "the device secret" "$(cat "$DATA/MFP-1.secret")" "${PEER_LOGS[@]}" \
  "$TMP/kcps-server.log.rest"
secret_absent "the used ticket" "$(cat "$TICKET_FILE" 2>/dev/null)" "${PEER_LOGS[@]}" \
  "$TMP/kcps-server.log"
secret_absent "alice's server token" "$ALICE_TOKEN" "${PEER_LOGS[@]}" "$TMP/kcps-server.log"

[ "$FAILED" -eq 0 ]
