#!/bin/bash
# HyPAS pull on 5571 with the real programs (issue 5): kcps-server --demo,
# kcpsd --user, kcps-mfp-sim as MFP-1.
#  1. the pull port speaks TLS 1.2+ only: TLS 1.1 (offered for real) is
#     refused, TLS 1.2 is not;
#  2. the MFP pins kcpsd's certificate: a pull from a server with another
#     certificate (openssl s_server) or with another pin is refused before
#     the ticket is shown, and the ticket is still good after;
#  3. the MFP pulls and "prints" (kcps-mfp-sim --to file:PATH keeps the
#     document), posts its job log; at kcpsd's next sync with the server
#     (pulled jobs: every 30 s) the job becomes "printed" in `kcps jobs`;
#  4. kcpsd is killed (SIGKILL) in the middle of kcps-mfp-sim's pull of an
#     ~8 MiB job: the MFP keeps what it got, and after kcpsd's restart asks
#     the server for a fresh ticket and the rest of the document (Range,
#     206), gets it whole (sha256), prints it once (one job log, its page
#     counted once); the first ticket stays spent and a second print is
#     refused.
# Usage: pull.sh BUILD_DIR SOURCE_DIR. Exit 0 pass, 1 fail.
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
KCPS_BIN=$BUILD/client/kcps
MFP_BIN=$BUILD/server-stub/mfp/kcps-mfp-sim
for bin in "$SERVER_BIN" "$KCPSD_BIN" "$KCPS_BIN" "$MFP_BIN"; do
  [ -x "$bin" ] || { echo "pull: FAIL: $bin is not built" >&2; exit 1; }
done
for tool in ipptool jq curl openssl sha256sum stat qpdf head; do
  command -v "$tool" >/dev/null || { echo "pull: FAIL: $tool is not installed" >&2; exit 1; }
done
PDF=/usr/share/cups/data/default-testpage.pdf
[ -r "$PDF" ] || { echo "pull: FAIL: no $PDF" >&2; exit 1; }

lib_test_begin pull

# --- peers ---------------------------------------------------------------------
DATA=$TMP/server
start_kcps_server "$SERVER_BIN" "$DATA" "$TMP/kcps-server.log" || abort "kcps-server starts"
SERVER_CA=$DATA/server.crt
ALICE_PASSWORD=$(demo_credential "$DATA" "alice@a.test password")
[ -n "$ALICE_PASSWORD" ] || abort "alice's password in the demo credentials"
start_kcpsd "$KCPSD_BIN" "$TMP/kcpsd" "$KCPS_SERVER_URL" "$SERVER_CA" || abort "kcpsd starts"
pass "kcps-server and kcpsd ready (pull port $KCPSD_PULL_PORT)"

login() {
  printf '%s\n' "$ALICE_PASSWORD" | "$KCPS_BIN" --port "$KCPSD_LOCAL_PORT" login alice@a.test
}
kcps_jobs() {
  "$KCPS_BIN" --port "$KCPSD_LOCAL_PORT" jobs --json | jq -c 'if type == "array" then . else .jobs end'
}
spool_field() { kcps_jobs | jq -r ".[0].$1 // empty"; }
state_is() { [ "$(spool_field state)" = "$1" ]; }

# mfp ARGS...: kcps-mfp-sim as MFP-1.
mfp() {
  "$MFP_BIN" --server "$KCPS_SERVER_URL" --server-ca "$SERVER_CA" --device MFP-1 \
    --secret-file "$DATA/MFP-1.secret" --pin 4321 "$@"
}

# --- 1. TLS versions ------------------------------------------------------------
# Security level 0 so that the client really offers TLS 1.1 (OpenSSL 3
# would not otherwise): the refusal is the pull port's.
if out=$(openssl s_client -connect "127.0.0.1:$KCPSD_PULL_PORT" -tls1_1 \
  -cipher 'DEFAULT@SECLEVEL=0' </dev/null 2>&1); then
  fail "a TLS 1.1 handshake with the pull port succeeded: $(printf '%s' "$out" | grep -m1 Protocol)"
else
  pass "TLS 1.1 is refused by the pull port"
fi
if out=$(openssl s_client -connect "127.0.0.1:$KCPSD_PULL_PORT" -tls1_2 \
  -cipher 'DEFAULT@SECLEVEL=0' </dev/null 2>&1); then
  pass "TLS 1.2 is accepted by the pull port"
else
  fail "TLS 1.2 handshake: $(printf '%s' "$out" | tail -n 3)"
fi

