# shellcheck shell=bash
# tests/e2e/ims/t_aka.sh - AKA re-synchronisation end to end (TS 33.102
# §6.3.5, TS 33.203 §6.1.2, RFC 3310 §3.4; sourced by ims_e2e.sh).  rita
# (ims_seed.c: AKAv1-MD5, no other test uses her SQN) registers through the
# P-CSCF with a USIM (aka_usim) that has already accepted SEQs far beyond the
# HSS's:
#
#   aka_resync  1. a forged AUTS (made with another K, claiming a SEQ_MS a
#                  million steps ahead): 403, and the HSS's SEQ stays below
#                  the forged SEQ_MS (MAC-S checked before anything moves)
#               2. the USIM at the HSS's SEQ + 100000: it refuses the first
#                  challenge with AUTS, the S-CSCF's MAR carries RAND || AUTS,
#                  the HSS moves its SQN past the USIM's, and the USIM
#                  accepts the fresh challenge (SEQ > SEQ_MS): 200; the HSS
#                  then holds a SEQ beyond the USIM's old SEQ_MS
# The SEQs are read from the HSS's store with imscloudctl (impi show).

# aka_seq: the SEQ (SQN without its 5 IND bits) the HSS holds for rita
aka_seq() {
    local out sqn
    out=$("$(dirname "$IMS_BIN")/imscloudctl" -c "$(hss_conf)" impi show "rita@$REALM") ||
        die "imscloudctl impi show rita@$REALM: $out"
    sqn=$(sed -n 's/^sqn: \([0-9][0-9]*\)$/\1/p' <<<"$out")
    [ -n "$sqn" ] || die "no sqn: line in: $out"
    echo $((sqn >> 5))
}

t_aka_resync() {
    local rc=0 usim=$OUT/usim tool=${IMS_AKA_USIM:-} seq0 seq1 seq2 forged seq_ms
    [ -x "$tool" ] || die "IMS_AKA_USIM not set or not executable (the aka_usim target)"
    seq0=$(aka_seq) || return 1

    forged=$((seq0 + 1000000))
    "$tool" init "$usim" "$forged" || die "aka_usim init failed"
    ue forged "$UE_PORT" aka_auts_forged.xml -s rita -key expires 600 \
        -key helper "$tool" -key usim "$usim" || rc=1
    seq1=$(aka_seq) || return 1
    say "forged AUTS (SEQ_MS $forged): the HSS's SEQ $seq0 -> $seq1 (want < $forged)"
    [ "$seq1" -lt "$forged" ] || rc=1

    seq_ms=$((seq1 + 100000))
    "$tool" init "$usim" "$seq_ms" || die "aka_usim init failed"
    ue resync "$UE_PORT" aka_resync.xml -s rita -key expires 600 \
        -key helper "$tool" -key usim "$usim" || rc=1
    seq2=$(aka_seq) || return 1
    say "resync (SEQ_MS $seq_ms): the HSS's SEQ $seq1 -> $seq2 (want > $seq_ms)"
    [ "$seq2" -gt "$seq_ms" ] || rc=1
    # what the USIM decided, challenge by challenge
    sed 's/^/  /' "$OUT/usim.log" 2>/dev/null || true
    grep -q "not fresh (SEQ_MS $seq_ms): re-synchronisation" "$OUT/usim.log" 2>/dev/null &&
        grep -q "fresh (SEQ_MS was $seq_ms): accepted" "$OUT/usim.log" || {
        echo "aka_resync: the USIM did not refuse, then accept (usim.log above)" >&2
        rc=1
    }
    return $rc
}
