#!/bin/bash
# Cloud spool end to end (issue 5): kcpsd --spool-mode cloud uploads a
# spooled job to a real kcps-server in chunks (256 KiB here, streamed from
# the spool file and into the server's file), through a proxy
# (cut-proxy.py) that interrupts it twice at fixed byte counts, so no step
# depends on timing:
#  1. the upload stalls at ~50%, mid-chunk: kcpsd is killed (SIGKILL) and
#     started again; the server cuts the broken chunk back to its last whole
#     offset; after the login kcpsd asks the server what it has and resumes
#     there: at most one chunk is sent again (asserted from the server's
#     byte counter and from kcpsd's own count of bytes sent);
#  2. at ~75% every connection to the server is cut: kcpsd retries and
#     resumes again.
# Then: exactly one job on the server, spool "cloud", the sha256 of the
# printed document; the server got the document plus at most one chunk per
# interruption again (never the whole); the stored file is the document; the
# local copy is deleted.
# 3. Per-user spool mode: a kcpsd in local mode (the machine default); the
#  user switches with `kcps spool-mode cloud`, prints, and the job is
#  uploaded (`kcps jobs --json` shows its progress or its final state); she
#  switches back with `kcps spool-mode local` and the next job stays here,
#  registered for pulling. Then the organization's default_spool_mode
#  (server setting) applies once she follows it (`kcps spool-mode default`).
# Usage: cloud-upload.sh BUILD_DIR SOURCE_DIR. Exit 0 pass, 1 fail, 77 skip.
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
PROXY=$SRC/tests/integration/cut-proxy.py
for bin in "$SERVER_BIN" "$KCPSD_BIN" "$KCPS_BIN"; do
  [ -x "$bin" ] || { echo "cloud-upload: FAIL: $bin is not built" >&2; exit 1; }
done
for tool in python3 ipptool qpdf jq curl sha256sum stat sqlite3; do
  command -v "$tool" >/dev/null || { echo "cloud-upload: FAIL: $tool is not installed" >&2; exit 1; }
done
PDF=/usr/share/cups/data/default-testpage.pdf
[ -r "$PDF" ] || { echo "cloud-upload: FAIL: no $PDF" >&2; exit 1; }

lib_test_begin cloud-upload
lib_test_show_more() {
  for f in "$TMP"/kcpsd/kcpsd*.log; do
    [ -f "$f" ] && { echo "--- $f"; tail -n 30 "$f"; }
  done
}

# --- peers ---------------------------------------------------------------------
DATA=$TMP/server
start_kcps_server "$SERVER_BIN" "$DATA" "$TMP/kcps-server.log" ||
  abort "kcps-server prints its listening line"
