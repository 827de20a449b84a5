#!/usr/bin/env bash
# The `upload` benchmark (issue 5): cloud upload of a 200 MiB PDF.
#   ours:   kcps-server (real TLS on loopback) and kcpsd --spool-mode cloud;
#           a Print-Job of the PDF to kcpsd, timed from the job spooled
#           (Print-Job answered) to the upload confirmed by the server
#           (kcpsd's log line "the server confirmed the upload", millisecond
#           time stamp): create, PUT chunks streamed from the spool file,
#           complete (sha256 checked by the server). kcpsd's own bookkeeping
#           after it (the local copy deleted) is not in the figure, as the
#           anchor has none.
#   anchor: curl uploading the same file to the same server and route, the
#           same chunk size, one curl invocation for all chunks and the
#           complete (--next: one connection), after a curl create; the file
#           is split into chunk files beforehand (untimed).
# Rounds alternate, best of BENCH_ROUNDS (3) each. Then the resend after a
# kill: kcpsd is killed (SIGKILL) while the server holds about half of the
# document, started again, and finishes; what the server received beyond the
# document's size, in chunks, is the figure (goal: at most one).
# Prints:
#   bench: upload-200MiB-MB-per-s ours=… anchor=… ratio=… goal=>=0.9
#   bench: upload-resend-after-kill-chunks ours=… anchor=1 ratio=… goal=<=1
# Usage: tools/bench-upload.sh BUILD_DIR. Does not need root. Sizes:
# BENCH_UPLOAD_MIB (200), BENCH_UPLOAD_CHUNK_MIB (8, the server's chunk_max),
# BENCH_UPLOAD_KILL_RATE (20M: kcpsd's --upload-max-rate in the kill phase).
set -euo pipefail

