#!/usr/bin/env bash
# tests/e2e/audit/audit_e2e.sh - the audit trail end to end (docs/audit.md).
#
# Runs the ims1 fixture of tests/e2e/ims (one imscloud, every role, seeded
# users) in its own state directory, then:
#   1. alice registers (Digest MD5): authenticate success + registration create
#   2. dave answers with a wrong password (401, 401, 401, 403): authenticate failures
#   3. imscloudctl impu bar sip:alice@ims.test: an RTR through the admin socket
#   4. imscloudctl keys rotate: keys.reload on the server; later lines use k1
#   5. bob registers (AKA) under the new key
#   6. the server stops; `imscloudctl audit verify` passes and lists k0,k1
#   7. copies with one line edited, one deleted, two swapped, the last one
#      cut short: verify exits 1 and names the line each time;
#   8. the trail's last line cut short (a crash mid-write) and imscloud
#      started again: it records a chain-restart event and verify passes.
# Environment (CMake): IMS_BIN IMS_CTL IMS_SEED IMS_E2E_TOOLS IMS_E2E_STATE.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IMS_SH=$HERE/../ims/ims_e2e.sh
STATE=${IMS_E2E_STATE:?}
export IMS_E2E_STATE=$STATE
# its own copy of ims1 runs beside the real one: its own block of ports
export IMS_E2E_PORT_BLOCK=7
FIXDIR=$STATE/ims1
W=$STATE/audit
CTL=${IMS_CTL:?}
MULT=${IMS_TEST_TIMEOUT_MULTIPLIER:-1}

say() { printf 'e2e-audit: %s\n' "$*"; }
die() {
    printf 'e2e-audit: FAIL: %s\n' "$*" >&2
    exit 1
}

