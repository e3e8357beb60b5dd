#!/bin/bash
# os-stop.sh STATE_DIR - stops what os-start.sh STATE_DIR started: every service
# (each in its own session: its pid is its process group), SIGCONT first in case a
# test left one stopped, TERM all at once (each needs 2-3 s), KILL what is left after
# 10 s; then Keystone (ks-stop.sh) and the stack dir (OS_KEEP_DIR=1 keeps it).
# Exit 0 when nothing is left running.
set -u
here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
state=${1:?usage: os-stop.sh STATE_DIR}
rc=0
if [ -f "$state/os.dir" ]; then
    dir=$(cat "$state/os.dir")
    if [ -f "$dir/pids" ]; then
        pids=$(awk '{print $2}' "$dir/pids")
        for pid in $pids; do kill -CONT -- "-$pid" 2>/dev/null; kill -TERM "$pid" 2>/dev/null; done
        for _ in $(seq 1 100); do
            alive=
            for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive="$alive $pid"; done
            [ -z "$alive" ] && break
            sleep 0.1
        done
        while read -r name pid; do
            if kill -0 "$pid" 2>/dev/null; then
                echo "os-stop: $name ($pid) still alive after 10 s, SIGKILL" >&2
                kill -KILL "$pid" 2>/dev/null
                rc=1
            fi
            kill -KILL -- "-$pid" 2>/dev/null # leftovers in that process group only
        done < "$dir/pids"
    fi
    case "$dir" in
    /tmp/ims-os-*) [ "${OS_KEEP_DIR:-0}" = 1 ] || rm -rf "$dir" ;;
    esac
fi
"$here/../keystone/ks-stop.sh" "$state/keystone" || rc=1
rm -f "$state/os.dir" "$state/openstack.env"
exit $rc
