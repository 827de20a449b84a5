#!/bin/bash
# Direct printing (issue 5, first step): kcpsd releases spooled jobs to real
# ippeveprinters — PDF-capable, raster-only (PWG + URF) and IPPS (a
# self-signed certificate pinned on first use, a changed one refused until
# `kcps printer forget`) — and follows them: completed marks the job printed
# and records usage once; a busy printer is retried without printing twice;
# an unreachable printer, an aborted job and a printer killed mid-job leave
# the job held and nothing counted; a kcpsd killed mid-release resumes it
# from its release journal (followed, found by Get-Jobs, or failed).
# Usage: direct-print.sh BUILD_DIR [SOURCE_DIR]. Exit 0 pass, 1 fail, 77 skip.
set -u

BUILD=${1:?usage: direct-print.sh BUILD_DIR}
KCPSD="$BUILD/client/kcpsd"
KCPS="$BUILD/client/kcps"
PDF=/usr/share/cups/data/default-testpage.pdf
. "$(dirname "$0")/lib.sh"

for tool in ippeveprinter ipptool qpdf avahi-daemon dbus-daemon; do
  command -v "$tool" >/dev/null 2>&1 || { echo "FAIL: $tool not installed (make test installs it)"; exit 1; }
done
[ -x "$KCPSD" ] && [ -x "$KCPS" ] || { echo "SKIP: kcpsd/kcps not built"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "SKIP: ippeveprinter needs a system D-Bus and avahi (root here)"; exit 77; }
[ -r "$PDF" ] || { echo "SKIP: no $PDF"; exit 77; }
lib_isolate_run "$0" "$@" || { echo "FAIL: cannot isolate /run"; exit 1; }