build=${1:?usage: tools/bench-upload.sh BUILD_DIR}
src=$(cd "$(dirname "$0")/.." && pwd)
case "$build" in /*) ;; *) build="$src/$build" ;; esac
ROUNDS=${BENCH_ROUNDS:-3}
MIB=${BENCH_UPLOAD_MIB:-200}
CHUNK_MIB=${BENCH_UPLOAD_CHUNK_MIB:-8}
CHUNK=$((CHUNK_MIB * 1024 * 1024))
KILL_RATE=${BENCH_UPLOAD_KILL_RATE:-20M}

# shellcheck source=../tests/integration/lib.sh
. "$src/tests/integration/lib.sh"

for prog in server-stub/kcps-server client/kcpsd client/kcps; do
  [ -x "$build/$prog" ] || { echo "tools/bench-upload.sh: $build/$prog is not built" >&2; exit 1; }
done
for tool in curl jq ipptool split sha256sum; do
  command -v "$tool" >/dev/null || { echo "tools/bench-upload.sh: $tool is missing" >&2; exit 1; }
done

# On the disk, not tmpfs: the server's fsyncs must cost what they cost.
tmp=$(mktemp -d /var/tmp/kcps-bench-upload.XXXXXX)
chmod 0700 "$tmp"
cleanup() {
  local rc=$?
  set +e # stop_pid's wait returns the status of a killed kcpsd
  [ "$rc" -ne 0 ] && lib_dump_logs
  lib_stop_all
  # BENCH_UPLOAD_LOGS=DIR keeps kcpsd's logs (time stamps of each step).
  [ -n "${BENCH_UPLOAD_LOGS:-}" ] && cp "$tmp"/kcpsd/kcpsd*.log "$BENCH_UPLOAD_LOGS"/ 2>/dev/null
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# make_big_pdf FILE BYTES: a valid one-page PDF whose content stream is
# BYTES bytes of NUL (white space in PDF: the page is empty).
make_big_pdf() {
  local file=$1 n=$2 o1 o2 o3 o4 xref
  printf '%%PDF-1.4\n' >"$file"
  o1=$(stat -c %s "$file")
  printf '1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n' >>"$file"
  o2=$(stat -c %s "$file")
  printf '2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n' >>"$file"
  o3=$(stat -c %s "$file")
  printf '3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >> endobj\n' >>"$file"
  o4=$(stat -c %s "$file")
  printf '4 0 obj << /Length %d >> stream\n' "$n" >>"$file"
  head -c "$n" /dev/zero >>"$file"
  printf '\nendstream endobj\n' >>"$file"
  xref=$(stat -c %s "$file")
  {
    printf 'xref\n0 5\n0000000000 65535 f \n'
    printf '%010d 00000 n \n' "$o1" "$o2" "$o3" "$o4"
    printf 'trailer << /Size 5 /Root 1 0 R >>\nstartxref\n%d\n%%EOF\n' "$xref"
  } >>"$file"
}

best() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b + 0 > a + 0) ? b : a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "nan" }'; }
# ms_of HH:MM:SS.mmm: milliseconds since midnight.
ms_of() { awk -F'[:.]' '{ printf "%d", (($1 * 60 + $2) * 60 + $3) * 1000 + $4 }' <<<"$1"; }
now_hms() { date +%H:%M:%S.%3N; }
# elapsed_s T0 T1 (HH:MM:SS.mmm, at most a day apart).
elapsed_s() {
  local a b
  a=$(ms_of "$1")
  b=$(ms_of "$2")
  [ "$b" -lt "$a" ] && b=$((b + 86400000))
  awk -v d=$((b - a)) 'BEGIN { printf "%.3f", d / 1000 }'
}

# --- the server, the document -----------------------------------------------------
DATA=$tmp/server
start_kcps_server "$build/server-stub/kcps-server" "$DATA" "$tmp/kcps-server.log"
CA=$DATA/server.crt
PASSWORD=$(demo_credential "$DATA" "alice@a.test password")
TOKEN=$(curl -sS --cacert "$CA" -H 'Content-Type: application/json' \
  --data "$(jq -nc --arg p "$PASSWORD" '{email:"alice@a.test",password:$p}')" \
  "$KCPS_SERVER_URL/api/v1/login" | jq -r '.token // empty')
[ -n "$TOKEN" ] || { echo "tools/bench-upload.sh: alice cannot log in" >&2; exit 1; }

DOC=$tmp/doc.pdf
make_big_pdf "$DOC" $((MIB * 1024 * 1024))
SIZE=$(stat -c %s "$DOC")
SHA=$(sha256sum <"$DOC" | cut -d' ' -f1)
mkdir "$tmp/chunks"
split -b "$CHUNK" -d -a 4 "$DOC" "$tmp/chunks/c."
lib_log "upload: a $SIZE-byte PDF, chunks of $CHUNK bytes, $ROUNDS rounds a side"

cat >"$tmp/print.test" <<'EOF'
{
  NAME "Print-Job"
  OPERATION Print-Job
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR name requesting-user-name $user
  ATTR name job-name "bench upload"
  ATTR mimeMediaType document-format application/pdf
  FILE $filename
  STATUS successful-ok
}
EOF

# start_kcpsd_cloud N [ARGS]: kcpsd in cloud mode (log kcpsdN.log), logged in as alice.
KDIR=$tmp/kcpsd
mkdir -p "$KDIR/spool" "$KDIR/state"
chmod 0700 "$KDIR" "$KDIR/spool" "$KDIR/state"
start_kcpsd_cloud() {
  local line
  lib_start "kcpsd$1" "$KDIR/kcpsd$1.log" "$build/client/kcpsd" --user --server "$KCPS_SERVER_URL" \
    --server-ca "$CA" --spool-mode cloud --spool "$KDIR/spool" --state "$KDIR/state" \
    --ipp-port 0 --pull-port 0 --pull-listen 127.0.0.1 --pull-host 127.0.0.1 --local-port 0 \
    --upload-chunk-size "${CHUNK_MIB}M" "${@:2}"
  KCPSD_PID=$LIB_PID
  KLOG=$KDIR/kcpsd$1.log
  line=$(wait_for_line 30 "$KLOG" 'kcpsd: ready ipp=' "$KCPSD_PID")
  IPP_PORT=$(printf '%s\n' "$line" | sed -n 's/.*ipp=\([0-9]*\).*/\1/p')
  LOCAL_PORT=$(printf '%s\n' "$line" | sed -n 's/.*local=\([0-9]*\).*/\1/p')
  printf '%s\n' "$PASSWORD" | "$build/client/kcps" --port "$LOCAL_PORT" login alice@a.test >/dev/null
}
start_kcpsd_cloud 1

