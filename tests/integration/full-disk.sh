#!/bin/bash
# A full disk under the spool: in a mount namespace of its own the test
# mounts a small tmpfs (8 MiB) over the spool folder, runs kcps-ipp-serve,
# spools a few jobs, then
#  - sends a document larger than the free space: the Print-Job fails with
#    an IPP error whose status-message says the spool's disk is full, no
#    temporary file is left, the earlier jobs are listed and intact (sha256);
#  - frees the space: the same document is then spooled;
#  - leaves room for the document but not for the index (SQLite's own
#    ENOSPC on the insert): the job fails, nothing of it is left or listed;
#    after freeing the space again a job succeeds.
# Usage: full-disk.sh BUILD_DIR SOURCE_DIR. Exit 0 pass, 1 fail, 77 skip.
set -u

if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
  exit 1
fi
BUILD=$(realpath "$1")
SRC=$(realpath "$2")
. "$SRC/tests/integration/lib.sh"

if [ "$(id -u)" != 0 ]; then
  echo "full-disk: SKIP: mounting a tmpfs needs root"
  exit 77
fi
SERVE_BIN=$BUILD/ipp/kcps-ipp-serve
[ -x "$SERVE_BIN" ] || { echo "full-disk: FAIL: $SERVE_BIN is not built" >&2; exit 1; }
for tool in unshare mount umount ipptool qpdf sha256sum stat find; do
  command -v "$tool" >/dev/null || { echo "full-disk: FAIL: $tool is not installed" >&2; exit 1; }
done
PDF=/usr/share/cups/data/default-testpage.pdf
[ -r "$PDF" ] || { echo "full-disk: FAIL: no $PDF" >&2; exit 1; }

# The rest runs in a private mount namespace: the tmpfs is seen by nobody
# else and goes away with the namespace whatever happens.
if [ -z "${KCPS_FULL_DISK_NS:-}" ]; then
  if unshare -m --propagation private true 2>/dev/null; then
    KCPS_FULL_DISK_NS=1 exec unshare -m --propagation private "$(realpath "$0")" "$BUILD" "$SRC"
    echo "full-disk: FAIL: cannot make a mount namespace" >&2
    exit 1
  fi
  # In a chroot (its / is no mount point, so unshare cannot make it
  # private) the tmpfs goes on the test's own folder in the shared
  # namespace instead; the exit trap unmounts it.
  echo "full-disk: no private mount namespace here; mounting the tmpfs on the test folder"
fi

lib_test_begin full-disk
SPOOL=$TMP/spool
mkdir -p "$SPOOL" "$TMP/docs"
MOUNTED=
lib_test_show_more() {
  echo "----- spool at the end -----"
  ls -laR "$SPOOL" 2>/dev/null
  df -k "$SPOOL" 2>/dev/null
}
lib_test_cleanup() { [ -z "$MOUNTED" ] || umount "$SPOOL"; }

mount -t tmpfs -o size=8m,mode=0700 kcps-test-full-spool "$SPOOL" || abort "cannot mount a tmpfs on $SPOOL"
MOUNTED=1

# make_pdf KIB OUT: a valid one-page PDF of about KIB KiB (random bytes
# attached, so that every document is distinct and does not compress).
make_pdf() {
  head -c "$(($1 * 1024))" /dev/urandom >"$TMP/docs/blob"
  qpdf "$PDF" --add-attachment "$TMP/docs/blob" -- "$2" || abort "qpdf could not make $2"
}
# free_bytes: what the spool's file system has left.
free_bytes() { echo $(($(stat -f -c '%a' "$SPOOL") * $(stat -f -c '%S' "$SPOOL"))); }
# fill_to BYTES: a filler file leaving about BYTES free; unfill removes it.
unfill() { rm -f "$SPOOL/filler"; }
fill_to() {
  local free
  rm -f "$SPOOL/filler"
  free=$(free_bytes)
  if [ "$free" -gt "$1" ]; then
    head -c "$((free - $1))" /dev/zero >"$SPOOL/filler" 2>/dev/null
  fi
  return 0
}

cat >"$TMP/print-ok.test" <<'EOF'
{
  NAME "Print-Job"
  OPERATION Print-Job
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR name requesting-user-name $user
  ATTR mimeMediaType document-format application/pdf
  FILE $filename
  STATUS successful-ok
  EXPECT job-id OF-TYPE integer WITH-VALUE >0
  DISPLAY job-id
}
EOF
cat >"$TMP/print-full.test" <<'EOF'
{
  NAME "Print-Job on a full disk"
  OPERATION Print-Job
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR name requesting-user-name $user
  ATTR mimeMediaType document-format application/pdf
  FILE $filename
  STATUS server-error-internal-error
  EXPECT status-message OF-TYPE text WITH-VALUE "/disk of the print spool is full/"
  EXPECT !job-id
}
EOF
cat >"$TMP/print-fails.test" <<'EOF'
{
  NAME "Print-Job without room for the index"
  OPERATION Print-Job
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR name requesting-user-name $user
  ATTR mimeMediaType document-format application/pdf
  FILE $filename
  STATUS server-error-internal-error
  EXPECT !job-id
  DISPLAY status-message
}
EOF
cat >"$TMP/get-jobs.test" <<'EOF'
{
  NAME "Get-Jobs"
  OPERATION Get-Jobs
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR name requesting-user-name $user
  ATTR keyword which-jobs all
  STATUS successful-ok
  DISPLAY job-id
}
EOF

PORT=$(free_port) || abort "no free port"
lib_start kcps-ipp-serve "$TMP/serve.log" "$SERVE_BIN" --spool "$SPOOL" --port "$PORT"
wait_for_line 20 "$TMP/serve.log" '^port ' "$LIB_PID" >/dev/null || abort "kcps-ipp-serve did not start"
URI=ipp://127.0.0.1:$PORT/ipp/print
SERVE_PID=$LIB_PID