SERVER_CA=$DATA/server.crt
SERVER_PORT=${KCPS_SERVER_URL##*:}
ALICE_PASSWORD=$(demo_credential "$DATA" "alice@a.test password")
[ -n "$ALICE_PASSWORD" ] || abort "alice's password in the demo credentials"

# The document: ~2 MiB, one page (random bytes attached).
mkdir -p "$TMP/docs"
head -c $((2 * 1024 * 1024)) /dev/urandom >"$TMP/docs/blob"
qpdf "$PDF" --add-attachment "$TMP/docs/blob" -- "$TMP/docs/doc.pdf" || abort "qpdf makes the document"
SIZE=$(stat -c %s "$TMP/docs/doc.pdf")
SHA=$(sha256sum <"$TMP/docs/doc.pdf" | cut -d' ' -f1)

mkdir -p "$TMP/proxy"
lib_start cut-proxy "$TMP/proxy.log" python3 "$PROXY" "$SERVER_PORT" $((SIZE * 50 / 100)) \
  $((SIZE * 75 / 100)) "$TMP/proxy"
wait_for 20 "the proxy's port" test -s "$TMP/proxy/port" || abort "cut-proxy starts"
PROXY_URL=https://127.0.0.1:$(cat "$TMP/proxy/port")

# start_cloud_kcpsd N: kcpsd in cloud mode through the proxy (log kcpsdN.log);
# sets KCPSD_PID, KCPSD_IPP_PORT, KCPSD_LOCAL_PORT.
start_cloud_kcpsd() {
  local dir=$TMP/kcpsd line
  mkdir -p "$dir/spool" "$dir/state"
  chmod 0700 "$dir" "$dir/spool" "$dir/state"
  lib_start "kcpsd$1" "$dir/kcpsd$1.log" "$KCPSD_BIN" --user --server "$PROXY_URL" \
    --server-ca "$SERVER_CA" --spool-mode cloud --spool "$dir/spool" --state "$dir/state" \
    --ipp-port 0 --pull-port 0 --pull-listen 127.0.0.1 --pull-host 127.0.0.1 --local-port 0 \
    --upload-chunk-size 256K
  KCPSD_PID=$LIB_PID
  line=$(wait_for_line 30 "$dir/kcpsd$1.log" 'kcpsd: ready ipp=' "$LIB_PID") || return 1
  KCPSD_IPP_PORT=$(printf '%s\n' "$line" | sed -n 's/.*ipp=\([0-9]*\).*/\1/p')
  KCPSD_LOCAL_PORT=$(printf '%s\n' "$line" | sed -n 's/.*local=\([0-9]*\).*/\1/p')
  [ -n "$KCPSD_IPP_PORT" ] && [ -n "$KCPSD_LOCAL_PORT" ]
}
login() {
  printf '%s\n' "$ALICE_PASSWORD" | "$KCPS_BIN" --port "$KCPSD_LOCAL_PORT" login alice@a.test
}

# api METHOD PATH [BODY]: alice's call to the server directly (not through the proxy).
TOKEN=$(curl -sS --cacert "$SERVER_CA" -H 'Content-Type: application/json' \
  --data "$(jq -nc --arg p "$ALICE_PASSWORD" '{email:"alice@a.test",password:$p}')" \
  "$KCPS_SERVER_URL/api/v1/login" | jq -r '.token // empty')
[ -n "$TOKEN" ] || abort "alice logs in to the server"
api() {
  curl -sS --cacert "$SERVER_CA" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -X "$1" ${3:+--data "$3"} "$KCPS_SERVER_URL$2"
}

start_cloud_kcpsd 1 || abort "kcpsd --spool-mode cloud starts"
out=$(login 2>&1) || abort "kcps login: $out"
pass "kcpsd in cloud mode, alice logged in"

cat >"$TMP/print.test" <<'EOF'
{
  NAME "Print-Job"
  OPERATION Print-Job
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR name requesting-user-name $user
  ATTR name job-name "cloud e2e"
  ATTR mimeMediaType document-format application/pdf
  FILE $filename
  STATUS successful-ok
  EXPECT job-id OF-TYPE integer WITH-VALUE >0
}
EOF
out=$(ipptool -t -T 30 -f "$TMP/docs/doc.pdf" "ipp://127.0.0.1:$KCPSD_IPP_PORT/ipp/print" \
  "$TMP/print.test" 2>&1) || abort "Print-Job to kcpsd: $out"
pass "the job is spooled ($SIZE bytes)"
SPOOL_ID=$("$KCPS_BIN" --port "$KCPSD_LOCAL_PORT" jobs --json |
  jq -r '(if type == "array" then . else .jobs end)[0].id // empty')
[ -n "$SPOOL_ID" ] || abort "kcps jobs lists the spooled job"
KEY=kcpsd-$SPOOL_ID
CREATE=$(jq -nc --arg k "$KEY" --arg s "$SHA" --argjson n "$SIZE" \
  '{idempotency_key:$k,name:"cloud e2e",size:$n,sha256:$s}')
# server_field FIELD: FIELD of the upload as the server has it (the create
# with the same key returns the same upload, never a second one).
server_field() { api POST /api/v1/uploads "$CREATE" | jq -r ".$1 // empty"; }

# --- 1. stall, SIGKILL, restart ----------------------------------------------------
wait_for 60 "the upload to stall at the proxy" test -e "$TMP/proxy/stalled" ||
  abort "the upload reaches the stall point"
HAD=$(server_field offset)
kill -9 "$KCPSD_PID"
wait_for 10 "kcpsd to die" bash -c "! kill -0 $KCPSD_PID 2>/dev/null" || abort "kcpsd dies"
touch "$TMP/proxy/release"
if [ -n "$HAD" ] && [ "$HAD" -gt 0 ] && [ "$HAD" -lt "$SIZE" ]; then
  pass "killed kcpsd mid-upload: the server had $HAD of $SIZE bytes"
else
  abort "server offset at the kill: got '$HAD', expected between 0 and $SIZE"
fi
CHUNK=$((256 * 1024))
# A chunk that leaves a gap waits on the server until the broken one is cut
# back (one chunk of an upload at a time), then is refused: after it, what
# the server counts of the broken chunk is final.
UPLOAD_ID=$(server_field id)
head -c 1 /dev/zero >"$TMP/one-byte"
GAP=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$SERVER_CA" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/octet-stream' -H 'Expect:' -X PUT --data-binary @"$TMP/one-byte" \
  "$KCPS_SERVER_URL/api/v1/uploads/$UPLOAD_ID?offset=$((HAD + 1))")
check_eq "a chunk with a gap is refused once the broken one is cut back" "$GAP" 409
check_eq "the server stays at its last whole offset after the kill" "$(server_field offset)" "$HAD"
KILL_RECEIVED=$(server_field received)
KILL_AGAIN=$((KILL_RECEIVED - HAD))
echo "# figures: kill at $HAD of $SIZE; the server got $KILL_AGAIN bytes of the broken chunk"
if [ "$KILL_AGAIN" -ge 0 ] && [ "$KILL_AGAIN" -le "$CHUNK" ]; then
  pass "the kill loses at most one chunk ($KILL_AGAIN bytes of the broken one reached the server)"
else
  fail "bytes of the broken chunk at the kill: got $KILL_AGAIN, expected 0..$CHUNK"
fi

start_cloud_kcpsd 2 || abort "kcpsd starts again"
out=$(login 2>&1) || abort "kcps login after the restart: $out"
line=$(wait_for_line 60 "$TMP/kcpsd/kcpsd2.log" "job $SPOOL_ID: resuming the upload at byte" \
  "$KCPSD_PID") || abort "kcpsd resumes after its restart"
RESUMED_AT=$(printf '%s\n' "$line" | sed -n 's/.*at byte \([0-9]*\) of.*/\1/p')
check_eq "kcpsd resumed at the server's offset after the restart" "$RESUMED_AT" "$HAD"

# --- 2. the connection cut ------------------------------------------------------------
wait_for 60 "the proxy to cut the connections" test -e "$TMP/proxy/cut" ||
  abort "the upload reaches the cut point"
pass "the proxy cut the connection to the server mid-upload"
resumed_twice() {
  [ "$(grep -c "job $SPOOL_ID: resuming the upload at byte" "$TMP/kcpsd/kcpsd2.log")" -ge 2 ]
}
wait_for 90 "the upload to resume after the cut" resumed_twice &&
  pass "kcpsd resumed after the cut" || fail "kcpsd resumed after the cut"

# --- the result -------------------------------------------------------------------------
server_done() { [ "$(server_field state)" = complete ]; }
wait_for 90 "the upload to complete" server_done || abort "the upload completes"
# The job stays listed as "uploaded" (spool cloud); nothing else is left.
local_gone() {
  [ "$("$KCPS_BIN" --port "$KCPSD_LOCAL_PORT" jobs --json |
    jq -r '[.[] | select(.state != "uploaded" or .spool != "cloud")] | length')" = 0 ]
}
wait_for 30 "the local copy to be deleted" local_gone && pass "the local copy is deleted" ||
  fail "the local copy is still listed"
[ -z "$(find "$TMP/kcpsd/spool" -type f -name '*.pdf')" ] && pass "no document left in the spool" ||
  fail "a document is left in the spool: $(find "$TMP/kcpsd/spool" -type f -name '*.pdf')"

JOBS=$(api GET /api/v1/jobs)
check_eq "exactly one job on the server" "$(printf '%s' "$JOBS" | jq '.jobs | length')" 1
check_eq "the server job's sha256" "$(printf '%s' "$JOBS" | jq -r '.jobs[0].sha256')" "$SHA"
check_eq "the server job is a cloud job" "$(printf '%s' "$JOBS" | jq -r '.jobs[0].spool')" cloud
JOB_ID=$(printf '%s' "$JOBS" | jq -r '.jobs[0].id')
STORED=$DATA/cloud/documents/$JOB_ID.pdf
check_eq "the stored document is the printed one" "$(sha256sum <"$STORED" | cut -d' ' -f1)" "$SHA"
check_eq "the stored document is 0600" "$(stat -c %a "$STORED")" 600

RECEIVED=$(server_field received)
AGAIN=$((RECEIVED - SIZE))
echo "# figures: size=$SIZE received=$RECEIVED sent again=$AGAIN chunk=$CHUNK (2 interruptions)"
if [ "$AGAIN" -ge 0 ] && [ "$AGAIN" -le $((2 * CHUNK)) ]; then
  pass "resumed, not restarted: $AGAIN bytes sent again (at most one chunk per interruption)"
else
  fail "bytes sent again: got $AGAIN, expected 0..$((2 * CHUNK))"
fi
# kcpsd's own count: after its restart it sent the rest from the server's
# offset plus at most the chunk broken by the cut, never more.
SENT2=$(sed -n "s/.*job $SPOOL_ID: \([0-9]*\) chunk bytes sent from byte.*/\1/p" \
  "$TMP/kcpsd/kcpsd2.log" | awk '{ s += $1 } END { print s + 0 }')
echo "# figures: kcpsd sent $SENT2 bytes after its restart at $HAD (rest: $((SIZE - HAD)))"
if [ "$SENT2" -ge $((SIZE - HAD)) ] && [ "$SENT2" -le $((SIZE - HAD + CHUNK)) ]; then
  pass "after the restart kcpsd sent the rest plus at most one chunk again ($SENT2 bytes)"
else
  fail "kcpsd sent $SENT2 bytes after its restart, expected $((SIZE - HAD))..$((SIZE - HAD + CHUNK))"
fi

# --- 3. the user's own spool mode ---------------------------------------------------
stop_pid "$KCPSD_PID"
# A kcpsd in local mode (the machine's default), straight to the server; a
# rate limit so the upload takes a few seconds (progress can be seen; nothing
# depends on it).
MDIR=$TMP/kcpsd-mode
mkdir -p "$MDIR/spool" "$MDIR/state"
chmod 0700 "$MDIR" "$MDIR/spool" "$MDIR/state"
lib_start kcpsd-mode "$MDIR/kcpsd.log" "$KCPSD_BIN" --user --server "$KCPS_SERVER_URL" \
  --server-ca "$SERVER_CA" --spool "$MDIR/spool" --state "$MDIR/state" --ipp-port 0 \
  --pull-port 0 --pull-listen 127.0.0.1 --pull-host 127.0.0.1 --local-port 0 \
  --upload-chunk-size 64K --upload-max-rate 512K
KCPSD_PID=$LIB_PID
line=$(wait_for_line 30 "$MDIR/kcpsd.log" 'kcpsd: ready ipp=' "$KCPSD_PID") ||
  abort "kcpsd (local mode) starts"
KCPSD_IPP_PORT=$(printf '%s\n' "$line" | sed -n 's/.*ipp=\([0-9]*\).*/\1/p')
KCPSD_LOCAL_PORT=$(printf '%s\n' "$line" | sed -n 's/.*local=\([0-9]*\).*/\1/p')
kcps() { "$KCPS_BIN" --port "$KCPSD_LOCAL_PORT" "$@"; }
out=$(login 2>&1) || abort "kcps login (local mode): $out"

out=$(kcps spool-mode 2>&1)
case $out in
  *"spool mode: local (this computer's default"*) pass "kcps spool-mode: local, from kcpsd" ;;
  *) fail "kcps spool-mode before a choice: $out" ;;
