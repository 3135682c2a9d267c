#!/usr/bin/env bash
# bench/targets.sh — every target of `make bench` (issue 16's list) with met / not met,
# from the latest report of each benchmark (bench/out/*-latest.txt). A target whose
# benchmark did not run (or did not finish) says so.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
echo "Targets (issue 16), $(date -u +%FT%TZ):"
for b in ldap smtp replication join; do
	f=bench/out/$b-latest.txt
	if [ ! -s "$f" ]; then
		echo "  $b: no report (bench/$b.sh did not finish): every target of it not met"
		continue
	fi
	grep -h '^target: ' "$f" | sed 's/^target: /  /'
done
