# shellcheck shell=bash
# tests/e2e/ims/t_roles.sh: per-subscription local roles kept in the HSS
# (docs/keystone.md "Roles of Digest and AKA users").  Sourced by ims_e2e.sh;
# fixtures imsk (one process with a policy, t_bearer.sh) and imsk4 (the same
# in four processes: the roles cross Cx in the SAA's User-Data); uses
# t_policy.sh's pol_keep and t_sessions.sh's sess_reg_bob, sess_bg, sess_wait.
#   roles_message  ims:message needs role caller (+ SIGHUP).  rla, whose
#                  subscription has roles member,caller (imscloudctl sub
#                  modify --roles), registers with Digest and sends a MESSAGE
#                  to bob: 200.  rlb (roles member) gets 403 with a Warning
#                  naming ims:message.  `sub show` shows the roles.

# shellcheck disable=SC2154 # fix: the fixture, set by ims_e2e.sh
rl_proc() { if [ "$fix" = imsk4 ]; then echo "$1"; else echo ims; fi; }
rl_ctl() { "$(dirname "$IMS_BIN")/imscloudctl" -c "$TMP/$(rl_proc hss).conf" "$@"; }

# rl_hup FILE: FILE becomes the policy; SIGHUP to the S-CSCF's process, and
# wait for its log to say it reloaded (t_policy.sh's pol_hup, any fixture).
rl_hup() {
    local p log before deadline
    p=$(rl_proc scscf)
    log=$FIXDIR/$p.log
    before=$(grep -c 'event=policy_reloaded' "$log" || true)
    cp "$1" "$(pol_file)"
    kill -HUP "$(cat "$FIXDIR/$p.pid")"
    deadline=$(($(date +%s) + $(scaled 10)))
    until [ "$(grep -c 'event=policy_reloaded' "$log" || true)" -gt "$before" ]; do
        [ "$(date +%s)" -lt $deadline ] || {
            say "no policy_reloaded in $log after SIGHUP"
            return 1
        }
        sleep 0.1
    done
}

# rl_user NAME ROLES: a Digest user NAME@REALM (password NAME-secret) in its
# own subscription rl-NAME, whose roles are set to ROLES.
rl_user() {
    local u=$1
    if ! rl_ctl impu show "sip:$u@$REALM" >/dev/null 2>&1; then
        rl_ctl user add "$u@$REALM" --password "$u-secret" --impu "sip:$u@$REALM" \
            --sub "rl-$u" >"$OUT/ctl-add-$u.out" 2>&1 || {
            cat "$OUT/ctl-add-$u.out" >&2
            return 1
        }
    fi
    rl_ctl sub modify "rl-$u" --roles "$2" >"$OUT/ctl-mod-$u.out" 2>&1 || {
        cat "$OUT/ctl-mod-$u.out" >&2
        return 1
    }
}

t_roles_message() {
    local rc=0
    rl_user rla member,caller || return 1
    rl_user rlb member || return 1
    rl_ctl --json sub show rl-rla >"$OUT/show-rla.json" 2>&1 || rc=1
    grep -q '"roles": *"member,caller"' "$OUT/show-rla.json" || {
        say "sub show: no roles: $(cat "$OUT/show-rla.json")"
        rc=1
    }
    pol_keep # t_policy.sh
    sed 's/^"ims:message":.*/"ims:message": "role:caller"/' "$OUT/policy.orig" >"$OUT/p2.yaml"
    rl_hup "$OUT/p2.yaml" || return 1
    # the roles come with the SAA's User-Data: register after setting them
    sess_reg_bob || rc=1
    register rega register.xml rla rla-secret 600 -key alg MD5 || rc=1
    sess_bg uas_msg "$UE2_PORT" message_uas.xml
    ue msg "$UE_PORT" sess_message_uac.xml -s bob -key caller rla || rc=1
    sess_wait uas_msg || rc=1
    register regb register.xml rlb rlb-secret 600 -key alg MD5 || rc=1
    ue deny "$UE_PORT" rl_message_403.xml -s bob -key caller rlb || rc=1
    grep -q 'event=policy_denied rule=ims:message .*user=rlb@' "$FIXDIR/$(rl_proc scscf).log" || {
        say "no policy_denied line for rlb"
        rc=1
    }
    rl_hup "$OUT/policy.orig" || rc=1
    return $rc
}