esac
out=$(kcps spool-mode cloud 2>&1) || fail "kcps spool-mode cloud: $out"
case $out in
  *"spool mode: cloud (your own choice)"*) pass "kcps spool-mode cloud" ;;
  *) fail "kcps spool-mode cloud says: $out" ;;
esac
check_eq "GET /v1/settings shows the effective mode" \
  "$(curl -sS "http://127.0.0.1:$KCPSD_LOCAL_PORT/v1/settings" | jq -r .effective_spool_mode)" cloud
check_eq "the choice is kept 0600" "$(stat -c %a "$MDIR/state/users/$(id -u).json")" 600

# print_doc NAME: a fresh ~2 MiB one-page PDF printed to kcpsd; sets DOC_SHA,
# DOC_SIZE and DOC_ID (its spool id, found by name).
print_doc() {
  head -c $((2 * 1024 * 1024)) /dev/urandom >"$TMP/docs/blob-$1"
  qpdf "$PDF" --add-attachment "$TMP/docs/blob-$1" -- "$TMP/docs/$1.pdf" || return 1
  DOC_SIZE=$(stat -c %s "$TMP/docs/$1.pdf")
  DOC_SHA=$(sha256sum <"$TMP/docs/$1.pdf" | cut -d' ' -f1)
  sed "s/\"cloud e2e\"/\"$1\"/" "$TMP/print.test" >"$TMP/print-$1.test"
  ipptool -t -T 30 -f "$TMP/docs/$1.pdf" "ipp://127.0.0.1:$KCPSD_IPP_PORT/ipp/print" \
    "$TMP/print-$1.test" >/dev/null 2>&1 || return 1
  DOC_ID=$(kcps jobs --json | jq -r --arg n "$1" '[.[] | select(.name == $n)][0].id // empty')
  [ -n "$DOC_ID" ]
}
print_doc switched || abort "the job printed after the switch is spooled"
# Poll its states: progress while it goes (seen or not), then "uploaded".
SAW_PROGRESS=0
upload_state() {
  local j
  j=$(kcps jobs --json | jq -c --arg id "$DOC_ID" '.[] | select(.id == $id)')
  if [ "$(printf '%s' "$j" | jq -r '.upload != null and .upload.done < .upload.total')" = true ]; then
    if [ "$(printf '%s' "$j" | jq -r '.spool == "cloud" and .upload.total == '"$DOC_SIZE"' and .upload.done >= 0')" = true ]; then
      SAW_PROGRESS=1
    else
      echo "# odd progress: $j"
    fi
  fi
  [ "$(printf '%s' "$j" | jq -r '.state')" = uploaded ]
}
wait_for 120 "the switched job to be uploaded" upload_state ||
  abort "the job printed after kcps spool-mode cloud is uploaded"
