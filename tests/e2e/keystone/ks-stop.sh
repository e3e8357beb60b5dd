#!/usr/bin/env bash
# ks-stop.sh STATE_DIR - stops the Keystone ks-start.sh started (SIGCONT first,
# in case a test left it stopped), waits for uwsgi to exit and removes its
# directory.  Exit 0 when nothing is left running.
set -u
state=${1:?usage: ks-stop.sh STATE_DIR}
[ -f "$state/ks.dir" ] || exit 0
dir=$(cat "$state/ks.dir")
rc=0
if [ -s "$dir/uwsgi.pid" ]; then
    pid=$(cat "$dir/uwsgi.pid")
    # uwsgi runs in its own session (setsid): its group id is the master pid.
    kill -CONT -- "-$pid" 2>/dev/null
    if kill -TERM "$pid" 2>/dev/null; then
        for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "ks-stop: uwsgi $pid alive after 15 s, SIGKILL" >&2
            kill -KILL -- "-$pid" 2>/dev/null
            rc=1
        fi
    fi
fi
case "$dir" in
/tmp/ims-ks-*) [ "${KS_KEEP_DIR:-0}" = 1 ] || rm -rf "$dir" ;;
esac
rm -f "$state/ks.dir" "$state/keystone.env"
exit $rc
