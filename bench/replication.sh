#!/usr/bin/env bash
# bench/replication.sh — Postern replication side by side with two stock slapd
# multi-provider nodes (issue 4's benchmark).
#
# bench/replbench (Go) starts two Postern members (each a process: store, LDAP server,
# RFC 4533 provider and a consumer of the other over loopback LDAP) and two slapd nodes (back_mdb + syncprov, serverID, multiprovider,
# syncrepl refreshAndPersist to each other), loads the same data over LDAP with the
# same client, and measures:
#   full refresh   B starts empty while A holds N entries; time until B holds them all
#   latency        a modify on A until a search on B sees it, W times: p50 and p99
#                  (both pairs up, the two systems' writes taken in turn); R rounds,
#                  each printed, the median round's figures compared
#   catch-up       B down, N modifies on A, B restarted; time until B has them all
# This script prints both systems and the ratios Postern/slapd against the targets
# (latency p99 <= slapd's; catch-up and full refresh <= 0.5x slapd's time). Everything
# listens on 127.0.0.1; every process started is stopped on exit.
#
# Knobs (environment): BENCH_REPL_ENTRIES=10000, BENCH_REPL_WRITES=500, BENCH_REPL_ROUNDS=3,
# BENCH_REPL_CLIENTS=16.
# Results: bench/out/replication-<UTC time>.txt and bench/out/replication-latest.txt.
# Exit status 0 when every measure completed; the targets are reported, not asserted.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
ENTRIES=${BENCH_REPL_ENTRIES:-10000}
WRITES=${BENCH_REPL_WRITES:-500}
CLIENTS=${BENCH_REPL_CLIENTS:-16}
ROUNDS=${BENCH_REPL_ROUNDS:-3}
SLAPD=/usr/sbin/slapd
[ -x "$SLAPD" ] || { echo "replication.sh: $SLAPD not found (apt-get install slapd)" >&2; exit 1; }
[ -e /usr/lib/ldap/syncprov.so ] || { echo "replication.sh: /usr/lib/ldap/syncprov.so not found" >&2; exit 1; }

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$ROOT/bench/out
mkdir -p "$OUT"
RAW=$OUT/replication-$STAMP.raw
REPORT=$OUT/replication-$STAMP.txt
TMP=$(mktemp -d /tmp/postern-replbench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

go build -o "$TMP/replbench" ./bench/replbench
"$TMP/replbench" -entries "$ENTRIES" -writes "$WRITES" -rounds "$ROUNDS" -clients "$CLIENTS" -slapd "$SLAPD" -dir "$TMP/work" | tee "$RAW"

{
	echo "Replication: Postern vs slapd 2.5 multi-provider ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $ENTRIES entries, latency: median of $ROUNDS rounds of $WRITES writes)"
	awk '
	function field(k,   i, kv) { for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] } return "" }
	{ sys = field("system"); m = field("measure")
	  if (m == "latency") { v[sys, "latency p50 (ms)"] = field("p50_ms"); v[sys, "latency p99 (ms)"] = field("p99_ms") }
	  else if (m == "latency_round") { rounds[sys] = rounds[sys] " " field("p99_ms"); ratio_in[field("round"), sys] = field("p99_ms") }
	  else if (m == "write_ack") { v[sys, "  write ack p50 (ms)"] = field("p50_ms"); v[sys, "  write ack p99 (ms)"] = field("p99_ms") }
	  else if (m == "full_refresh") v[sys, "full refresh (s)"] = field("seconds")
	  else if (m == "catch_up") v[sys, "catch-up (s)"] = field("seconds")
	  else if (m == "load") v[sys, "load over LDAP (s)"] = field("seconds") }
	END {
	  n = split("load over LDAP (s)|full refresh (s)|latency p50 (ms)|latency p99 (ms)|  write ack p50 (ms)|  write ack p99 (ms)|catch-up (s)", names, "|")
	  target["full refresh (s)"] = 0.5; target["catch-up (s)"] = 0.5; target["latency p99 (ms)"] = 1.0
	  printf "%-22s %12s %12s %10s %s\n", "measure", "postern", "slapd", "ratio", "target"
	  for (i = 1; i <= n; i++) {
	    k = names[i]; p = v["postern", k]; s = v["slapd", k]; r = (s > 0) ? sprintf("%.2f", p / s) : "-"
	    t = ""
	    if (k in target) t = sprintf("<= %.1f %s", target[k], (s > 0 && p / s <= target[k]) ? "met" : "NOT met")
	    printf "%-22s %12s %12s %10s %s\n", k, p, s, r, t
	  }
	  if ("postern" in rounds && "slapd" in rounds) {
	    printf "latency p99 by round (ms): postern%s; slapd%s; ratios", rounds["postern"], rounds["slapd"]
	    for (i = 1; (i, "postern") in ratio_in; i++) printf " %.2f", ratio_in[i, "postern"] / ratio_in[i, "slapd"]
	    printf "\n"
	  }
	}' "$RAW"
} | tee "$REPORT"
cp "$REPORT" "$OUT/replication-latest.txt"
