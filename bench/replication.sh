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
# Then, Postern alone, how the full refresh's cost grows (issue 16): B's full refresh of
# BENCH_REPL_ENTRIES and of BENCH_REPL_SCALE entries, each on a fresh pair, and the
# cost per entry of the larger against the smaller (target <= 1.15).
#
# Knobs (environment): BENCH_REPL_ENTRIES=10000, BENCH_REPL_WRITES=500, BENCH_REPL_ROUNDS=3,
# BENCH_REPL_CLIENTS=16, BENCH_REPL_SCALE=100000 (0 skips the growth measure).
# Results: bench/out/replication-<UTC time>.txt and bench/out/replication-latest.txt.
# Exit status 0 when every measure completed; the targets are reported, not asserted.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
ENTRIES=${BENCH_REPL_ENTRIES:-10000}
WRITES=${BENCH_REPL_WRITES:-500}
CLIENTS=${BENCH_REPL_CLIENTS:-16}
ROUNDS=${BENCH_REPL_ROUNDS:-3}
SCALE=${BENCH_REPL_SCALE:-100000}
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
if [ "$SCALE" -gt 0 ]; then
	for n in "$ENTRIES" "$SCALE"; do
		rm -rf "$TMP/work"
		"$TMP/replbench" -only postern -refresh-only -entries "$n" -clients "$CLIENTS" -dir "$TMP/work" |
			sed 's/^system=postern measure=full_refresh /system=postern measure=refresh_scale /; s/^system=postern measure=load /system=postern measure=scale_load /' | tee -a "$RAW"
	done
fi

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
	  else if (m == "load") v[sys, "load over LDAP (s)"] = field("seconds")
	  else if (m == "refresh_scale") { ns++; scale_n[ns] = field("entries"); scale_us[ns] = 1e6 * field("seconds") / field("entries") } }
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
	  pp50 = v["postern", "latency p50 (ms)"]; sp50 = v["slapd", "latency p50 (ms)"]
	  pp99 = v["postern", "latency p99 (ms)"]; sp99 = v["slapd", "latency p99 (ms)"]
	  if (sp50 > 0) printf "target: replication write -> visible p50, Postern/slapd: %.2f (target <= 0.6): %s\n", pp50 / sp50, (pp50 / sp50 <= 0.6) ? "met" : "NOT met"
	  if (sp99 > 0) printf "target: replication write -> visible p99, Postern/slapd: %.2f (target <= 0.7): %s\n", pp99 / sp99, (pp99 / sp99 <= 0.7) ? "met" : "NOT met"
	  if (ns == 2 && scale_us[1] > 0) {
	    r = scale_us[2] / scale_us[1]
	    printf "full refresh per entry (Postern alone): %d entries %.1f us, %d entries %.1f us\n", scale_n[1], scale_us[1], scale_n[2], scale_us[2]
	    printf "target: full refresh per entry at %d / at %d entries: %.2f (target <= 1.15): %s\n", scale_n[2], scale_n[1], r, (r <= 1.15) ? "met" : "NOT met"
	  }
	  if ("postern" in rounds && "slapd" in rounds) {
	    printf "latency p99 by round (ms): postern%s; slapd%s; ratios", rounds["postern"], rounds["slapd"]
	    for (i = 1; (i, "postern") in ratio_in; i++) printf " %.2f", ratio_in[i, "postern"] / ratio_in[i, "slapd"]
	    printf "\n"
	  }
	}' "$RAW"
} | tee "$REPORT"
cp "$REPORT" "$OUT/replication-latest.txt"
