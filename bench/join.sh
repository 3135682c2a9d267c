#!/usr/bin/env bash
# bench/join.sh — a cluster join of a large tree (issue 16).
#
# bench/joinbench writes BENCH_JOIN_ENTRIES users into a base member's store, starts
# it and an empty appliance (the built bin/postern, on 127.0.3.1 and 127.0.3.2, with
# bin/postern ntpd), and times `postern cluster join` (the copy and the first
# replication sessions both ways); it reports the joiner's peak resident memory
# (VmHWM), and apart its peak anonymous and file-backed (store pages mapped in) RSS.
# Targets: <= 120 s and <= 400 MB for 1,000,000 entries. Every process started is
# stopped on exit.
#
# Knobs (environment): BENCH_JOIN_ENTRIES=1000000 (0 skips the join).
# Results: printed, and bench/out/join-latest.txt.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ENTRIES=${BENCH_JOIN_ENTRIES:-1000000}
mkdir -p bench/out
if [ "$ENTRIES" = 0 ]; then
	echo "join: skipped (BENCH_JOIN_ENTRIES=0)" | tee bench/out/join-latest.txt
	exit 0
fi
[ -x bin/postern ] || make build
TMP=$(mktemp -d /tmp/postern-joinbench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
go build -o "$TMP/joinbench" ./bench/joinbench
"$TMP/joinbench" -postern bin/postern -dir "$TMP/work" -entries "$ENTRIES" >"$TMP/raw"
{
	echo "Cluster join of $ENTRIES users ($(date -u +%FT%TZ), $(nproc) CPUs)"
	awk '
	function field(k,   i, kv) { for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] } return "" }
	{ m = field("measure")
	  if (m == "populate") printf "base populated in %s s (not timed below)\n", field("seconds")
	  else if (m == "join") {
	    printf "join: %s s (copy %s s, %s entries copied, %s on the joiner after it)\n", field("seconds"), field("copy_seconds"), field("copied"), field("joiner_entries")
	    printf "joiner peak RSS (VmHWM) %s MB: anonymous %s MB, file-backed %s MB (peaks sampled apart); serving member %s MB (during the join: anonymous %s MB, file-backed %s MB)\n", field("joiner_peak_rss_mb"), field("joiner_peak_anon_mb"), field("joiner_peak_file_mb"), field("base_peak_rss_mb"), field("base_peak_anon_mb"), field("base_peak_file_mb")
	    big = field("entries") >= 1000000
	    s = field("seconds") + 0; r = field("joiner_peak_rss_mb") + 0
	    printf "target: join of %s entries, time: %s s (target <= 120 s at 1,000,000): %s\n", field("entries"), field("seconds"), (big && s <= 120) ? "met" : (big ? "NOT met" : "not measured at 1,000,000")
	    printf "target: join of %s entries, joiner peak RSS: %s MB (target <= 400 MB at 1,000,000): %s\n", field("entries"), field("joiner_peak_rss_mb"), (big && r <= 400) ? "met" : (big ? "NOT met" : "not measured at 1,000,000")
	  } }' "$TMP/raw"
} | tee bench/out/join-latest.txt