# --- a job, spooled and registered ----------------------------------------------
out=$(login 2>&1) || abort "kcps login: $out"
cat >"$TMP/print.test" <<'EOF'
{
  OPERATION Print-Job
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR name requesting-user-name $user
  ATTR name job-name "pull test"
  ATTR mimeMediaType document-format application/pdf
  FILE $filename
  STATUS successful-ok
}
EOF
out=$(ipptool -t -T 30 -f "$PDF" "ipp://127.0.0.1:$KCPSD_IPP_PORT/ipp/print" \
  "$TMP/print.test" 2>&1) || abort "Print-Job to kcpsd: $out"
wait_for 60 "the job to be registered" state_is registered ||
  abort "the job is registered (state '$(spool_field state)')"
SERVER_JOB=$(spool_field server_id)
SHA=$(sha256sum "$PDF" | cut -d' ' -f1)
pass "job registered as $SERVER_JOB"

# --- 2. the MFP pins kcpsd's certificate ----------------------------------------
out=$(mfp ticket "$SERVER_JOB" --save-ticket "$TMP/ticket" 2>&1) || abort "a ticket: $out"
PULL_URL=$(printf '%s\n' "$out" | sed -n 's/.*(pull_url \(.*\))$/\1/p')
[ -n "$PULL_URL" ] || abort "the ticket answer names the pull URL: $out"
PULL_PIN=$(curl -sS --fail --cacert "$SERVER_CA" -H 'Content-Type: application/json' \
  --data "$(jq -nc --arg e alice@a.test --arg p "$ALICE_PASSWORD" '{email: $e, password: $p}')" \
  "$KCPS_SERVER_URL/api/v1/login" | jq -r .token | {
  read -r token
  curl -sS --fail --cacert "$SERVER_CA" -H "Authorization: Bearer $token" \
    "$KCPS_SERVER_URL/api/v1/jobs" | jq -r --arg id "$SERVER_JOB" '.jobs[] | select(.id == $id) | .pull_pin'
})
case "$PULL_PIN" in
  sha256//*) pass "the server lists the job's pull pin" ;;
  *) abort "the job's pull pin: '$PULL_PIN'" ;;
esac

# Another server, with a certificate of its own, where the pull URL points.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$TMP/other.key" -out "$TMP/other.crt" >/dev/null 2>&1 || abort "openssl req"
# Bound to 127.0.0.1 (without a host s_server takes [::], which is not
# 127.0.0.1 where IPv6 sockets are v6-only). A port taken between free_port
# and the bind makes s_server exit at once: then another port is tried.
# listening_or_gone PORT PID: true once PORT accepts or PID has exited.
listening_or_gone() { port_in_use "$1" || ! kill -0 "$2" 2>/dev/null; }
other_listens=
for _ in 1 2 3; do
  OTHER_PORT=$(free_port) || abort "a free port"
  lib_start other-server "$TMP/other-server.log" openssl s_server \
    -accept "127.0.0.1:$OTHER_PORT" -cert "$TMP/other.crt" -key "$TMP/other.key" -www -quiet
  other_pid=$LIB_PID
  wait_for 20 "openssl s_server on $OTHER_PORT" listening_or_gone "$OTHER_PORT" "$other_pid" || break
  if port_in_use "$OTHER_PORT"; then other_listens=1; break; fi
  lib_log "openssl s_server on $OTHER_PORT exited: $(tail -n 3 "$TMP/other-server.log")"
done
[ -n "$other_listens" ] || abort "openssl s_server listens ($(tail -n 3 "$TMP/other-server.log"))"
OTHER_URL="https://127.0.0.1:$OTHER_PORT${PULL_URL#https://127.0.0.1:"$KCPSD_PULL_PORT"}"
if out=$(mfp pull "$SERVER_JOB" --ticket-file "$TMP/ticket" --out "$TMP/other.pdf" \
  --pull-url "$OTHER_URL" --pull-pin "$PULL_PIN" 2>&1); then
  fail "kcps-mfp-sim pulled from a server with another certificate: $out"
else
  pass "another certificate is refused ($out)"
fi
[ -e "$TMP/other.pdf" ] && fail "a refused pull left $TMP/other.pdf"
if out=$(mfp pull "$SERVER_JOB" --ticket-file "$TMP/ticket" --out "$TMP/wrong-pin.pdf" \
  --pull-url "$PULL_URL" --pull-pin 'sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=' 2>&1); then
  fail "kcps-mfp-sim pulled with a wrong pin: $out"
