#!/bin/bash
# Privacy between two real OS accounts the test creates (kcpstest-a-* and
# kcpstest-b-*, removed again on every exit): A prints; B can neither see,
# cancel nor read A's job
#  - through 5570 (kcps-ipp-serve in multi-user mode, as a system service):
#    Get-Jobs, Get-Job-Attributes, Cancel-Job, Cancel-My-Jobs, also when B
#    claims A's name;
#  - through 5572 (kcpsd --user run as A): B's calls are refused;
#  - through 5571 (the same kcpsd): no document without a valid ticket;
#  - through the file system: folders 0700, files 0600, tried as B.
# Requests go out as each account (setpriv) with ipptool and curl.
# Usage: privacy.sh BUILD_DIR SOURCE_DIR. Exit 0 pass, 1 fail, 77 skip.
set -u

if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
  exit 1
fi
BUILD=$(realpath "$1")
SRC=$(realpath "$2")
. "$SRC/tests/integration/lib.sh"

if [ "$(id -u)" != 0 ]; then
  echo "privacy: SKIP: creating OS accounts needs root"
  exit 77
fi
for bin in "$BUILD/client/kcpsd" "$BUILD/ipp/kcps-ipp-serve"; do
  [ -x "$bin" ] || { echo "privacy: FAIL: $bin is not built" >&2; exit 1; }
done
for tool in useradd userdel setpriv ipptool curl jq stat sha256sum; do
  command -v "$tool" >/dev/null || { echo "privacy: FAIL: $tool is not installed" >&2; exit 1; }
done
PDF=/usr/share/cups/data/default-testpage.pdf
[ -r "$PDF" ] || { echo "privacy: FAIL: no $PDF" >&2; exit 1; }

# Traversable by the two test accounts; what is theirs inside is private.
lib_test_begin privacy 0755
SUFFIX=$(basename "$TMP" | sed 's/.*\.//' | tr 'A-Z' 'a-z')
USER_A=kcpstest-a-$SUFFIX
USER_B=kcpstest-b-$SUFFIX
CREATED_USERS=()
# The accounts' processes are all ours and stopped by now; then the accounts.
lib_test_cleanup() {
  local user
  for user in "${CREATED_USERS[@]}"; do
    userdel "$user" >/dev/null 2>&1 || echo "privacy: cannot remove account $user" >&2
  done
}

# The accounts: no home, no login shell, a group of their own.
for user in "$USER_A" "$USER_B"; do
  useradd --no-create-home --shell /usr/sbin/nologin --user-group "$user" ||
    abort "cannot create account $user"
  CREATED_USERS+=("$user")
done
UID_A=$(id -u "$USER_A")
UID_B=$(id -u "$USER_B")

# as USER CMD...: runs CMD as USER (its own uid, gid and groups only).
as() {
  local user=$1
  shift
  setpriv --reuid="$user" --regid="$user" --init-groups env HOME="$TMP" "$@"
}

# The programs and inputs in a folder every account can read (the build
# folder may sit under a private path).
mkdir -p "$TMP/bin" "$TMP/ipp"
cp "$BUILD/client/kcpsd" "$BUILD/ipp/kcps-ipp-serve" "$TMP/bin/"
cp "$PDF" "$TMP/ipp/doc.pdf"
chmod 0755 "$TMP/bin" "$TMP/ipp" "$TMP/bin/"*
as "$USER_B" test -x "$TMP/bin/kcpsd" || abort "$TMP/bin is not usable by $USER_B"

# ipptool requests: $user is the requesting-user-name, $job_id the job.
ipp_test() { # NAME OPERATION STATUS [EXTRA ATTR LINES / EXPECT LINES]
  local name=$1 op=$2 status=$3
  shift 3
  {
    echo "{"
    echo "  NAME \"$name\""
    echo "  OPERATION $op"
    echo "  GROUP operation-attributes-tag"
    echo "  ATTR charset attributes-charset utf-8"
    echo "  ATTR naturalLanguage attributes-natural-language en"
    echo "  ATTR uri printer-uri \$uri"
    echo "  ATTR name requesting-user-name \$user"
    printf '  %s\n' "$@"
    echo "  STATUS $status"
    echo "}"
  } >"$TMP/ipp/$name.test"
  chmod 0644 "$TMP/ipp/$name.test"
}
ipp_test print Print-Job successful-ok 'ATTR name job-name "private report"' \
  'ATTR mimeMediaType document-format application/pdf' 'FILE $filename' \
  'EXPECT job-id OF-TYPE integer WITH-VALUE >0' 'DISPLAY job-id'