uploaded_count() { grep -c 'the server confirmed the upload' "$KLOG" || true; }
uploaded_more() { [ "$(uploaded_count)" -gt "$1" ]; }
# Stored documents of earlier rounds go: the disk holds one at a time.
drop_documents() { rm -f "$DATA"/cloud/documents/*.pdf; }

# ours: prints MB/s.
ours() {
  local before t0 line t1 s
  before=$(uploaded_count)
  ipptool -T 120 -f "$DOC" "ipp://127.0.0.1:$IPP_PORT/ipp/print" "$tmp/print.test" >/dev/null
  t0=$(now_hms)
  lib_log "  ours: spooled at $t0"
  wait_for 300 "the upload to be confirmed" uploaded_more "$before"
  line=$(grep 'the server confirmed the upload' "$KLOG" | tail -n1)
  t1=$(printf '%s\n' "$line" | grep -Eo '[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}' | head -n1)
  [ -n "$t1" ] || { echo "tools/bench-upload.sh: no time stamp in: $line" >&2; return 1; }
  s=$(elapsed_s "$t0" "$t1")
  lib_log "  ours: $SIZE bytes, spooled to confirmed in $s s"
  drop_documents
  awk -v b="$SIZE" -v s="$s" 'BEGIN { printf "%.1f", b / s / 1e6 }'
}

# anchor ROUND: prints MB/s.
anchor() {
  local key=bench-anchor-$1 t0 t1 id off=0 f codes s
  t0=$(date +%s%N)
  id=$(curl -sS --cacert "$CA" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data "$(jq -nc --arg k "$key" --arg s "$SHA" --argjson n "$SIZE" \
      '{idempotency_key:$k,name:"bench anchor",size:$n,sha256:$s}')" \
    "$KCPS_SERVER_URL/api/v1/uploads" | jq -r '.id // empty')
  [ -n "$id" ] || { echo "tools/bench-upload.sh: the anchor's create failed" >&2; return 1; }
  for f in "$tmp"/chunks/c.*; do
    printf 'url = "%s/api/v1/uploads/%s?offset=%d"\nupload-file = "%s"\n' \
      "$KCPS_SERVER_URL" "$id" "$off" "$f"
    printf 'header = "Authorization: Bearer %s"\n' "$TOKEN"
    printf 'header = "Content-Type: application/octet-stream"\nheader = "Expect:"\n'
    printf 'cacert = "%s"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\nnext\n' "$CA"
    off=$((off + $(stat -c %s "$f")))
  done >"$tmp/anchor.conf"
  printf 'url = "%s/api/v1/uploads/%s/complete"\nrequest = "POST"\n' "$KCPS_SERVER_URL" "$id" \
    >>"$tmp/anchor.conf"
  printf 'header = "Authorization: Bearer %s"\ncacert = "%s"\noutput = "/dev/null"\n' "$TOKEN" "$CA" \
    >>"$tmp/anchor.conf"
  printf 'write-out = "%%{http_code}\\n"\n' >>"$tmp/anchor.conf"
  chmod 0600 "$tmp/anchor.conf"
  codes=$(curl -sS -K "$tmp/anchor.conf")
  t1=$(date +%s%N)
  if [ "$(printf '%s\n' "$codes" | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }')" != \
    "200:$(ls "$tmp"/chunks | wc -l) 201:1 " ]; then
    echo "tools/bench-upload.sh: the anchor's answers: $(printf '%s' "$codes" | tr '\n' ' ')" >&2
    return 1
  fi
  s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  lib_log "  anchor: $SIZE bytes, create to complete in $s s"
  drop_documents
  awk -v b="$SIZE" -v s="$s" 'BEGIN { printf "%.1f", b / s / 1e6 }'
}

ours_best="" anchor_best=""
for ((round = 1; round <= ROUNDS; round++)); do
  lib_log "upload round $round/$ROUNDS"
  r=$(ours)
  ours_best=$(best "$ours_best" "$r")
  r=$(anchor "$round")
  anchor_best=$(best "$anchor_best" "$r")
done
r=$(ratio "$ours_best" "$anchor_best")
note=$(awk -v r="$r" 'BEGIN { if (r + 0 < 0.9) print " (below goal)" }')
echo "bench: upload-${MIB}MiB-MB-per-s ours=$ours_best anchor=$anchor_best ratio=$r goal=>=0.9$note"

# --- the resend after a kill at 50% ---------------------------------------------------
# A rate limit on this kcpsd only, so that "about half" is caught by
# polling whatever the machine's speed; it changes nothing of what is sent.
lib_log "upload: kill kcpsd at about 50% (sending at most $KILL_RATE/s), start it again"
stop_pid "$KCPSD_PID" || true
start_kcpsd_cloud 2 --upload-max-rate "$KILL_RATE"
ipptool -T 120 -f "$DOC" "ipp://127.0.0.1:$IPP_PORT/ipp/print" "$tmp/print.test" >/dev/null
SPOOL_ID=$("$build/client/kcps" --port "$LOCAL_PORT" jobs --json |
  jq -r '[.[] | select(.state != "uploaded")][0].id // empty')
[ -n "$SPOOL_ID" ] || { echo "tools/bench-upload.sh: the spooled job is not listed" >&2; exit 1; }
CREATE=$(jq -nc --arg k "kcpsd-$SPOOL_ID" --arg s "$SHA" --argjson n "$SIZE" \
  '{idempotency_key:$k,size:$n,sha256:$s}')
server_field() {
  curl -sS --cacert "$CA" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data "$CREATE" "$KCPS_SERVER_URL/api/v1/uploads" | jq -r ".$1 // empty"
}
half() { [ "$(server_field offset)" -ge $((SIZE / 2)) ]; }
wait_for 300 "the server to hold half the document" half
kill -KILL "$KCPSD_PID"
wait_for 10 "kcpsd to die" bash -c "! kill -0 $KCPSD_PID 2>/dev/null"
HAD=$(server_field offset)
start_kcpsd_cloud 3
line=$(wait_for_line 60 "$KLOG" "job $SPOOL_ID: resuming the upload at byte" "$KCPSD_PID")
RESUMED=$(printf '%s\n' "$line" | sed -n 's/.*at byte \([0-9]*\) of.*/\1/p')
wait_for 300 "the upload after the restart" grep -q "job $SPOOL_ID uploaded to the cloud spool" "$KLOG"
[ "$(server_field state)" = complete ] || { echo "tools/bench-upload.sh: not complete" >&2; exit 1; }
RECEIVED=$(server_field received)
SENT2=$(sed -n "s/.*job $SPOOL_ID: \([0-9]*\) chunk bytes sent from byte.*/\1/p" "$KLOG" |
  awk '{ s += $1 } END { print s + 0 }')
JOBS=$(curl -sS --cacert "$CA" -H "Authorization: Bearer $TOKEN" "$KCPS_SERVER_URL/api/v1/jobs" |
  jq --arg s "$SHA" '[.jobs[] | select(.sha256 == $s and .name == "bench upload")] | length')
lib_log "  killed at server offset $HAD of $SIZE; resumed at $RESUMED; the server received" \
  "$RECEIVED bytes ($((RECEIVED - SIZE)) again); kcpsd sent $SENT2 after its restart" \
  "(rest: $((SIZE - RESUMED))); server jobs made by kcpsd: $JOBS"
[ "$RESUMED" = "$HAD" ] || { echo "tools/bench-upload.sh: resumed at $RESUMED, not $HAD" >&2; exit 1; }
# One server job per print: the rounds' and this one, never a second.
[ "$JOBS" = $((ROUNDS + 1)) ] || {
  echo "tools/bench-upload.sh: $JOBS server jobs from kcpsd, expected $((ROUNDS + 1))" >&2
  exit 1
}
resent=$(awk -v r="$RECEIVED" -v s="$SIZE" -v c="$CHUNK" 'BEGIN { printf "%.2f", (r - s) / c }')
note=$(awk -v r="$resent" 'BEGIN { if (r + 0 > 1) print " (over goal)" }')
echo "bench: upload-resend-after-kill-chunks ours=$resent anchor=1 ratio=$(ratio "$resent" 1)" \
  "goal=<=1$note"