J=$(kcps jobs --json | jq -c --arg id "$DOC_ID" '.[] | select(.id == $id)')
check_eq "the uploaded job: spool, upload done/total" \
  "$(printf '%s' "$J" | jq -r '"\(.spool) \(.upload.done)/\(.upload.total)"')" \
  "cloud $DOC_SIZE/$DOC_SIZE"
echo "# progress seen while uploading: $SAW_PROGRESS (either is fine)"
case $(kcps jobs) in
  *"uploaded (cloud)"*) pass "kcps jobs shows the job uploaded to the cloud" ;;
  *) fail "kcps jobs: $(kcps jobs)" ;;
esac
JOBS=$(api GET /api/v1/jobs)
check_eq "the server has the switched job as a cloud job" \
  "$(printf '%s' "$JOBS" | jq -r --arg s "$DOC_SHA" '[.jobs[] | select(.sha256 == $s)] | map(.spool) | join(",")')" \
  cloud
[ ! -e "$MDIR/spool/$DOC_ID.pdf" ] && [ -z "$(find "$MDIR/spool" -type f -name "*$DOC_ID*")" ] &&
  pass "its local copy is gone" || fail "its local copy is still in the spool"

# Back to local: the next job stays here, registered for pulling.
out=$(kcps spool-mode local 2>&1) || fail "kcps spool-mode local: $out"
case $out in
  *"spool mode: local (your own choice)"*) pass "kcps spool-mode local" ;;
  *) fail "kcps spool-mode local says: $out" ;;
