#!/bin/sh
# Soak test: every fault of tests/it/faults.rs at once (garbage, slowloris,
# clients that never read, resets, churn, a stdin feed full of junk) against
# one server for SECONDS (default 300), then the same checks as the short
# tests: still up, the well-behaved client never waited long, threads, file
# descriptors and memory back to their baseline.
#
#   scripts/soak.sh [SECONDS]
set -eu
secs="${1:-300}"
case "$secs" in
'' | *[!0-9]*)
    echo "usage: $0 [SECONDS]" >&2
    exit 2
    ;;
esac
cd "$(dirname "$0")/.."
echo "soak: $secs s, $(date -u '+%Y-%m-%d %H:%M UTC'), $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
TICKSTREAM_SOAK_SECS="$secs" exec cargo test --release --test it -- \
    --ignored --exact faults::soak --nocapture