cleanup_fixture() { "$IMS_SH" cleanup ims1 >"$W/cleanup.log" 2>&1; }
mkdir -p "$W"
rm -f "$W"/*
rc=0
"$IMS_SH" setup ims1 || rc=$?
[ $rc = 77 ] && exit 77
if [ $rc != 0 ]; then
    cleanup_fixture || true
    die "the ims1 fixture did not start"
fi
trap 'cleanup_fixture || true' EXIT
# shellcheck disable=SC1091
. "$FIXDIR/env"
CONF=$TMP/ims.conf
TRAIL=$TMP/hss/audit.jsonl

"$IMS_SH" test register_md5 ims1 || die "alice did not register"
"$IMS_SH" test wrong_password ims1 || die "dave's wrong password was not refused"
"$CTL" -c "$CONF" impu bar sip:alice@ims.test >"$W/bar.out" 2>&1 ||
    die "impu bar failed: $(cat "$W/bar.out")"
grep -q 'RTR' "$W/bar.out" || die "no RTR was sent: $(cat "$W/bar.out")"
"$CTL" -c "$CONF" keys rotate >"$W/rotate.out" 2>&1 || die "keys rotate: $(cat "$W/rotate.out")"
"$IMS_SH" test register_aka ims1 || die "bob did not register after the rotation"

# stop the server (SIGTERM) but keep its state directory for the checks
pid=$(cat "$FIXDIR/ims.pid")
kill -TERM "$pid"
deadline=$(($(date +%s) + 20 * MULT))
until [ -e "$FIXDIR/ims.rc" ]; do
    [ "$(date +%s)" -lt $deadline ] || die "imscloud did not stop"
    sleep 0.1
done
[ -s "$TRAIL" ] || die "no audit trail at $TRAIL"
cp "$TRAIL" "$W/audit.jsonl"

# the events: one line each, keys sorted (so these substrings are stable)
want() { # WHAT PATTERN...: every pattern on one line
    local what=$1
    shift
    local l
    l=$(cat "$TRAIL")
    for p in "$@"; do l=$(printf '%s\n' "$l" | grep -F -- "$p" || true); done
    [ -n "$l" ] || die "no $what event in the trail ($TRAIL): wanted $*"
    say "found: $what"
}
want "authentication success" '"action":"authenticate"' '"outcome":"success"' '"id":"alice@ims.test"' '"address":"127.0.0.1"'
want "authentication failure" '"action":"authenticate"' '"outcome":"failure"' '"id":"dave@ims.test"' '"reasonCode":"401"'
want "registration" '"action":"create"' '"typeURI":"data/ims/registration"' '"id":"sip:alice@ims.test"'
want "admin RTR" '"action":"delete"' '"typeURI":"service/ims/admin"' '"id":"sip:alice@ims.test"' '"outcome":"success"'
want "key rotation" '"typeURI":"data/security/keys"' '"id":"k1"' '"outcome":"success"'
want "an event under the new key" '"key_id":"k1"' '"id":"bob@ims.test"'

out=$("$CTL" -c "$CONF" audit verify 2>&1) || die "audit verify failed on the real trail: $out"
say "verify: $out"
case $out in *"chain intact, keys k0,k1"*) ;; *) die "unexpected summary: $out" ;; esac
"$CTL" -c "$CONF" audit tail -n 2 >"$W/tail.out" || die "audit tail failed"
[ "$(wc -l <"$W/tail.out")" = 2 ] || die "audit tail -n 2 printed $(wc -l <"$W/tail.out") lines"

n=$(wc -l <"$TRAIL")
[ "$n" -ge 6 ] || die "only $n lines in the trail"
# dave's first failure: a line in the middle
k=$(grep -n -F '"outcome":"failure"' "$TRAIL" | head -1 | cut -d: -f1)
[ "$k" -gt 1 ] && [ "$k" -lt "$n" ] || die "dave's failure is on line $k of $n"

tampered() { # NAME WANT_LINE WANT_WHY: verify the copy $W/NAME.jsonl
    local name=$1 line=$2 why=$3 out rc=0
    out=$("$CTL" -c "$CONF" audit verify "$W/$name.jsonl" 2>&1) || rc=$?
    [ $rc = 1 ] || die "$name: audit verify exited $rc, want 1: $out"
    case $out in *"line $line: $why"*) ;; *) die "$name: want 'line $line: $why', got: $out" ;; esac
    say "$name: $out"
}
sed "${k}s/\"outcome\":\"failure\"/\"outcome\":\"success\"/" "$TRAIL" >"$W/edited.jsonl"
tampered edited "$k" "hmac mismatch (edited)"
sed "${k}d" "$TRAIL" >"$W/deleted.jsonl"
tampered deleted "$k" "previous-hash mismatch"
awk -v k="$k" 'NR == k { held = $0; next } { print } NR == k + 1 { print held }' "$TRAIL" >"$W/swapped.jsonl"
tampered swapped "$k" "previous-hash mismatch"
size=$(stat -c %s "$TRAIL")
head -c $((size - 25)) "$TRAIL" >"$W/truncated.jsonl"
tampered truncated "$n" "not JSON (truncated"

# a crash mid-write: cut the trail's last line and start imscloud again on
# the same state; it ends the cut line and writes a chain-restart event
truncate -s $((size - 25)) "$TRAIL"
export LSAN_OPTIONS="suppressions=$HERE/../hss/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
"$IMS_BIN" -c "$CONF" </dev/null >"$W/restart.log" 2>&1 &
rpid=$!
deadline=$(($(date +%s) + 20 * MULT))
until grep -q 'mod=audit event=opened' "$W/restart.log"; do
    kill -0 $rpid 2>/dev/null || die "imscloud did not restart: $(tail -5 "$W/restart.log")"
    [ "$(date +%s)" -lt $deadline ] || die "imscloud did not open its audit trail again"
    sleep 0.1
done
kill -TERM $rpid
rrc=0
wait $rpid || rrc=$?
[ $rrc = 0 ] || die "the restarted imscloud exited $rrc: $(tail -5 "$W/restart.log")"
! grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$W/restart.log" ||
    die "sanitizer report in $W/restart.log"
grep -q 'event=truncated_line' "$W/restart.log" || die "the cut line was not reported"
grep -F '"reasonCode":"chain-restart"' "$TRAIL" | grep -qF "\"truncated_line\":$n" ||
    die "no chain-restart event naming line $n"
out=$("$CTL" -c "$CONF" audit verify 2>&1) || die "audit verify after the restart: $out"
case $out in *"cut by a crash"*) ;; *) die "the restart is not in the summary: $out" ;; esac
say "after a crash mid-write: $(printf '%s' "$out" | head -2 | tr '\n' ' ')"

trap - EXIT
cleanup_fixture || die "the fixture did not stop cleanly: $(cat "$W/cleanup.log")"
say "passed"