esac
print_doc back || abort "the job printed after switching back is spooled"
registered() {
  [ "$(kcps jobs --json | jq -r --arg id "$DOC_ID" '.[] | select(.id == $id) | .state')" = registered ]
}
wait_for 60 "the local job to be registered" registered ||
  abort "the job printed after kcps spool-mode local is registered"
J=$(kcps jobs --json | jq -c --arg id "$DOC_ID" '.[] | select(.id == $id)')
check_eq "the local job: spool local, no upload" \
  "$(printf '%s' "$J" | jq -r '"\(.spool) \(.upload)"')" "local null"
JOBS=$(api GET /api/v1/jobs)
check_eq "the server has it as a local job (to pull)" \
  "$(printf '%s' "$JOBS" | jq -r --arg s "$DOC_SHA" '[.jobs[] | select(.sha256 == $s)] | map(.spool) | join(",")')" \
  local
check_eq "nothing of it was uploaded" \
  "$(api POST /api/v1/uploads "$(jq -nc --arg k "kcpsd-$DOC_ID" --arg s "$DOC_SHA" \
    --argjson n "$DOC_SIZE" '{idempotency_key:$k,size:$n,sha256:$s}')" | jq -r '.offset')" 0
[ -n "$(find "$MDIR/spool" -type f -name '*.pdf')" ] && pass "its document stays in the spool" ||
  fail "the local job's document is not in the spool"