ipp_test jobs-none Get-Jobs successful-ok 'ATTR keyword which-jobs all' 'EXPECT !job-id'
ipp_test jobs-one Get-Jobs successful-ok 'ATTR keyword which-jobs all' \
  'EXPECT job-id OF-TYPE integer WITH-VALUE $job_id COUNT 1'
ipp_test attrs-own Get-Job-Attributes successful-ok 'ATTR integer job-id $job_id' \
  'EXPECT job-id WITH-VALUE $job_id'
ipp_test attrs-other Get-Job-Attributes client-error-not-found 'ATTR integer job-id $job_id' \
  'EXPECT !job-name' 'EXPECT !job-originating-user-name'
ipp_test cancel-other Cancel-Job client-error-not-found 'ATTR integer job-id $job_id'
# Cancel-My-Jobs of an account without jobs: whatever the answer, A's job stays.
ipp_test cancel-mine Cancel-My-Jobs successful-ok 'STATUS client-error-not-found' \
  'STATUS client-error-not-possible'

# ipp AS USER TEST URI [-d name=value...]: runs one ipptool test as USER.
ipp() {
  local user=$1 test=$2 uri=$3
  shift 3
  as "$user" ipptool -t -T 20 -f "$TMP/ipp/doc.pdf" "$@" "$uri" "$TMP/ipp/$test.test"
}
# expect_ipp WHAT USER TEST URI [-d ...]: the test passes.
expect_ipp() {
  local what=$1 out
  shift
  if out=$(ipp "$@" 2>&1); then pass "$what"; else fail "$what: $(printf '%s' "$out" | tail -n 8)"; fi
}