else
  pass "kcpsd's certificate under a wrong pin is refused ($out)"
fi
check_eq "the job is untouched by the refused pulls" "$(spool_field state)" registered
# The ticket was never shown: it still works, once.
if out=$(mfp pull "$SERVER_JOB" --ticket-file "$TMP/ticket" --out "$TMP/pinned.pdf" \
  --pull-url "$PULL_URL" --pull-pin "$PULL_PIN" 2>&1); then
  check_eq "pinned pull: the document's sha256" "$(sha256sum "$TMP/pinned.pdf" | cut -d' ' -f1)" "$SHA"
else
  fail "the pull with the right pin: $out"
fi
check_eq "the job is pulled" "$(spool_field state)" pulled

# --- 3. printed at the MFP, then printed at kcpsd --------------------------------
if out=$(mfp print "$SERVER_JOB" --to "file:$TMP/printed.pdf" 2>&1); then
  check_eq "kcps-mfp-sim print" "$out" "printed $SERVER_JOB pages=1 sha256=ok printer-job=0"
  check_eq "the printed document's sha256" "$(sha256sum "$TMP/printed.pdf" | cut -d' ' -f1)" "$SHA"
else
  fail "kcps-mfp-sim print: $out"
fi
# kcpsd asks the server at its next sync: for pulled jobs every 30 s (no
# login or other trigger here).
if wait_for 100 "the job to be printed in kcps jobs" state_is printed; then
  pass "kcpsd marked the job printed after the server's job log (its next sync)"
else
  fail "the job's state at kcpsd: '$(spool_field state)', expected printed"
fi

# --- 4. kcpsd killed in the middle of a pull -------------------------------------
# An ~8 MiB one-page document (random bytes attached), printed to kcpsd.
head -c $((8 * 1024 * 1024)) /dev/urandom >"$TMP/blob" || abort "random bytes"
qpdf "$PDF" --add-attachment "$TMP/blob" -- "$TMP/big.pdf" || abort "qpdf makes the big document"
BIG_SHA=$(sha256sum "$TMP/big.pdf" | cut -d' ' -f1)
BIG_SIZE=$(stat -c %s "$TMP/big.pdf")
out=$(ipptool -t -T 60 -f "$TMP/big.pdf" "ipp://127.0.0.1:$KCPSD_IPP_PORT/ipp/print" \
  "$TMP/print.test" 2>&1) || abort "Print-Job of the big document: $out"
big_field() {
  kcps_jobs | jq -r --arg s "$BIG_SHA" --arg n "$BIG_SIZE" \
    "[.[] | select(.size == (\$n | tonumber))][0].$1 // empty"
}
big_state_is() { [ "$(big_field state)" = "$1" ]; }
wait_for 60 "the big job to be registered" big_state_is registered ||
  abort "the big job is registered (state '$(big_field state)')"
BIG_JOB=$(big_field server_id)
[ -n "$BIG_JOB" ] || abort "the big job's server id"

# kcps-mfp-sim prints the big job, pulling slowly like a busy MFP (1 MB/s),
# so that kcpsd can be killed while it sends. The MFP keeps what it got,
# waits for the desktop, asks the server for a fresh ticket and pulls the
# rest with Range; then it checks the sha256 and prints once.
mkdir -m 0700 "$TMP/mfp-tmp"
partial_size() {
  local f
  for f in "$TMP"/mfp-tmp/kcps-mfp-*.pdf; do
    [ -e "$f" ] && { stat -c %s "$f"; return; }
  done
  echo 0
}
has_a_part() { [ "$(partial_size)" -ge $((1024 * 1024)) ]; }
TMPDIR=$TMP/mfp-tmp mfp print "$BIG_JOB" --to "file:$TMP/big-printed.pdf" \
  --save-ticket "$TMP/ticket" --pull-rate 1000000 --pull-attempts 8 \
  >"$TMP/big-print.out" 2>"$TMP/big-print.err" &
MFP_PID=$!
if wait_for 60 "1 MiB of the pull" has_a_part; then
  KCPSD_PID=$(lib_pid_of kcpsd | tail -n1)
  kill -KILL "$KCPSD_PID"
  wait "$KCPSD_PID" 2>/dev/null
  GOT=$(partial_size)
  pass "kcpsd killed (SIGKILL) after $GOT of $BIG_SIZE bytes were sent"
else
  kill "$MFP_PID" 2>/dev/null
  abort "the pull did not start ($(cat "$TMP/big-print.err"))"
fi
[ "$GOT" -lt "$BIG_SIZE" ] || abort "the whole document arrived before the kill"

