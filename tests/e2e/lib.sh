# tests/e2e/lib.sh - helpers every e2e harness shares (sourced, not run).
# Needs MULT (IMS_TEST_TIMEOUT_MULTIPLIER) set by the harness.

# seconds * multiplier, rounded, at least 1
scaled() { awk -v s="$1" -v m="$MULT" 'BEGIN { v = s * m; if (v < 1) v = 1; printf "%d", v + 0.5 }'; }
# milliseconds * multiplier
scaled_ms() { awk -v s="$1" -v m="$MULT" 'BEGIN { v = s * m; if (v < 1) v = 1; printf "%d", v + 0.5 }'; }

pkg_of() {
    case $1 in
    sipp) echo sip-tester ;;
    ip | ss) echo iproute2 ;;
    timeout | setsid | mktemp) echo coreutils/util-linux ;;
    *) echo "$1" ;;
    esac
}

port_busy() {
    [ -n "$(ss -Hlnu "sport = :$1" 2>/dev/null)" ] || [ -n "$(ss -Hlnt "sport = :$1" 2>/dev/null)" ]
}

# sipp_stat CSV COLUMN: the column's value in the last row of a -trace_stat file.
sipp_stat() {
    awk -F';' -v col="$2" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
        NF > 1 { last = $c }
        END { if (!c) exit 1; print last + 0 }' "$1"
}

# sipp_count CSV REGEX: the last-row value of the -trace_counts column whose name
# matches REGEX (e.g. "_180_Recv$"; sipp prefixes the scenario step index).
sipp_count() {
    awk -F';' -v re="$2" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i ~ re) c = i; next }
        NF > 1 { last = $c }
        END { if (!c) exit 1; print last + 0 }' "$1"
}