D=$(mktemp -d /tmp/kcps-direct.XXXXXX)
chmod 0700 "$D"
cleanup() {
  lib_stop_all
  rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail() {
  echo "FAIL: $*"
  lib_dump_logs all
  exit 1
}

start_dbus_avahi "$D" || fail "D-Bus/avahi did not start"

# The "print" command of the printers: copies what it got to OUT, waits
# while CTL/block exists, exits 1 when CTL/fail exists (job aborted).
cat >"$D/print-cmd.sh" <<'CMD'
#!/bin/sh
ctl=$(dirname "$0")/ctl
cp "$1" "$(dirname "$0")/out/"
while [ -e "$ctl/block" ]; do sleep 0.05; done
[ -e "$ctl/fail" ] && exit 1
exit 0
CMD
chmod 0755 "$D/print-cmd.sh"
mkdir -p "$D/ctl" "$D/out"

# A 3-page PDF.
qpdf --empty --pages "$PDF" "$PDF" "$PDF" -- "$D/three.pdf" || fail "qpdf"

# ippeve NAME PORT FORMATS [extra options]: a printer; sets its pid as PRN_<NAME>.
ippeve() {
  local name=$1 port=$2 formats=$3
  shift 3
  mkdir -p "$D/$name"
  lib_start "ippeve-$name" "$D/$name/log" ippeveprinter -v -f "$formats" -p "$port" \
    -d "$D/$name" -n localhost -c "$D/print-cmd.sh" "$@" "kcps-$name-$port"
  eval "PRN_${name}=$LIB_PID"
}
P_PDF=$(free_port) && P_RAS=$(free_port) && P_TLS=$(free_port) && P_DEAD=$(free_port) ||
  fail "no free ports"
ippeve pdf "$P_PDF" application/pdf,image/pwg-raster -2
ippeve raster "$P_RAS" image/pwg-raster,image/urf
mkdir -p "$D/keys"
ippeve tls "$P_TLS" application/pdf -K "$D/keys"
URI_PDF="ipp://127.0.0.1:$P_PDF/ipp/print"
URI_RAS="ipp://127.0.0.1:$P_RAS/ipp/print"
URI_TLS="ipps://localhost:$P_TLS/ipp/print"
wait_for 30 "PDF printer" ipp_printer_ready "$URI_PDF" || fail "PDF printer not ready"
wait_for 30 "raster printer" ipp_printer_ready "$URI_RAS" || fail "raster printer not ready"
wait_for 30 "IPPS printer" ipp_printer_ready "$URI_TLS" || fail "IPPS printer not ready"

# kcpsd without a server: direct printing needs none.
mkdir -p "$D/kcpsd/spool" "$D/kcpsd/state"
chmod 0700 "$D/kcpsd" "$D/kcpsd/spool" "$D/kcpsd/state"
lib_start kcpsd "$D/kcpsd/log" env G_MESSAGES_DEBUG=kcpsd "$KCPSD" --user \
  --spool "$D/kcpsd/spool" --state "$D/kcpsd/state" --ipp-port 0 --pull-port 0 \
  --pull-listen 127.0.0.1 --pull-host 127.0.0.1 --local-port 0
line=$(wait_for_line 30 "$D/kcpsd/log" 'kcpsd: ready ipp=' "$LIB_PID") || fail "kcpsd did not start"
KCPSD_PID=$LIB_PID
IPP_PORT=$(printf '%s\n' "$line" | sed -n 's/.*ipp=\([0-9]*\).*/\1/p')
export KCPS_LOCAL_PORT=$(printf '%s\n' "$line" | sed -n 's/.*local=\([0-9]*\).*/\1/p')
USAGE="$D/kcpsd/state/usage.jsonl"

# spool FILE: prints the id of a new spooled job made from FILE.
spool() {
  local before after
  before=$("$KCPS" jobs --json | jq -r '.[].id' | sort)
  ipptool -q -tf "$1" "ipp://127.0.0.1:$IPP_PORT/ipp/print" print-job.test >/dev/null 2>&1 ||
    { echo "spooling $1 failed" >&2; return 1; }
  after=$("$KCPS" jobs --json | jq -r '.[].id' | sort)
  comm -13 <(echo "$before") <(echo "$after") | head -n1
}
job_state() { "$KCPS" jobs --json | jq -r --arg id "$1" '.[] | select(.id == $id) | .state'; }
usage_lines() { cat "$USAGE" 2>/dev/null | grep -c "\"job\":\"$1\""; }
out_count() { find "$D/out" -type f | wc -l; }
# pwg_pages FILE / urf_pages FILE: page count of a raster file.
pwg_pages() { grep -a -o 'PwgRaster' "$1" | wc -l; }
urf_pages() { od -An -tu1 -j8 -N4 "$1" | awk '{print $1*16777216+$2*65536+$3*256+$4}'; }

# 1. PDF-capable printer: the PDF goes as PDF, 2 copies, two-sided, usage once.
J1=$(spool "$D/three.pdf") && [ -n "$J1" ] || fail "no job spooled"
"$KCPS" release "$J1" --printer "$URI_PDF" --copies 2 --duplex --wait || fail "release to the PDF printer"
# The printer's own record of the job: two copies, two-sided.
PJ=$("$KCPS" jobs --json | jq -r --arg id "$J1" '.[] | select(.id == $id) | .release.printer_job_id')
cat >"$D/job.test" <<TEST
{
  OPERATION Get-Job-Attributes
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri \$uri
  ATTR integer job-id $PJ
  STATUS successful-ok
  EXPECT sides OF-TYPE keyword WITH-VALUE two-sided-long-edge
  EXPECT copies OF-TYPE integer WITH-VALUE 2
  EXPECT job-state WITH-VALUE 9
}
TEST
ipptool -q "$URI_PDF" "$D/job.test" || fail "the printer's job $PJ is not 2 copies two-sided and completed: $(ipptool -tv "$URI_PDF" "$D/job.test" 2>&1 | tail -n 20)"
[ "$(job_state "$J1")" = printed ] || fail "job 1 is $(job_state "$J1"), expected printed"
f=$(ls "$D/out"/* | head -n1)
head -c 5 "$f" | grep -q '%PDF-' || fail "the PDF printer got no PDF"
[ "$(qpdf --show-npages "$f")" = 3 ] || fail "the PDF printer got $(qpdf --show-npages "$f") pages, expected 3"
[ "$(usage_lines "$J1")" = 1 ] || fail "usage of job 1 recorded $(usage_lines "$J1") times, expected 1"
grep "\"job\":\"$J1\"" "$USAGE" | grep -q '"impressions":6' || fail "usage of job 1 is not 3 pages x 2 copies: $(cat "$USAGE")"
[ "$(stat -c %a "$USAGE")" = 600 ] || fail "usage.jsonl is not 0600"
"$KCPS" release "$J1" --printer "$URI_PDF" >/dev/null 2>&1 && fail "a printed job was released again"
rm -f "$D/out"/*

# 2. Raster-only printer: PWG raster, one page header per page. It prints
# one-sided only: --duplex is refused with the reason and the job stays held.
J2=$(spool "$D/three.pdf") || fail "spool"
msg=$("$KCPS" release "$J2" --printer "$URI_RAS" --duplex --wait 2>&1) && fail "--duplex on a one-sided printer succeeded"
echo "$msg" | grep -q "two-sided" || fail "the duplex refusal does not say why: $msg"
[ "$(job_state "$J2")" = spooled ] && [ "$(out_count)" = 0 ] || fail "a refused duplex release printed"
"$KCPS" release "$J2" --printer "$URI_RAS" --mono --wait || fail "release to the raster printer"
[ "$(job_state "$J2")" = printed ] || fail "job 2 is $(job_state "$J2"), expected printed"
f=$(ls "$D/out"/* | head -n1)
head -c 4 "$f" | grep -q 'RaS2' || fail "the raster printer got no PWG raster: $(head -c 8 "$f" | od -c | head -n1)"
[ "$(pwg_pages "$f")" = 3 ] || fail "the raster printer got $(pwg_pages "$f") PWG pages, expected 3"
rm -f "$D/out"/*

# 3. IPPS: pinned on first use, printed; the pin file is 0600.
J3=$(spool "$PDF") || fail "spool"
"$KCPS" release "$J3" --printer "$URI_TLS" --wait || fail "release to the IPPS printer"
[ "$(job_state "$J3")" = printed ] || fail "job 3 is $(job_state "$J3"), expected printed"
PINS="$D/kcpsd/state/printer-pins"
grep -q "^localhost:$P_TLS [0-9a-f]\{64\}$" "$PINS" || fail "no pin for localhost:$P_TLS: $(cat "$PINS" 2>&1)"
[ "$(stat -c %a "$PINS")" = 600 ] || fail "printer-pins is not 0600"
rm -f "$D/out"/*

# 4. IPPS with a changed certificate: refused, nothing sent, job held;
# after `kcps printer forget` it prints.
stop_pid "$PRN_tls"
rm -rf "$D/keys" && mkdir -p "$D/keys"
ippeve tls "$P_TLS" application/pdf -K "$D/keys"
wait_for 30 "IPPS printer again" ipp_printer_ready "$URI_TLS" || fail "IPPS printer not ready again"
J4=$(spool "$PDF") || fail "spool"
msg=$("$KCPS" release "$J4" --printer "$URI_TLS" --wait 2>&1) && fail "a changed certificate was accepted"
echo "$msg" | grep -q "changed since it was pinned" || fail "no clear message for a changed certificate: $msg"
echo "$msg" | grep -q "kcps printer forget" || fail "the message does not say how to reset: $msg"
[ "$(out_count)" = 0 ] || fail "the printer with a changed certificate received a document"
[ "$(job_state "$J4")" = spooled ] || fail "job 4 is $(job_state "$J4"), expected spooled (held)"
"$KCPS" printer forget "$URI_TLS" | grep -q Forgot || fail "printer forget"
"$KCPS" release "$J4" --printer "$URI_TLS" --wait || fail "release after forgetting the pin"
[ "$(job_state "$J4")" = printed ] || fail "job 4 is not printed after forgetting the pin"
rm -f "$D/out"/*

# 5. URF: a printer that takes only URF.
P_URF=$(free_port) || fail "port"
ippeve urf "$P_URF" image/urf
URI_URF="ipp://127.0.0.1:$P_URF/ipp/print"
wait_for 30 "URF printer" ipp_printer_ready "$URI_URF" || fail "URF printer not ready"
J5=$(spool "$D/three.pdf") || fail "spool"
"$KCPS" release "$J5" --printer "$URI_URF" --wait || fail "release to the URF printer"
f=$(ls "$D/out"/* | head -n1)
head -c 7 "$f" | grep -q 'UNIRAST' || fail "the URF printer got no URF"
[ "$(urf_pages "$f")" = 3 ] || fail "the URF file says $(urf_pages "$f") pages, expected 3"
rm -f "$D/out"/*

# 6. Busy: while job A prints (blocked), job B's Create-Job is refused with
# server-error-busy and retried; each is printed exactly once.
touch "$D/ctl/block"
JA=$(spool "$PDF") && JB=$(spool "$PDF") || fail "spool"
"$KCPS" release "$JA" --printer "$URI_PDF" >/dev/null || fail "release A"
wait_for 30 "job A printing" sh -c "\"$KCPS\" jobs --json | jq -e --arg id $JA '.[] | select(.id == \$id) | .release.state == \"printing\"'" ||
  fail "job A never reached printing"
"$KCPS" release "$JB" --printer "$URI_PDF" >/dev/null || fail "release B"
wait_for 30 "job B retrying" sh -c "\"$KCPS\" jobs --json | jq -e --arg id $JB '.[] | select(.id == \$id) | .release.state == \"retrying\"'" ||
  fail "job B was never told busy: $("$KCPS" jobs --json)"
rm -f "$D/ctl/block"
wait_for 60 "A and B printed" sh -c "[ \"\$(\"$KCPS\" jobs --json | jq -r '[.[] | select(.id == \"$JA\" or .id == \"$JB\") | .state] | join(\",\")')\" = printed,printed ]" ||
  fail "A and B not both printed: $("$KCPS" jobs --json)"
[ "$(out_count)" = 2 ] || fail "the printer received $(out_count) documents for A and B, expected 2"
[ "$(usage_lines "$JA")" = 1 ] && [ "$(usage_lines "$JB")" = 1 ] || fail "A or B counted other than once"
rm -f "$D/out"/*

# 7. Unreachable printer: retried, then failed; job held, nothing counted.
J7=$(spool "$PDF") || fail "spool"
msg=$("$KCPS" release "$J7" --printer "ipp://127.0.0.1:$P_DEAD/ipp/print" --wait 2>&1) &&
  fail "a release to an unreachable printer succeeded"
echo "$msg" | grep -q "retrying" || fail "an unreachable printer was not retried: $msg"
[ "$(job_state "$J7")" = spooled ] || fail "job 7 is $(job_state "$J7"), expected spooled (held)"
[ "$(usage_lines "$J7")" = 0 ] || fail "an unprinted job was counted"

# 8. Aborted at the printer: job held, nothing counted.
touch "$D/ctl/fail"
J8=$(spool "$PDF") || fail "spool"
"$KCPS" release "$J8" --printer "$URI_PDF" --wait >"$D/r8" 2>&1 && fail "an aborted job counted as completed"
grep -q "aborted" "$D/r8" || fail "release 8 did not end aborted: $(cat "$D/r8")"
[ "$(job_state "$J8")" = spooled ] || fail "job 8 is $(job_state "$J8"), expected spooled (held)"
[ "$(usage_lines "$J8")" = 0 ] || fail "an aborted job was counted"
rm -f "$D/ctl/fail" "$D/out"/*

# 9. Printer killed mid-job: job held, nothing counted.
touch "$D/ctl/block"
J9=$(spool "$PDF") || fail "spool"
"$KCPS" release "$J9" --printer "$URI_RAS" >/dev/null || fail "release 9"
wait_for 30 "job 9 printing" sh -c "\"$KCPS\" jobs --json | jq -e --arg id $J9 '.[] | select(.id == \$id) | .release.state == \"printing\"'" ||
  fail "job 9 never reached printing"
kill -KILL "$PRN_raster"
rm -f "$D/ctl/block"
wait_for 60 "release 9 ended" sh -c "\"$KCPS\" jobs --json | jq -e --arg id $J9 '.[] | select(.id == \$id) | .release.state == \"failed\"'" ||
  fail "release 9 did not fail after the printer died: $("$KCPS" jobs --json)"
[ "$(job_state "$J9")" = spooled ] || fail "job 9 is $(job_state "$J9"), expected spooled (held)"
[ "$(usage_lines "$J9")" = 0 ] || fail "a job whose printer died was counted"

# 9b. kcpsd killed (SIGKILL) mid-release: the release journal
# (state/releases.jsonl) brings the release back on the next start. Printed
# once, counted once, never lost; a job whose release is unfinished cannot
# be released again meanwhile.
JOURNAL="$D/kcpsd/state/releases.jsonl"
restarts=0
# restart_kcpsd: SIGKILLs kcpsd and starts it again on the same IPP and local ports.
restart_kcpsd() {
  kill -KILL "$KCPSD_PID" 2>/dev/null
  wait "$KCPSD_PID" 2>/dev/null
  restarts=$((restarts + 1))
  lib_start kcpsd "$D/kcpsd/log.$restarts" env G_MESSAGES_DEBUG=kcpsd "$KCPSD" --user \
    --spool "$D/kcpsd/spool" --state "$D/kcpsd/state" --ipp-port "$IPP_PORT" --pull-port 0 \
    --pull-listen 127.0.0.1 --pull-host 127.0.0.1 --local-port "$KCPS_LOCAL_PORT"
  KCPSD_PID=$LIB_PID
  wait_for_line 30 "$D/kcpsd/log.$restarts" 'kcpsd: ready ipp=' "$LIB_PID" >/dev/null
}
release_of() { "$KCPS" jobs --json | jq -r --arg id "$1" --arg m "$2" '.[] | select(.id == $id) | .release[$m] // empty'; }
# release_get RID: GET /v1/releases/RID's state (peer credentials identify us).
release_get() { curl -sS "http://127.0.0.1:$KCPS_LOCAL_PORT/v1/releases/$1" | jq -r '.state // empty'; }
printing_of() { "$KCPS" jobs --json | jq -e --arg id "$1" '.[] | select(.id == $id) | .release.state == "printing"' >/dev/null; }
rm -f "$D/out"/*

# (a) Killed while "printing": followed again after the restart to completed.
# (This kcpsd has no server: usage.jsonl is its count; 10e has the server's.)
touch "$D/ctl/block"
JK=$(spool "$D/three.pdf") && [ -n "$JK" ] || fail "spool (kill a)"
"$KCPS" release "$JK" --printer "$URI_PDF" >/dev/null || fail "release (kill a)"
wait_for 30 "kill a printing" printing_of "$JK" || fail "release (kill a) never reached printing"
RID=$(release_of "$JK" id)
PJK=$(release_of "$JK" printer_job_id)
[ "$(stat -c %a "$JOURNAL")" = 600 ] || fail "releases.jsonl is not 0600"
jq -e -s --arg id "$RID" --argjson pj "$PJK" 'map(select(.id == $id)) | last | .state == "printing" and .printer_job_id == $pj' "$JOURNAL" >/dev/null ||
  fail "the journal does not say release $RID is printing printer job $PJK: $(cat "$JOURNAL")"
restart_kcpsd || fail "kcpsd did not start again after SIGKILL (kill a)"
grep -q "release $RID of job $JK .*resumed (printing, printer job $PJK)" "$D/kcpsd/log.$restarts" ||
  fail "kcpsd did not resume release $RID: $(cat "$D/kcpsd/log.$restarts")"
[ "$(release_get "$RID")" = printing ] || fail "GET /v1/releases/$RID after the restart: '$(release_get "$RID")', expected printing"
msg=$("$KCPS" release "$JK" --printer "$URI_PDF" 2>&1) && fail "a job whose release was resumed was released again"
echo "$msg" | grep -q "being released already" || fail "the second release was not refused as running: $msg"
rm -f "$D/ctl/block"
wait_for 60 "kill a completed" sh -c "[ \"\$(curl -sS http://127.0.0.1:$KCPS_LOCAL_PORT/v1/releases/$RID | jq -r .state)\" = completed ]" ||
  fail "release $RID was not followed to completed: $(curl -sS "http://127.0.0.1:$KCPS_LOCAL_PORT/v1/releases/$RID")"
[ "$(job_state "$JK")" = printed ] || fail "job (kill a) is $(job_state "$JK"), expected printed"
[ "$(release_of "$JK" state)" = completed ] || fail "GET /v1/jobs does not show the resumed release completed"
[ "$(usage_lines "$JK")" = 1 ] || fail "job (kill a) counted $(usage_lines "$JK") times in usage.jsonl, expected 1"
[ "$(out_count)" = 1 ] || fail "the printer received $(out_count) documents for (kill a), expected 1"
rm -f "$D/out"/*

# (b) Killed while "printing", then the printer aborts: job held, nothing counted.
touch "$D/ctl/block"
JB2=$(spool "$PDF") && [ -n "$JB2" ] || fail "spool (kill b)"
"$KCPS" release "$JB2" --printer "$URI_PDF" >/dev/null || fail "release (kill b)"
wait_for 30 "kill b printing" printing_of "$JB2" || fail "release (kill b) never reached printing"
RIDB=$(release_of "$JB2" id)
restart_kcpsd || fail "kcpsd did not start again after SIGKILL (kill b)"
touch "$D/ctl/fail"
rm -f "$D/ctl/block"
wait_for 60 "kill b aborted" sh -c "[ \"\$(curl -sS http://127.0.0.1:$KCPS_LOCAL_PORT/v1/releases/$RIDB | jq -r .state)\" = aborted ]" ||
  fail "release $RIDB did not end aborted: $(curl -sS "http://127.0.0.1:$KCPS_LOCAL_PORT/v1/releases/$RIDB")"
rm -f "$D/ctl/fail"
[ "$(job_state "$JB2")" = spooled ] || fail "job (kill b) is $(job_state "$JB2"), expected spooled (held)"
[ "$(usage_lines "$JB2")" = 0 ] || fail "an aborted resumed release was counted"
rm -f "$D/out"/*

# (b2) Stopped normally (SIGTERM) while "printing": the job stays held, the
# journal record stays, and the next start follows it to completed.
touch "$D/ctl/block"
JT=$(spool "$PDF") && [ -n "$JT" ] || fail "spool (term)"
"$KCPS" release "$JT" --printer "$URI_PDF" >/dev/null || fail "release (term)"
wait_for 30 "term printing" printing_of "$JT" || fail "release (term) never reached printing"
RIDT=$(release_of "$JT" id)
stop_pid "$KCPSD_PID" 30
jq -e -s --arg id "$RIDT" 'map(select(.id == $id)) | last | .state == "printing"' "$JOURNAL" >/dev/null ||
  fail "SIGTERM ended release $RIDT in the journal: $(grep -F "$RIDT" "$JOURNAL")"
restart_kcpsd || fail "kcpsd did not start again after SIGTERM"
[ "$(job_state "$JT")" = spooled ] || fail "job (term) is $(job_state "$JT") after SIGTERM, expected spooled (held)"
rm -f "$D/ctl/block"
wait_for 60 "term completed" sh -c "[ \"\$(curl -sS http://127.0.0.1:$KCPS_LOCAL_PORT/v1/releases/$RIDT | jq -r .state)\" = completed ]" ||
  fail "release $RIDT was not followed to completed after SIGTERM: $(curl -sS "http://127.0.0.1:$KCPS_LOCAL_PORT/v1/releases/$RIDT")"
[ "$(job_state "$JT")" = printed ] && [ "$(usage_lines "$JT")" = 1 ] ||
  fail "job (term) is $(job_state "$JT"), counted $(usage_lines "$JT") times"
rm -f "$D/out"/*

# (c) Killed between the request and the printer's answer ("sending", no
# printer job id): Get-Jobs looks for the job by its job-name tag. A
# journal as kcpsd leaves it then, for two releases: one whose job the
# printer did take (submitted here under the release's tag: found, followed,
# printed, counted once) and one it never got (failed, held, nothing
# counted, and released again afterwards).
touch "$D/ctl/block"
JF=$(spool "$PDF") && JN=$(spool "$PDF") && [ -n "$JF" ] && [ -n "$JN" ] || fail "spool (kill c)"
RIDF=abcdef12-0000-4000-8000-$(printf '%012d' $$)
RIDN=fedcba98-0000-4000-8000-$(printf '%012d' $$)
cat >"$D/tagged.test" <<TEST
{
  OPERATION Print-Job
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri \$uri
  ATTR name requesting-user-name $(id -un)
  ATTR name job-name "testpage [kcps:abcdef12]"
  ATTR mimeMediaType document-format application/pdf
  FILE $PDF
  STATUS successful-ok
}
TEST
ipptool -q "$URI_PDF" "$D/tagged.test" || fail "submitting the tagged job: $(ipptool -tv "$URI_PDF" "$D/tagged.test" 2>&1 | tail -n 5)"
kill -KILL "$KCPSD_PID" 2>/dev/null
wait "$KCPSD_PID" 2>/dev/null
now=$(date +%s)
sending_record() { # sending_record RELEASE_ID JOB_ID: a "sending" line without a printer job id
  jq -n -c --arg id "$1" --arg job "$2" --arg p "$URI_PDF" --argjson uid "$(id -u)" --argjson t "$now" \
    '{id: $id, state: "sending", uid: $uid, job: $job, printer: $p, copies: 1, color: null,
      duplex: false, pages: 1, format: "application/pdf", create_job: false, created: $t,
      printer_job_id: 0}'
}
sending_record "$RIDF" "$JF" >>"$JOURNAL"
sending_record "$RIDN" "$JN" >>"$JOURNAL"
restart_kcpsd || fail "kcpsd did not start again (kill c)"
wait_for 30 "kill c: not found" sh -c "[ \"\$(curl -sS http://127.0.0.1:$KCPS_LOCAL_PORT/v1/releases/$RIDN | jq -r .state)\" = failed ]" ||
  fail "release $RIDN (never taken) did not fail: $(curl -sS "http://127.0.0.1:$KCPS_LOCAL_PORT/v1/releases/$RIDN")"
curl -sS "http://127.0.0.1:$KCPS_LOCAL_PORT/v1/releases/$RIDN" | jq -r .message | grep -q "before the printer took the job" ||
  fail "the not-found release does not say the printer never took it"
[ "$(job_state "$JN")" = spooled ] && [ "$(usage_lines "$JN")" = 0 ] || fail "a release the printer never got changed its job or was counted"
wait_for 30 "kill c: found" sh -c "[ \"\$(curl -sS http://127.0.0.1:$KCPS_LOCAL_PORT/v1/releases/$RIDF | jq -r .state)\" = printing ]" ||
  fail "release $RIDF was not found at the printer: $(curl -sS "http://127.0.0.1:$KCPS_LOCAL_PORT/v1/releases/$RIDF")"
rm -f "$D/ctl/block"
wait_for 60 "kill c: found completed" sh -c "[ \"\$(curl -sS http://127.0.0.1:$KCPS_LOCAL_PORT/v1/releases/$RIDF | jq -r .state)\" = completed ]" ||
  fail "release $RIDF did not complete: $(curl -sS "http://127.0.0.1:$KCPS_LOCAL_PORT/v1/releases/$RIDF")"
[ "$(job_state "$JF")" = printed ] && [ "$(usage_lines "$JF")" = 1 ] ||
  fail "the found release's job is $(job_state "$JF"), counted $(usage_lines "$JF") times"
"$KCPS" release "$JN" --printer "$URI_PDF" --wait >/dev/null || fail "the job the printer never got did not release again"
[ "$(job_state "$JN")" = printed ] || fail "job (kill c, not found) is $(job_state "$JN") after releasing it again"
# Compacted at the last start; every release since has ended.
restart_kcpsd || fail "kcpsd did not start again (kill c, end)"
[ "$(grep -c . "$JOURNAL")" = 0 ] || fail "ended releases are left in the journal: $(cat "$JOURNAL")"
[ "$(stat -c %a "$JOURNAL")" = 600 ] || fail "releases.jsonl is not 0600 after compaction"
rm -f "$D/out"/*

# Nothing counted twice over the whole run: one usage line per printed job.
n_printed=$("$KCPS" jobs --json | jq '[.[] | select(.state == "printed")] | length')
[ "$(wc -l <"$USAGE")" = "$n_printed" ] || fail "usage has $(wc -l <"$USAGE") lines for $n_printed printed jobs"

# 10. Quota and usage with a server: a second kcpsd logged in to kcps-server
# as alice, whose monthly quota is 4 pages. A 3-page release prints and is
# counted once by the server, although the server is down when kcpsd posts
# the record (kept in the outbox, retried, a second post deduplicated); the
# next 3-page release is refused with what is left, nothing reaching the
# printer; with the server down, the signed statement refuses it offline,
# and allows one that fits, whose record is posted once when the server is
# back (also across a SIGKILL and restart of kcpsd).
SERVER_BIN="$BUILD/server-stub/kcps-server"
[ -x "$SERVER_BIN" ] || fail "kcps-server not built"
command -v curl >/dev/null && command -v jq >/dev/null || fail "curl and jq needed (make test installs them)"
DATA="$D/server"
start_kcps_server "$SERVER_BIN" "$DATA" "$D/server.log" || fail "kcps-server did not start"
SERVER_PORT=${KCPS_SERVER_URL##*:}
SERVER_CA="$DATA/server.crt"
ALICE_PASSWORD=$(demo_credential "$DATA" "alice@a.test password")
ADMIN_PASSWORD=$(demo_credential "$DATA" "admin@a.test password")
api() { # api METHOD ROUTE TOKEN [BODY]: the answer's body; the status in $D/status
  local method=$1 route=$2 token=$3 body=${4:-}
  curl -sS --cacert "$SERVER_CA" -X "$method" -H "Authorization: Bearer $token" \
    ${body:+-H 'Content-Type: application/json' --data "$body"} -o "$D/answer" \
    -w '%{http_code}' "$KCPS_SERVER_URL$route" >"$D/status" || echo 000 >"$D/status"
  cat "$D/answer" 2>/dev/null
}
login() { # login EMAIL PASSWORD: the token
  jq -n --arg e "$1" --arg p "$2" '{email: $e, password: $p}' |
    curl -sS --cacert "$SERVER_CA" -H 'Content-Type: application/json' --data @- \
      "$KCPS_SERVER_URL/api/v1/login" | jq -r '.token // empty'
}
ADMIN=$(login admin@a.test "$ADMIN_PASSWORD") && [ -n "$ADMIN" ] || fail "admin login"
ALICE=$(login alice@a.test "$ALICE_PASSWORD") && [ -n "$ALICE" ] || fail "alice login"
ALICE_ID=$(api GET /api/v1/me "$ALICE" | jq -r '.id // empty')
[ -n "$ALICE_ID" ] || fail "alice's id: $(cat "$D/answer")"
api PUT "/api/v1/users/$ALICE_ID/quota" "$ADMIN" '{"pages":4,"color_pages":null}' >/dev/null
[ "$(cat "$D/status")" = 200 ] || fail "setting alice's quota: $(cat "$D/status") $(cat "$D/answer")"
used_pages() { api GET /api/v1/me/quota "$ALICE" | jq -r '.used_pages // empty'; }
[ "$(used_pages)" = 0 ] || fail "alice has used pages before the test"

K2="$D/kcpsd2"
start_kcpsd "$KCPSD" "$K2" "$KCPS_SERVER_URL" "$SERVER_CA" || fail "kcpsd with a server did not start"
K2_LOG="$K2/kcpsd.log"
kcps2() { KCPS_LOCAL_PORT=$KCPSD_LOCAL_PORT "$KCPS" "$@"; }
IPP_PORT_1=$IPP_PORT
IPP_PORT=$KCPSD_IPP_PORT
spool2() { KCPS_LOCAL_PORT=$KCPSD_LOCAL_PORT spool "$@"; }
job_state2() { kcps2 jobs --json | jq -r --arg id "$1" '.[] | select(.id == $id) | .state'; }
printf '%s\n' "$ALICE_PASSWORD" | kcps2 login alice@a.test >/dev/null 2>&1 || fail "kcps login alice"
OUTBOX="$K2/state/usage-outbox.jsonl"
rm -f "$D/out"/*

# 10a. Within quota; the server goes away before the usage post.
touch "$D/ctl/block"
QA=$(spool2 "$D/three.pdf") && [ -n "$QA" ] || fail "spool (quota A)"
kcps2 release "$QA" --printer "$URI_PDF" >/dev/null || fail "release quota A"
wait_for 30 "quota A printing" sh -c "KCPS_LOCAL_PORT=$KCPSD_LOCAL_PORT \"$KCPS\" jobs --json | jq -e --arg id $QA '.[] | select(.id == \$id) | .release.state == \"printing\"'" ||
  fail "quota A never reached printing: $(kcps2 jobs --json)"
SERVER_PID=$(lib_pid_of kcps-server | tail -n1)
stop_pid "$SERVER_PID"
rm -f "$D/ctl/block"
wait_for 60 "quota A printed" sh -c "[ \"\$(KCPS_LOCAL_PORT=$KCPSD_LOCAL_PORT \"$KCPS\" jobs --json | jq -r --arg id $QA '.[] | select(.id == \$id) | .state')\" = printed ]" ||
  fail "quota A not printed: $(kcps2 jobs --json)"
[ "$(stat -c %a "$OUTBOX")" = 600 ] || fail "the usage outbox is not 0600"
grep -q '"add"' "$OUTBOX" || fail "no usage record in the outbox: $(cat "$OUTBOX")"
wait_for 60 "a failed usage post" grep -q "cannot post it now" "$K2_LOG" ||
  fail "kcpsd did not try (and fail) to post while the server was down"
grep -q '"sent"' "$OUTBOX" && fail "a record was marked sent while the server was down"
start_kcps_server "$SERVER_BIN" "$DATA" "$D/server2.log" "127.0.0.1:$SERVER_PORT" ||
  fail "kcps-server did not start again on port $SERVER_PORT"
wait_for 90 "the usage record sent" grep -q '"sent"' "$OUTBOX" ||
  fail "the usage record was not sent after the server came back: $(cat "$OUTBOX")"
[ "$(used_pages)" = 3 ] || fail "the server counts $(used_pages) pages for alice, expected 3"
# Posted once more (a retry after a lost answer): the same key, 200, not counted again.
KEY=$(grep '"add"' "$OUTBOX" | head -n1 | jq -r '.add.key')
BODY=$(grep '"add"' "$OUTBOX" | head -n1 | jq -c '.add | {idempotency_key: .key, printer, time: (.time | todate), job_type: "print", pages, copies, color, duplex, job_id}')
api POST /api/v1/usage "$ALICE" "$BODY" >/dev/null
[ "$(cat "$D/status")" = 200 ] || fail "a repeated usage post of $KEY answered $(cat "$D/status") $(cat "$D/answer")"
[ "$(used_pages)" = 3 ] || fail "after a repeated post the server counts $(used_pages) pages, expected 3"
[ "$(out_count)" = 1 ] || fail "the printer received $(out_count) documents for quota A, expected 1"
rm -f "$D/out"/*

# 10b. Over quota (3 pages, 1 left): refused with what is left; nothing printed.
QB=$(spool2 "$D/three.pdf") && [ -n "$QB" ] || fail "spool (quota B)"
msg=$(kcps2 release "$QB" --printer "$URI_PDF" --wait 2>&1) && fail "a release over quota succeeded"
echo "$msg" | grep -q "quota exceeded" || fail "the over-quota refusal does not say so: $msg"
echo "$msg" | grep -q "1 of your monthly 4 pages are left" || fail "the refusal does not say what is left: $msg"
[ "$(out_count)" = 0 ] || fail "a release over quota reached the printer"
held2() { case $(job_state2 "$1") in spooled|registered) return 0 ;; *) return 1 ;; esac; }
held2 "$QB" || fail "quota B is $(job_state2 "$QB"), expected held (spooled or registered)"
[ "$(used_pages)" = 3 ] || fail "a refused release was counted"
ls "$K2"/state/quota-*.statement >/dev/null 2>&1 || fail "no quota statement kept"
[ "$(stat -c %a "$K2"/state/quota-*.statement)" = 600 ] || fail "the quota statement is not 0600"

# 10c. Offline: the kept statement (4 pages, 3 used) refuses it all the same.
SERVER_PID=$(lib_pid_of kcps-server | tail -n1)
stop_pid "$SERVER_PID"
msg=$(kcps2 release "$QB" --printer "$URI_PDF" --wait 2>&1) && fail "an offline release over quota succeeded"
echo "$msg" | grep -q "offline figure" || fail "the offline refusal does not say it is the offline figure: $msg"
echo "$msg" | grep -q "1 pages are left" || fail "the offline refusal does not say what is left: $msg"
[ "$(out_count)" = 0 ] || fail "an offline release over quota reached the printer"
held2 "$QB" || fail "quota B is $(job_state2 "$QB") after the offline refusal"

# 10d. The server unreachable just before and during a release (it is still
# down from 10c): the 1-page release fits the signed statement (4 pages, 3
# used), prints once, and its usage record waits in the outbox; kcpsd is
# killed (SIGKILL) and started again meanwhile; when the server is back and
# alice logs in, the record is posted exactly once.
rm -f "$D/out"/*
[ "$(qpdf --show-npages "$PDF")" = 1 ] || fail "$PDF is not a 1-page document"
QD=$(spool2 "$PDF") && [ -n "$QD" ] || fail "spool (quota D)"
kcps2 release "$QD" --printer "$URI_PDF" --wait >/dev/null 2>&1 ||
  fail "the offline release within the statement failed: $(kcps2 jobs --json)"
[ "$(job_state2 "$QD")" = printed ] || fail "quota D is $(job_state2 "$QD") after the offline release"
[ "$(out_count)" = 1 ] || fail "the printer received $(out_count) documents for quota D, expected 1"
grep -q "offline figure.*: allowed" "$K2_LOG" || fail "kcpsd did not say the offline figure allowed it"
KEY_D=$(jq -r 'select(.add != null and .add.pages == 1) | .add.key' "$OUTBOX" | tail -n1)
[ -n "$KEY_D" ] || fail "no usage record of quota D in the outbox: $(cat "$OUTBOX")"
key_lines() { grep -c -F "\"$KEY_D\"" "$OUTBOX"; }
wait_for 60 "a failed post of quota D" grep -q "usage record $KEY_D: cannot post it now" "$K2_LOG" ||
  fail "kcpsd did not try (and fail) to post quota D while the server was down"
[ "$(key_lines)" = 1 ] || fail "quota D's record settled while the server was down: $(cat "$OUTBOX")"
K2_PID=$(lib_pid_of kcpsd | tail -n1)
kill -KILL "$K2_PID"
wait "$K2_PID" 2>/dev/null
start_kcpsd "$KCPSD" "$K2" "$KCPS_SERVER_URL" "$SERVER_CA" "$KCPSD_IPP_PORT" "$KCPSD_PULL_PORT" \
  "$KCPSD_LOCAL_PORT" || fail "kcpsd with a server did not start again after SIGKILL"
[ "$(key_lines)" = 1 ] || fail "quota D's record is not waiting after the restart: $(cat "$OUTBOX")"
start_kcps_server "$SERVER_BIN" "$DATA" "$D/server3.log" "127.0.0.1:$SERVER_PORT" ||
  fail "kcps-server did not start again on port $SERVER_PORT"
printf '%s\n' "$ALICE_PASSWORD" | kcps2 login alice@a.test >/dev/null 2>&1 ||
  fail "kcps login alice after the restarts"
sent_d() { [ "$(key_lines)" -ge 2 ]; }
wait_for 90 "quota D's record sent" sent_d ||
  fail "quota D's record was not sent after the server came back: $(cat "$OUTBOX")"
[ "$(used_pages)" = 4 ] || fail "the server counts $(used_pages) pages for alice, expected 4"
ORG_A=$(api GET /api/v1/me/org "$ADMIN" | jq -r '.id // empty')
jobs_a() { api GET "/api/v1/orgs/$ORG_A/usage" "$ADMIN" | jq -r '.users[] | select(.email == "alice@a.test") | "\(.jobs) \(.pages)"'; }
[ "$(jobs_a)" = "2 4" ] || fail "the server's usage report has alice at '$(jobs_a)', expected '2 4' (jobs, pages)"
# Another login (a kick of the outbox) posts nothing again.
printf '%s\n' "$ALICE_PASSWORD" | kcps2 login alice@a.test >/dev/null 2>&1 || fail "kcps login alice again"
[ "$(key_lines)" = 2 ] || fail "quota D's record changed after it was sent: $(cat "$OUTBOX")"
[ "$(jobs_a)" = "2 4" ] || fail "after a second login the report has alice at '$(jobs_a)'"
[ "$(out_count)" = 1 ] || fail "quota D reached the printer $(out_count) times"

# 10e. kcpsd (with a server) killed (SIGKILL) while a release prints: the
# journal brings it back; it completes before alice logs in again (kcpsd
# keeps sessions in memory only), so its usage record waits in the outbox
# under the account the release started with, and is posted, and counted by
# the server, exactly once at her next login.
api PUT "/api/v1/users/$ALICE_ID/quota" "$ADMIN" '{"pages":100,"color_pages":null}' >/dev/null
[ "$(cat "$D/status")" = 200 ] || fail "raising alice's quota: $(cat "$D/status") $(cat "$D/answer")"
rm -f "$D/out"/*
touch "$D/ctl/block"
QE=$(spool2 "$PDF") && [ -n "$QE" ] || fail "spool (quota E)"
kcps2 release "$QE" --printer "$URI_PDF" >/dev/null || fail "release quota E"
wait_for 30 "quota E printing" sh -c "KCPS_LOCAL_PORT=$KCPSD_LOCAL_PORT \"$KCPS\" jobs --json | jq -e --arg id $QE '.[] | select(.id == \$id) | .release.state == \"printing\"'" ||
  fail "quota E never reached printing: $(kcps2 jobs --json)"
RIDE=$(kcps2 jobs --json | jq -r --arg id "$QE" '.[] | select(.id == $id) | .release.id')
K2_PID=$(lib_pid_of kcpsd | tail -n1)
kill -KILL "$K2_PID"
wait "$K2_PID" 2>/dev/null
start_kcpsd "$KCPSD" "$K2" "$KCPS_SERVER_URL" "$SERVER_CA" "$KCPSD_IPP_PORT" "$KCPSD_PULL_PORT" \
  "$KCPSD_LOCAL_PORT" || fail "kcpsd with a server did not start again after SIGKILL (quota E)"
rm -f "$D/ctl/block"
e_state() { curl -sS "http://127.0.0.1:$KCPSD_LOCAL_PORT/v1/releases/$RIDE" | jq -r '.state // empty'; }
wait_for 60 "quota E completed" sh -c "[ \"\$(curl -sS http://127.0.0.1:$KCPSD_LOCAL_PORT/v1/releases/$RIDE | jq -r .state)\" = completed ]" ||
  fail "the resumed release $RIDE is '$(e_state)', expected completed: $(cat "$K2_LOG")"
[ "$(job_state2 "$QE")" = printed ] || fail "quota E is $(job_state2 "$QE") after its resumed release"
e_lines() { grep -c -F "\"$RIDE\"" "$OUTBOX"; }
[ "$(e_lines)" = 1 ] || fail "quota E's usage record is not waiting in the outbox: $(cat "$OUTBOX")"
grep -F "\"$RIDE\"" "$OUTBOX" | jq -e '.add.user == "alice@a.test" and .add.pages == 1' >/dev/null ||
  fail "quota E's usage record is not alice's 1 page: $(grep -F "\"$RIDE\"" "$OUTBOX")"
printf '%s\n' "$ALICE_PASSWORD" | kcps2 login alice@a.test >/dev/null 2>&1 || fail "kcps login alice (quota E)"
sent_e() { [ "$(e_lines)" -ge 2 ]; }
wait_for 90 "quota E's record sent" sent_e || fail "quota E's record was not sent after the login: $(cat "$OUTBOX")"
[ "$(used_pages)" = 5 ] || fail "the server counts $(used_pages) pages for alice after quota E, expected 5"
[ "$(jobs_a)" = "3 5" ] || fail "the server's usage report has alice at '$(jobs_a)' after quota E, expected '3 5'"
[ "$(out_count)" = 1 ] || fail "quota E reached the printer $(out_count) times"
IPP_PORT=$IPP_PORT_1

echo "PASS: direct printing (PDF with copies and duplex, duplex refused, PWG, URF, IPPS pin/changed/forget, busy, unreachable, aborted, killed; kcpsd killed mid-release: resumed to completed once, to aborted, found by Get-Jobs, not found; stopped by SIGTERM: resumed at the next start; quota: within, usage posted once across a server restart, over quota refused, offline refused by the signed statement; server unreachable before and during a release: printed once, posted once after a kcpsd kill and the server's return; a release resumed after a kcpsd kill counted once at the next login)"