# http_as USER CURL-ARGS...: curl as USER; sets BODY and CODE (B cannot
# write into the test folder, so the body comes back on stdout).
http_as() {
  local user=$1 out
  shift
  out=$(as "$user" curl -s --max-time 20 -w '\n%{http_code}' "$@")
  CODE=${out##*$'\n'}
  BODY=${out%$'\n'*}
}

# ---- 1. 5570 as a system service: kcps-ipp-serve, multi-user, as root ------
IPP_PORT=$(free_port) || abort "no free port"
SYS_SPOOL=$TMP/system-spool
lib_start kcps-ipp-serve "$TMP/serve.log" "$TMP/bin/kcps-ipp-serve" --spool "$SYS_SPOOL" \
  --port "$IPP_PORT"
wait_for_line 20 "$TMP/serve.log" '^port ' "$LIB_PID" >/dev/null || abort "kcps-ipp-serve did not start"
URI=ipp://127.0.0.1:$IPP_PORT/ipp/print

OUT=$(ipp "$USER_A" print "$URI" 2>&1) || abort "Print-Job as $USER_A: $OUT"
JOB_ID=$(printf '%s\n' "$OUT" | sed -n 's/.*job-id (integer) = \([0-9]*\).*/\1/p')
[ -n "$JOB_ID" ] || abort "no job-id in: $OUT"
LINE=$(wait_for_line 10 "$TMP/serve.log" '^job ' "$(lib_pid_of kcps-ipp-serve)") || abort "no job line"
set -- $LINE
SPOOL_ID=$2
[ "$6" = "$UID_A" ] && pass "5570: job $JOB_ID is $USER_A's (uid from the kernel)" ||
  fail "5570: job owner: got uid $6, expected $UID_A"
JOB_FILE=$SYS_SPOOL/$UID_A/$SPOOL_ID.pdf
SUM=$(sha256sum <"$JOB_FILE" | cut -d' ' -f1)

expect_ipp "5570: $USER_A sees its job (Get-Jobs)" "$USER_A" jobs-one "$URI" -d job_id="$JOB_ID"
expect_ipp "5570: $USER_B's Get-Jobs shows no job" "$USER_B" jobs-none "$URI"
expect_ipp "5570: $USER_B's Get-Jobs claiming to be $USER_A shows no job" "$USER_B" jobs-none \
  "$URI" -d user="$USER_A"
expect_ipp "5570: $USER_B's Get-Job-Attributes of A's job: not-found, nothing told" "$USER_B" \
  attrs-other "$URI" -d job_id="$JOB_ID"
expect_ipp "5570: $USER_B's Get-Job-Attributes claiming A's name: not-found" "$USER_B" \
  attrs-other "$URI" -d job_id="$JOB_ID" -d user="$USER_A"
expect_ipp "5570: $USER_B's Cancel-Job of A's job: not-found" "$USER_B" cancel-other "$URI" \
  -d job_id="$JOB_ID"
expect_ipp "5570: $USER_B's Cancel-My-Jobs claiming A's name is answered" "$USER_B" cancel-mine \
  "$URI" -d user="$USER_A"
expect_ipp "5570: $USER_A still sees its job afterwards" "$USER_A" attrs-own "$URI" \
  -d job_id="$JOB_ID"
[ "$(sha256sum <"$JOB_FILE" | cut -d' ' -f1)" = "$SUM" ] && pass "5570: A's document unchanged" ||
  fail "5570: A's document changed"

# The file system: the owner folder and the document are private.
check_private() { # WHAT DIR FILE
  local what=$1 dir=$2 file=$3 mode
  mode=$(stat -c %a "$dir")
  [ "$mode" = 700 ] && pass "$what: folder 0700" || fail "$what: folder $dir mode $mode, expected 700"
  mode=$(stat -c %a "$file")
  [ "$mode" = 600 ] && pass "$what: document 0600" || fail "$what: document $file mode $mode, expected 600"
  if as "$USER_B" ls "$dir" >/dev/null 2>&1; then
    fail "$what: $USER_B can list $dir"
  else
    pass "$what: $USER_B cannot list the folder"
  fi
  if as "$USER_B" cat "$file" >/dev/null 2>&1; then
    fail "$what: $USER_B can read $file"
  else
    pass "$what: $USER_B cannot read the document"
  fi
  if as "$USER_B" ls "$(dirname "$dir")/spool.db" >/dev/null 2>&1 &&
    as "$USER_B" cat "$(dirname "$dir")/spool.db" >/dev/null 2>&1; then
    fail "$what: $USER_B can read the index"
  else
    pass "$what: $USER_B cannot read the index"
  fi
}
check_private "system spool" "$SYS_SPOOL/$UID_A" "$JOB_FILE"
stop_pid "$(lib_pid_of kcps-ipp-serve)"

# ---- 2. kcpsd --user run as A: 5570, 5571, 5572 ---------------------------
mkdir -p "$TMP/a"
chown "$USER_A:$USER_A" "$TMP/a"
chmod 0700 "$TMP/a"
lib_start kcpsd "$TMP/kcpsd.log" setpriv --reuid="$USER_A" --regid="$USER_A" --init-groups \
  env HOME="$TMP/a" "$TMP/bin/kcpsd" --user --spool "$TMP/a/spool" --state "$TMP/a/state" \
  --ipp-port 0 --pull-port 0 --local-port 0 --pull-listen 127.0.0.1 --pull-host 127.0.0.1
LINE=$(wait_for_line 30 "$TMP/kcpsd.log" 'kcpsd: ready ipp=' "$LIB_PID") || abort "kcpsd as $USER_A did not start"
K_IPP=$(printf '%s\n' "$LINE" | sed -n 's/.*ipp=\([0-9]*\).*/\1/p')
K_PULL=$(printf '%s\n' "$LINE" | sed -n 's/.*pull=\([0-9]*\).*/\1/p')
K_LOCAL=$(printf '%s\n' "$LINE" | sed -n 's/.*local=\([0-9]*\).*/\1/p')
KURI=ipp://127.0.0.1:$K_IPP/ipp/print

OUT=$(ipp "$USER_A" print "$KURI" 2>&1) || abort "Print-Job as $USER_A to its kcpsd: $OUT"
KJOB_ID=$(printf '%s\n' "$OUT" | sed -n 's/.*job-id (integer) = \([0-9]*\).*/\1/p')

# 5572: A lists its job; B is refused, whatever it asks.
A_JOBS=$(as "$USER_A" curl -s --max-time 20 "http://127.0.0.1:$K_LOCAL/v1/jobs")
KSPOOL_ID=$(printf '%s' "$A_JOBS" | jq -r '.jobs[0].id // empty' 2>/dev/null)
[ -n "$KSPOOL_ID" ] && pass "5572: $USER_A lists its job" || abort "5572: $USER_A's job list: $A_JOBS"
for path in /v1/jobs /v1/status; do
  http_as "$USER_B" "http://127.0.0.1:$K_LOCAL$path"
  if [ "$CODE" = 403 ] && [[ "$BODY" == *forbidden_user* ]] && [[ "$BODY" != *"$KSPOOL_ID"* ]]; then
    pass "5572: $USER_B's GET $path refused (403 forbidden_user)"
  else
    fail "5572: $USER_B's GET $path: got $CODE $BODY, expected 403 forbidden_user"
  fi
done
http_as "$USER_B" -X POST -H 'Content-Type: application/json' -d '{}' \
  "http://127.0.0.1:$K_LOCAL/v1/logout"
[ "$CODE" = 403 ] && pass "5572: $USER_B's POST /v1/logout refused" || fail "5572: $USER_B's logout: got $CODE, expected 403"

# 5570 of A's kcpsd: B sees nothing and cancels nothing.
expect_ipp "kcpsd 5570: $USER_A sees its job" "$USER_A" jobs-one "$KURI" -d job_id="$KJOB_ID"
if ipp "$USER_B" jobs-one "$KURI" -d job_id="$KJOB_ID" >/dev/null 2>&1; then
  fail "kcpsd 5570: $USER_B's Get-Jobs shows A's job"
else
  pass "kcpsd 5570: $USER_B's Get-Jobs does not show A's job"
fi
if ipp "$USER_B" attrs-own "$KURI" -d job_id="$KJOB_ID" >/dev/null 2>&1; then
  fail "kcpsd 5570: $USER_B reads A's job attributes"
else
  pass "kcpsd 5570: $USER_B cannot read A's job attributes"
fi
ipp "$USER_B" cancel-other "$KURI" -d job_id="$KJOB_ID" >/dev/null 2>&1
expect_ipp "kcpsd 5570: A's job still there after B's Cancel-Job" "$USER_A" attrs-own "$KURI" \
  -d job_id="$KJOB_ID"

# 5571: B, holding no ticket (or a made-up one), gets no document.
for auth in "" "Authorization: KCPS-Ticket eyJhbGciOiJFZERTQSJ9.e30.AAAA"; do
  http_as "$USER_B" -k ${auth:+-H "$auth"} "https://127.0.0.1:$K_PULL/jobs/$KSPOOL_ID/document"
  if { [ "$CODE" = 401 ] || [ "$CODE" = 403 ]; } && [[ "$BODY" != *%PDF* ]] && [ -n "$BODY" ]; then
    pass "5571: $USER_B's pull ${auth:+with a forged ticket }refused ($CODE), no document"
  else
    fail "5571: $USER_B's pull ${auth:+with a forged ticket}: got $CODE, expected 401/403 without the document"
  fi
done

# The file system of A's own spool.
check_private "kcpsd spool" "$TMP/a/spool/$UID_A" "$TMP/a/spool/$UID_A/$KSPOOL_ID.pdf"
OWNER=$(stat -c %U "$TMP/a/spool/$UID_A/$KSPOOL_ID.pdf")
[ "$OWNER" = "$USER_A" ] && pass "kcpsd spool: the document belongs to $USER_A" ||
  fail "kcpsd spool: document owner $OWNER, expected $USER_A"

if [ "$FAILED" -eq 0 ]; then
  echo "privacy: PASS"
fi