# The organization's default: the customer admin sets cloud; the user
# follows it (null) and, after her next login, gets it.
ADMIN_PASSWORD=$(demo_credential "$DATA" "admin@a.test password")
ADMIN_TOKEN=$(curl -sS --cacert "$SERVER_CA" -H 'Content-Type: application/json' \
  --data "$(jq -nc --arg p "$ADMIN_PASSWORD" '{email:"admin@a.test",password:$p}')" \
  "$KCPS_SERVER_URL/api/v1/login" | jq -r '.token // empty')
[ -n "$ADMIN_TOKEN" ] || abort "the customer admin logs in"
ORG=$(sqlite3 -readonly "$DATA/kcps.db" "SELECT public_id FROM orgs WHERE name = 'Customer A'")
[ -n "$ORG" ] || abort "the id of Customer A"
check_eq "the admin sets default_spool_mode cloud" \
  "$(curl -sS --cacert "$SERVER_CA" -H "Authorization: Bearer $ADMIN_TOKEN" \
    -H 'Content-Type: application/json' -X PATCH --data '{"default_spool_mode":"cloud"}' \
    "$KCPS_SERVER_URL/api/v1/orgs/$ORG/settings" | jq -r .default_spool_mode)" cloud
check_eq "alice's /me/policy names it" "$(api GET /api/v1/me/policy | jq -r .default_spool_mode)" cloud
out=$(kcps spool-mode default 2>&1) || fail "kcps spool-mode default: $out"
out=$(login 2>&1) || abort "kcps login again: $out"
out=$(kcps spool-mode 2>&1)
case $out in
  *"spool mode: cloud (your organization's default)"*) pass "the organization's default applies" ;;
  *) fail "kcps spool-mode after following the organization: $out" ;;
esac
exit 0
