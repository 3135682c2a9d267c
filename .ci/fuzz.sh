#!/usr/bin/env bash
# Runs every Fuzz target in the module for $1 (default 30s) each, all of
# them even when one fails, and reports every failure at the end; exits 1
# if any failed. A failing input is kept by go test under the package's
# testdata/fuzz/<target>/ and is replayed by every later `go test`.
set -uo pipefail
t=${1:-30s}
cd "$(dirname "$0")/.."
failed=()
passed=0
while read -r f; do
	dir=$(dirname "$f")
	for fn in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
		echo "== $dir $fn ($t)"
		log=$(mktemp)
		if go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$t" "./$dir" 2>&1 | tee "$log"; then
			passed=$((passed + 1))
		else
			why=$(grep -m1 'Failing input written to' "$log" || grep -m1 -E -- '--- FAIL|panic:' "$log" || echo 'see the log above')
			failed+=("$dir $fn: $why")
		fi
		rm -f "$log"
	done
done < <(grep -rl --include='*_test.go' '^func Fuzz' . | sort)
echo
echo "== fuzz: ${passed} passed, ${#failed[@]} failed (${t} each)"
for x in "${failed[@]}"; do
	echo "FAIL $x"
done
[ ${#failed[@]} -eq 0 ]