# Restart on the same ports and state; the spool and the pull key survive.
start_kcpsd "$KCPSD_BIN" "$TMP/kcpsd" "$KCPS_SERVER_URL" "$SERVER_CA" \
  "$KCPSD_IPP_PORT" "$KCPSD_PULL_PORT" "$KCPSD_LOCAL_PORT" || abort "kcpsd starts again"
pass "kcpsd restarted (pull port $KCPSD_PULL_PORT)"

wait "$MFP_PID"
rc=$?
out=$(cat "$TMP/big-print.out")
err=$(cat "$TMP/big-print.err")
check_eq "kcps-mfp-sim prints the big job after kcpsd's restart (exit $rc)" "$out" \
  "printed $BIG_JOB pages=1 sha256=ok printer-job=0"
if grep -q "the pull broke off with [0-9]* bytes" <<<"$err"; then
  pass "the MFP saw its pull break off"
else
  fail "the MFP did not report a broken pull: $err"
fi
FROM=$(sed -n 's/.*resuming the pull at byte \([0-9]*\) with a fresh ticket.*/\1/p' <<<"$err" | tail -n1)
if [ -n "$FROM" ] && [ "$FROM" -ge "$GOT" ] && [ "$FROM" -lt "$BIG_SIZE" ]; then
  pass "the MFP resumed at byte $FROM (it had at least $GOT at the kill) with a fresh ticket"
else
  fail "the MFP did not resume from what it had (from '$FROM', had $GOT): $err"
fi
if grep -q "resumed pull done (HTTP 206)" <<<"$err"; then
  pass "the resumed pull was answered 206 (Range)"
else
  fail "no 206 for the resumed pull: $err"
fi
check_eq "the printed document is whole (sha256)" \
  "$(sha256sum "$TMP/big-printed.pdf" | cut -d' ' -f1)" "$BIG_SHA"
ls "$TMP"/mfp-tmp/kcps-mfp-* >/dev/null 2>&1 && fail "the MFP left its partial file behind"

# The first ticket was spent by the broken pull: refused now.
status=$(curl -sS -k --pinnedpubkey "$PULL_PIN" --tlsv1.2 -o /dev/null -w '%{http_code}' \
  -H "Authorization: KCPS-Ticket $(cat "$TMP/ticket")" -H "X-KCPS-Device: MFP-1" \
  "https://127.0.0.1:$KCPSD_PULL_PORT/jobs/$(big_field id)/document")
check_eq "the first ticket again after the restart" "$status" 401

# Sessions live in memory: alice logs in again (her jobs need no session to
# be pulled; the printed check does).
out=$(login 2>&1) || abort "kcps login after the restart: $out"

# Printed once: no longer waiting, a second print is refused.
if out=$(mfp print "$BIG_JOB" --to "file:$TMP/big-twice.pdf" 2>&1); then
  fail "the big job was printed a second time: $out"
else
  pass "a second print of the big job is refused ($out)"
fi
[ -e "$TMP/big-twice.pdf" ] && fail "a refused print left $TMP/big-twice.pdf"

# One job log each for the two jobs: two pages in alice's month, once.
TOKEN=$(curl -sS --fail --cacert "$SERVER_CA" -H 'Content-Type: application/json' \
  --data "$(jq -nc --arg e alice@a.test --arg p "$ALICE_PASSWORD" '{email: $e, password: $p}')" \
  "$KCPS_SERVER_URL/api/v1/login" | jq -r .token)
USED=$(curl -sS --fail --cacert "$SERVER_CA" -H "Authorization: Bearer $TOKEN" \
  "$KCPS_SERVER_URL/api/v1/me/quota" | jq -r .used_pages)
check_eq "alice's pages this month (two one-page jobs, each counted once)" "$USED" 2
JOBS=$(curl -sS --fail --cacert "$SERVER_CA" -H "Authorization: Bearer $TOKEN" \
  "$KCPS_SERVER_URL/api/v1/jobs" | jq -r --arg id "$BIG_JOB" '[.jobs[] | select(.id == $id)][0].state')
check_eq "the big job at the server" "$JOBS" printed
# A login makes kcpsd ask the server at once (else its next 30 s sync).
out=$(login 2>&1) || fail "kcps login: $out"
if wait_for 100 "the big job to be printed in kcps jobs" big_state_is printed; then
  pass "the restarted kcpsd marked the big job printed"
else
  fail "the big job's state at kcpsd: '$(big_field state)', expected printed"
fi
