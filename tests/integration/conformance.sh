#!/bin/bash
# IPP conformance of the virtual printer: CUPS's ipptool runs ipp-1.1.test,
# ipp-2.0.test and ipp-everywhere.test against kcps-ipp-serve alone (a free
# port, a private spool), with the sample documents the files name made
# beside them (Debian ships none; NOTES.md).
# Usage: conformance.sh BUILD_DIR [SOURCE_DIR]. Exit 0 pass, 1 fail, 77 skip.
#
# Why the .test files are "flattened": ipptool 2.4 runs an INCLUDEd file
# with counters of its own and drops its result (an included failure is
# neither counted nor seen in the exit code), and prints the Summary line
# only when the top file itself holds more than one test. ipp-2.0.test is
# `INCLUDE "ipp-1.1.test"` plus one test, so run as shipped it never prints
# a Summary and would hide every IPP/1.1 failure. Each INCLUDE line is
# therefore replaced by the text of the file it names (what INCLUDE means),
# so every test is counted and the Summary line is printed.
set -u

BUILD=${1:?usage: conformance.sh BUILD_DIR [SOURCE_DIR]}
SERVE="$BUILD/ipp/kcps-ipp-serve"
TESTS=/usr/share/cups/ipptool
PDF=/usr/share/cups/data/default-testpage.pdf
. "$(dirname "$0")/lib.sh"

for tool in ipptool gs; do
  command -v "$tool" >/dev/null 2>&1 ||
    { echo "FAIL: $tool not installed (make test installs it)"; exit 1; }
done
for f in ipp-1.1.test ipp-2.0.test ipp-everywhere.test; do
  [ -r "$TESTS/$f" ] || { echo "FAIL: no $TESTS/$f (package cups-ipp-utils)"; exit 1; }
done
[ -x "$SERVE" ] || { echo "SKIP: $SERVE not built"; exit 77; }
[ -r "$PDF" ] || { echo "FAIL: no $PDF (package cups)"; exit 1; }

D=$(mktemp -d /tmp/kcps-conformance.XXXXXX) || exit 1
chmod 0700 "$D"
cleanup() {
  # KEEP_OUT=DIR keeps ipptool's output for a look after the run.
  [ -n "${KEEP_OUT:-}" ] && cp "$D"/*.out "$KEEP_OUT"/ 2>/dev/null
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

# ---- 1. the test files, flattened (see above) ---------------------------
W="$D/tests"
mkdir -m 0700 "$W"
cp "$TESTS"/*.test "$W/"
# flatten FILE: prints FILE with each `INCLUDE "name"` replaced by name's text, recursively.
flatten() {
  local line inc
  while IFS= read -r line || [ -n "$line" ]; do
    if [[ $line =~ ^INCLUDE[[:space:]]+\"([^\"]+)\"[[:space:]]*$ ]]; then
      inc="${BASH_REMATCH[1]}"
      [ -r "$W/$inc" ] || { echo "flatten: $inc not found" >&2; return 1; }
      flatten "$W/$inc" || return 1
    else
      printf '%s\n' "$line"
    fi
  done <"$1"
}
for f in ipp-1.1 ipp-2.0 ipp-everywhere; do
  flatten "$W/$f.test" >"$W/$f-flat.test" || fail "cannot flatten $f.test"
done
grep -q '^INCLUDE' "$W"/*-flat.test && fail "an INCLUDE is left in a flattened file"

# ---- 2. the printer alone, on a free port, with a private spool ---------
mkdir -m 0700 "$D/spool"
lib_start kcps-ipp-serve "$D/serve.log" "$SERVE" --spool "$D/spool" --port 0
line=$(wait_for_line 30 "$D/serve.log" '^port [0-9]+$' "$LIB_PID") ||
  fail "kcps-ipp-serve did not start"
PORT=${line#port }
URI="ipp://127.0.0.1:$PORT/ipp/print"
wait_for 20 "the printer at $URI" ipp_printer_ready "$URI" || fail "printer not answering"

# ---- 3. sample documents -------------------------------------------------
# PDF, PostScript and JPEG as NOTES.md says. PWG raster: ipptool wants every
# FILE it parses to be readable, also in tests it will skip. The raster tests
# run only at the resolutions the printer lists in
# pwg-raster-document-resolution-supported: those samples are made for real
# with Ghostscript; the others (tests skipped) are empty files.
cd "$W" || fail "no $W"
GS="gs -q -dBATCH -dNOPAUSE -dSAFER"
$GS -sDEVICE=pdfwrite -sPAPERSIZE=a4 -dFIXEDMEDIA -dPDFFitPage -sOutputFile=document-a4.pdf "$PDF" &&
  $GS -sDEVICE=pdfwrite -sPAPERSIZE=letter -dFIXEDMEDIA -dPDFFitPage -sOutputFile=document-letter.pdf "$PDF" &&
  $GS -sDEVICE=ps2write -sPAPERSIZE=a4 -dFIXEDMEDIA -dPDFFitPage -sOutputFile=document-a4.ps "$PDF" &&
  $GS -sDEVICE=ps2write -sPAPERSIZE=letter -dFIXEDMEDIA -dPDFFitPage -sOutputFile=document-letter.ps "$PDF" &&
  $GS -sDEVICE=jpeg -r72 -dFirstPage=1 -dLastPage=1 -sOutputFile=color.jpg "$PDF" &&
  $GS -sDEVICE=jpeggray -r72 -dFirstPage=1 -dLastPage=1 -sOutputFile=gray.jpg "$PDF" ||
  fail "gs could not make the sample documents"

ipptool -tv "$URI" get-printer-attributes.test >"$D/attrs.out" 2>&1 ||
  { cat "$D/attrs.out"; fail "Get-Printer-Attributes failed"; }
RASTER_RES=" $(sed -n 's/.*pwg-raster-document-resolution-supported ([^)]*) = //p' "$D/attrs.out" |
  tr ',' ' ' | sed 's/dpi//g') "
echo "raster samples made for: ${RASTER_RES// /dpi }"

# raster_sample PATH: makes pwg-raster-samples-RES/TYPE/DOC-TYPE-RES.pwg from the test page.
raster_sample() {
  local path=$1 res type doc space bits size
  res=${path#pwg-raster-samples-}
  res=${res%%dpi/*}
  type=${path#*dpi/}
  type=${type%%/*}
  doc=${path##*/}
  doc=${doc%-"$type"-"$res"dpi.pwg}
  mkdir -p "$(dirname "$path")"
  case " $RASTER_RES " in
    *" $res "*) ;;
    *) : >"$path"; return 0 ;; # resolution not offered: the test is skipped
  esac
  case $type in
    black-1) space=3 bits=1 ;;
    sgray-8) space=18 bits=8 ;;
    srgb-8) space=19 bits=8 ;;
    srgb-16) space=19 bits=16 ;;
    cmyk-8) space=6 bits=8 ;;
    *) echo "unknown raster type $type" >&2; return 1 ;;
  esac
  case $doc in
    *-4x6) size="-dDEVICEWIDTHPOINTS=288 -dDEVICEHEIGHTPOINTS=432" ;;
    *-a4) size="-sPAPERSIZE=a4" ;;
    *-letter) size="-sPAPERSIZE=letter" ;;
    *) echo "unknown raster document $doc" >&2; return 1 ;;
  esac
  # shellcheck disable=SC2086 # $GS and $size are lists of options
  $GS -sDEVICE=pwgraster -dcupsColorSpace=$space -dcupsBitsPerColor=$bits -r"$res" $size \
    -dFIXEDMEDIA -dPDFFitPage -dFirstPage=1 -dLastPage=1 -sOutputFile="$path" "$PDF"
}
export -f raster_sample
export GS PDF RASTER_RES
grep -ho 'pwg-raster-samples-[0-9]*dpi/[^ ]*\.pwg' ipp-everywhere.test | sort -u >"$D/raster.list"
xargs -P 4 -I{} bash -c 'raster_sample "$1"' _ {} <"$D/raster.list" >"$D/gs.log" 2>&1 ||
  { tail -n 20 "$D/gs.log"; fail "gs could not make the PWG raster samples"; }