# ipp TEST DOC: one ipptool run (as root: the job's owner is root).
ipp() { ipptool -t -T 30 -f "$2" "$URI" "$TMP/$1.test" 2>&1; }

# spooled: the spool's documents as "sha256 path" lines, sorted.
spooled() { find "$SPOOL" -name '*.pdf' -type f -exec sha256sum {} + | sort; }
# no_temp WHAT: no temporary file of a writer is left.
no_temp() {
  local left
  left=$(find "$SPOOL" -name '.tmp-*')
  [ -z "$left" ] && pass "$1: no temporary file left" || fail "$1: temporary files left: $left"
}
# jobs_listed: the job-ids Get-Jobs shows, one a line, sorted.
jobs_listed() { ipp get-jobs "$PDF" | sed -n 's/.*job-id (integer) = \([0-9]*\).*/\1/p' | sort -n; }

# 1. A few jobs while there is room.
SENT=()
for i in 1 2 3; do
  make_pdf 1024 "$TMP/docs/job$i.pdf"
  OUT=$(ipp print-ok "$TMP/docs/job$i.pdf") || abort "job $i: $OUT"
  SENT+=("$(sha256sum <"$TMP/docs/job$i.pdf" | cut -d' ' -f1)")
done
BEFORE=$(spooled)
LISTED_BEFORE=$(jobs_listed)
[ "$(printf '%s\n' "$LISTED_BEFORE" | grep -c .)" = 3 ] && pass "3 jobs spooled" ||
  abort "jobs listed: got '$LISTED_BEFORE', expected 3"
for sum in "${SENT[@]}"; do
  printf '%s\n' "$BEFORE" | grep -q "^$sum " || fail "a sent document is not in the spool as sent ($sum)"
done

# 2. A document larger than the free space.
make_pdf 3072 "$TMP/docs/big.pdf"
fill_to $((2 * 1024 * 1024))
FREE=$(free_bytes)
SIZE=$(stat -c %s "$TMP/docs/big.pdf")
[ "$SIZE" -gt "$FREE" ] || abort "test set-up: the document ($SIZE bytes) fits in $FREE bytes"
if OUT=$(ipp print-full "$TMP/docs/big.pdf"); then
  pass "a $SIZE-byte job with $FREE bytes free fails: disk of the print spool is full"
else
  fail "a job larger than the free space: $(printf '%s' "$OUT" | tail -n 12)"
fi
kill -0 "$SERVE_PID" 2>/dev/null && pass "the virtual printer is still running" || abort "kcps-ipp-serve died"
no_temp "full disk"
[ "$(spooled)" = "$BEFORE" ] && pass "earlier jobs intact (sha256), nothing added" ||
  fail "the spool changed: got $(spooled), expected $BEFORE"
[ "$(jobs_listed)" = "$LISTED_BEFORE" ] && pass "earlier jobs still listed" ||
  fail "jobs listed: got '$(jobs_listed)', expected '$LISTED_BEFORE'"

# 3. Space freed: the same document goes through.
unfill
if OUT=$(ipp print-ok "$TMP/docs/big.pdf"); then
  pass "after freeing space the large job is spooled"
  BIG_SUM=$(sha256sum <"$TMP/docs/big.pdf" | cut -d' ' -f1)
  spooled | grep -q "^$BIG_SUM " && pass "the large job is in the spool as sent" || fail "the large job's sha256 is not in the spool"
else
  fail "after freeing space: $(printf '%s' "$OUT" | tail -n 12)"
fi
LISTED_BEFORE=$(jobs_listed)
BEFORE=$(spooled)

# 4. Room for the document, none for the index: SQLite's own ENOSPC. The
# document takes whole pages; the index's write-ahead log grows by pages
# with each commit, and finds none left.
make_pdf 64 "$TMP/docs/small.pdf"
PAGE=$(stat -f -c '%S' "$SPOOL")
SMALL=$(stat -c %s "$TMP/docs/small.pdf")
fill_to $(((SMALL + PAGE - 1) / PAGE * PAGE))
if OUT=$(ipp print-fails "$TMP/docs/small.pdf") &&
  printf '%s' "$OUT" | grep -q 'disk of the print spool is full'; then
  pass "no room for the index: the job fails, saying the disk is full ($(printf '%s' "$OUT" | sed -n 's/.*status-message (textWithoutLanguage) = //p' | head -n1))"
else
  fail "no room for the index: $(printf '%s' "$OUT" | tail -n 12)"
fi
kill -0 "$SERVE_PID" 2>/dev/null || abort "kcps-ipp-serve died"
# It was the index that found no room (not the document's write).
grep -q 'spool index .*database or disk is full' "$TMP/serve.log" &&
  pass "index full: SQLite's own ENOSPC was hit" ||
  fail "index full: the log does not show the index insert failing: $(tail -n 3 "$TMP/serve.log")"
no_temp "index full"
[ "$(spooled)" = "$BEFORE" ] && pass "index full: no document of the failed job left, earlier ones intact" ||
  fail "index full: the spool changed: got $(spooled), expected $BEFORE"
[ "$(jobs_listed)" = "$LISTED_BEFORE" ] && pass "index full: the failed job is not listed" ||
  fail "index full: jobs listed: got '$(jobs_listed)', expected '$LISTED_BEFORE'"
unfill
OUT=$(ipp print-ok "$TMP/docs/small.pdf") && pass "after freeing space again a job is spooled" ||
  fail "after the index was full: $(printf '%s' "$OUT" | tail -n 12)"

if [ "$FAILED" -eq 0 ]; then
  echo "full-disk: PASS"
fi
