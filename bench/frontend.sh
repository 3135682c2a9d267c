#!/usr/bin/env bash
# bench/frontend.sh — a cluster frontend against its backend (issue 13's benchmark).
#
# bench/frontbench starts the built bin/postern as a backend and a frontend (processes,
# on 127.0.1.1 and 127.0.1.2, with bin/postern ntpd) and measures:
#   visibility   a domain added over LDAP on the backend, until the frontend's SMTP
#                gateway accepts a recipient of it: p50 and p99 over CHANGES changes
#                (target p99 <= 2 s; aim <= 100 ms)
#   throughput   smtp-source into the backend, then into the frontend, each delivering
#                to smtp-sink (the SMTP bench's load), timed until the sink counted every
#                message; the ratio frontend/backend (target >= 0.8)
# Every process started is stopped on exit.
#
# Knobs (environment): CHANGES=100 N=10000 SIZE=10240 SESSIONS=20
# Results: printed, and bench/out/frontend-latest.txt.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
CHANGES=${CHANGES:-100}
N=${N:-10000}
SIZE=${SIZE:-10240}
SESSIONS=${SESSIONS:-20}
[ -x bin/postern ] || make build
TMP=$(mktemp -d /tmp/postern-frontbench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
go build -o "$TMP/frontbench" ./bench/frontbench
"$TMP/frontbench" -postern bin/postern -dir "$TMP/work" -changes "$CHANGES" -n "$N" -size "$SIZE" -sessions "$SESSIONS" >"$TMP/raw"
mkdir -p bench/out
{
	echo "Frontend vs backend ($(date -u +%FT%TZ), $(nproc) CPUs): $CHANGES changes; $N messages of $SIZE bytes over $SESSIONS sessions"
	awk '
	function field(k,   i, kv) { for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] } return "" }
	{ m = field("measure")
	  if (m == "visibility") printf "change visibility backend → frontend: p50 %s ms, p99 %s ms, max %s ms (target p99 <= 2000 ms, aim <= 100 ms)\n", field("p50_ms"), field("p99_ms"), field("max_ms")
	  else if (m == "throughput") printf "SMTP through the %-8s %10s messages/s\n", field("system"), field("messages_per_s")
	  else if (m == "throughput_ratio") printf "frontend / backend: %s (target >= 0.8)\n", field("frontend_over_backend") }' "$TMP/raw"
} | tee bench/out/frontend-latest.txt
