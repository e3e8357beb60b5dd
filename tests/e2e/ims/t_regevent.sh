# shellcheck shell=bash
# tests/e2e/ims/t_regevent.sh: the reg-event package at the S-CSCF (RFC 3680,
# TS 24.229 §5.4.2) and the HSS-initiated RTR/PPR it reports (TS 29.228
# §6.1.3, §6.1.4).  Sourced by ims_e2e.sh (its helpers: ue, peer, scaled...).
#   regevent_subscribe  a UE registers, SUBSCRIBEs to its own reg event along
#                       its Service-Route: 200 and a full-state NOTIFY (its IMPU
#                       active with its contact); Expires: 0 -> NOTIFY terminated
#   regevent_forbidden  a SUBSCRIBE from another network (through the I-CSCF) to
#                       a registered user's reg event: 403
#   regevent_rtr        registered and subscribed; `imscloudctl impu bar` (RTR,
#                       RTA 2001): NOTIFY terminated, contact event="rejected";
#                       then a MESSAGE to the user through the I-CSCF gets 480
#   regevent_expiry     registered for 2 s and subscribed, no refresh: after the
#                       sweep a NOTIFY terminated, contact event="expired"
#   regevent_ppr        a barred tel: URI in the set; `imscloudctl impu unbar`
#                       (PPR, PPA 2001): a NOTIFY that shows it; then
#                       `imscloudctl profile ifc-add` on the user's profile (PPR,
#                       PPA 2001)
# Each test provisions its own user (regevN@ims.test, profile re-regevN) so the
# seeded users of the other tests keep their state.

# imscloudctl against the HSS process's configuration.
re_ctl() {
    "$(dirname "$IMS_BIN")/imscloudctl" -c "$(hss_conf)" "$@"
}

# re_user NAME: NAME@ims.test with password NAME-secret and its own profile
# re-NAME (created once per fixture; a second run finds them).
re_user() {
    local u=$1
    re_ctl impu show "sip:$u@$REALM" >/dev/null 2>&1 && return 0
    # a profile needs content: one iFC for a method nobody sends here
    re_ctl profile show "re-$u" >/dev/null 2>&1 ||
        re_ctl profile ifc-add "re-$u" --priority 100 --as "sip:as.$REALM" --method PUBLISH \
            >"$OUT/ctl-profile-$u.out" 2>&1 || {
        cat "$OUT/ctl-profile-$u.out" >&2
        return 1
    }
    re_ctl user add "$u@$REALM" --password "$u-secret" --impu "sip:$u@$REALM" \
        --profile "re-$u" >"$OUT/ctl-add-$u.out" 2>&1 || {
        cat "$OUT/ctl-add-$u.out" >&2
        return 1
    }
}

# re_wait_notify FILE PATTERN: until sipp's message trace shows PATTERN
# (a NOTIFY's header), at most 10 s (scaled).
re_wait_notify() {
    local f=$1 pat=$2 deadline=$(($(date +%s) + $(scaled 10)))
    until grep -q "$pat" "$f" 2>/dev/null; do
        [ "$(date +%s)" -lt $deadline ] || return 1
        sleep 0.2
    done
}

# re_ctl_expect NAME WHAT ARGS...: runs imscloudctl ARGS; its output must say
# the S-CSCF answered WHAT (an RTA/PPA Result-Code).
re_ctl_expect() {
    local name=$1 want=$2
    shift 2
    re_ctl "$@" >"$OUT/$name.out" 2>&1 || true
    say "$name: $(tr '\n' ' ' <"$OUT/$name.out")"
    grep -q "the S-CSCF answered $want" "$OUT/$name.out"
}

t_regevent_subscribe() {
    re_user regev1 || return 1
    register sub re_subscribe.xml regev1 regev1-secret 600 -key alg MD5
}

t_regevent_forbidden() {
    re_user regev4 || return 1
    register reg register.xml regev4 regev4-secret 600 -key alg MD5 || return 1
    peer stranger re_403.xml -s regev4
}

t_regevent_rtr() {
    local u=regev2 rc=0 pid
    re_user $u || return 1
    re_ctl impu unbar "sip:$u@$REALM" >/dev/null 2>&1 || true # a rerun
    register dereg re_dereg.xml $u $u-secret 600 -key alg MD5 &
    pid=$!
    re_wait_notify "$OUT/dereg.msg" "Subscription-State: active" || {
        say "no NOTIFY (active) within $(scaled 10) s"
        rc=1
    }
    # TS 29.228 §6.1.3: the HSS sends RTR, the S-CSCF answers 2001
    [ $rc != 0 ] || re_ctl_expect bar 2001 impu bar "sip:$u@$REALM" || rc=1
    wait $pid || rc=1
    # the registration is gone: LIR says not registered, the I-CSCF 480
    peer gone message_480.xml -s $u || rc=1
    re_ctl impu unbar "sip:$u@$REALM" >/dev/null 2>&1 || true
    return $rc
}

t_regevent_expiry() {
    re_user regev5 || return 1
    register exp re_expiry.xml regev5 regev5-secret 2 -key alg MD5
}

t_regevent_ppr() {
    local u=regev3 tel=tel:+15559003 rc=0 pid
    re_user $u || return 1
    re_ctl impu show "$tel" >/dev/null 2>&1 ||
        re_ctl impu add "$tel" --sub "$u@$REALM" --impi "$u@$REALM" --irs 1 --profile "re-$u" \
            --barred >"$OUT/ctl-tel.out" 2>&1 || {
        cat "$OUT/ctl-tel.out" >&2
        return 1
    }
    re_ctl impu bar "$tel" >/dev/null 2>&1 || true # a rerun
    register ppr re_ppr.xml $u $u-secret 600 -key alg MD5 &
    pid=$!
    re_wait_notify "$OUT/ppr.msg" "Subscription-State: active" || {
        say "no NOTIFY (active) within $(scaled 10) s"
        rc=1
    }
    # TS 29.228 §6.1.4: the HSS pushes the profile (PPR), the S-CSCF answers
    # 2001 and reports the identity now usable
    [ $rc != 0 ] || re_ctl_expect unbar 2001 impu unbar "$tel" || rc=1
    wait $pid || rc=1
    # a new iFC in the user's profile: PPR again, 2001
    re_ctl_expect ifc 2001 profile ifc-add "re-$u" --priority 10 --as "sip:as.$REALM" \
        --method PUBLISH || rc=1
    return $rc
}