# ---- 4. the suites ---------------------------------------------------------
# run_suite NAME VERSION: runs NAME-flat.test with ipptool -tI (every test,
# also after a failure); output in $D/NAME.out.
run_suite() {
  local name=$1 version=$2
  timeout 600 ipptool -tI -T 30 -V "$version" -f document-a4.pdf "$URI" "$name-flat.test" \
    >"$D/$name.out" 2>&1
  echo "$name: $(grep -m1 '^Summary: ' "$D/$name.out" || echo 'no Summary line')"
}

# suite_fail NAME MESSAGE: shows the ipptool output and fails.
suite_fail() {
  echo "----- ipptool output for $1 -----"
  cat "$D/$1.out"
  fail "$1: $2"
}

# failed_count NAME: the "failed" figure of NAME's Summary line (empty if none).
failed_count() {
  sed -n 's/^Summary: [0-9]* tests, [0-9]* passed, \([0-9]*\) failed, [0-9]* skipped$/\1/p' \
    "$D/$1.out" | head -n1
}

# Each suite: the Summary line, 0 failed, at least one test passed, no
# [FAIL] line. ipp-everywhere.test prints every raster sample at the
# resolutions and types the printer lists (converted to PDF by convert/).
for suite in ipp-1.1:1.1 ipp-2.0:2.0 ipp-everywhere:2.0; do
  name=${suite%%:*}
  run_suite "$name" "${suite#*:}"
  grep -q '^Summary: ' "$D/$name.out" || suite_fail "$name" "no Summary line (ipptool stopped early)"
  grep -Eq '^Summary: [0-9]+ tests, [1-9][0-9]* passed, 0 failed, ' "$D/$name.out" ||
    suite_fail "$name" "not 0 failed"
  [ "$(failed_count "$name")" = 0 ] || suite_fail "$name" "not 0 failed"
  grep -q '\[FAIL\]' "$D/$name.out" && suite_fail "$name" "a test failed"
done

# The raster prints really ran (not skipped for a missing sample or an
# unadvertised resolution): at least one per advertised resolution passed.
for res in $RASTER_RES; do
  grep -Eq "^    Print .* @ ${res}dpi, .*\[PASS\]$" "$D/ipp-everywhere.out" ||
    suite_fail ipp-everywhere "no raster document printed at ${res}dpi"
done
# Create-Job and Send-Document ran (ipp-1.1.test skips them unless offered).
grep -Eq '^    RFC 8011 section 4.3.1: Send-Document Operation +\[PASS\]$' "$D/ipp-1.1.out" ||
  suite_fail ipp-1.1 "Send-Document was not tested"

lib_stop_all
echo "PASS: ipp-1.1.test, ipp-2.0.test and ipp-everywhere.test: 0 failed"
exit 0
