# shellcheck shell=bash
# tests/e2e/ims/t_audittrail.sh - the S-CSCF's audit trail under a burst of
# registrations (src/audit, docs/internals/audit.md).  Sourced by ims_e2e.sh.
#
#   audit_burst  sipp registers alice AT_N times at AT_RATE/s through P, I and
#                S: every registration leaves its two CADF events (authenticate
#                success, create), each line is the canonical JSON a second,
#                independent implementation (Perl's JSON::PP, sorted keys)
#                writes for it byte for byte, and `imscloudctl audit verify`
#                passes on the live trail (chain and HMACs).

AT_N=40
AT_RATE=20

# at_lines FILE: the number of lines (0 when the file does not exist yet)
at_lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }

# at_canonical FROM FILE: every line from number FROM on re-encodes to itself
# (without its hmac member); prints the count, fails on the first that does not
at_canonical() {
    perl -MJSON::PP -ne '
        BEGIN { $j = JSON::PP->new->canonical; $n = 0 }
        next if $. < '"$1"';
        chomp;
        (my $body = $_) =~ s/,"hmac":"[0-9a-f]{64}"\}$/}/ or die "line $.: no hmac\n";
        my $again = $j->encode($j->decode($body));
        $again eq $body or die "line $.: not canonical\n want $again\n got  $body\n";
        $n++;
        END { print "$n\n" }' "$2"
}

t_audit_burst() {
    need perl
    local ctl file before secs rc=0 ok fail new auth create canon out
    ctl=$(dirname "$IMS_BIN")/imscloudctl
    file=$TMP/hss/audit.jsonl # ims1: the one process's state_dir
    before=$(at_lines "$file")
    secs=$(scaled 60)
    (cd "$OUT" && timeout -k 5 "$((secs + 5))" sipp "127.0.0.1:$P_PORT" \
        -sf "$HERE/sipp/register.xml" -i 127.0.0.1 -p "$UE_PORT" -key realm "$REALM" \
        -s alice -au "alice@$REALM" -ap alice-secret -key expires 600 -key alg MD5 \
        -m "$AT_N" -r "$AT_RATE" -l "$AT_N" -nostdin -trace_stat -stf burst.stat.csv -fd 1 \
        -trace_err -error_file burst.err.log -timeout "${secs}s" -timeout_error \
        >burst.out 2>&1) || rc=$?
    ok=$(sipp_stat "$OUT/burst.stat.csv" 'SuccessfulCall(C)' 2>/dev/null || echo '?')
    fail=$(sipp_stat "$OUT/burst.stat.csv" 'FailedCall(C)' 2>/dev/null || echo '?')
    say "burst: sipp exit $rc, successful $ok, failed $fail (want 0, $AT_N, 0)"
    [ "$rc" = 0 ] && [ "$ok" = "$AT_N" ] && [ "$fail" = 0 ] || return 1
    # the writer appends within its linger (milliseconds); allow for a slow CI
    local deadline=$(($(date +%s) + $(scaled 10)))
    until [ $(($(at_lines "$file") - before)) -ge $((2 * AT_N)) ]; do
        [ "$(date +%s)" -lt $deadline ] || break
        sleep 0.1
    done
    new=$(tail -n +"$((before + 1))" "$file")
    auth=$(grep -c '"action":"authenticate".*"id":"alice@ims.test".*"outcome":"success"' \
        <<<"$new" || true)
    create=$(grep -c '"action":"create".*"id":"alice@ims.test"' <<<"$new" || true)
    say "audit events: authenticate $auth, create $create (want $AT_N each)"
    [ "$auth" = "$AT_N" ] && [ "$create" = "$AT_N" ] || rc=1
    canon=$(at_canonical "$((before + 1))" "$file") || rc=1
    say "canonical lines: $canon (want at least $((2 * AT_N)))"
    [ "${canon:-0}" -ge $((2 * AT_N)) ] || rc=1
    out=$("$ctl" -c "$TMP/ims.conf" audit verify 2>&1) || {
        say "audit verify failed: $out"
        rc=1
    }
    say "verify: $out"
    return $rc
}
