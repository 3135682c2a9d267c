#!/usr/bin/env bash
# Runs every Fuzz target in the module for $1 (default 30s) each.
set -euo pipefail
t=${1:-30s}
grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
	dir=$(dirname "$f")
	grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //' | while read -r fn; do
		echo "== $dir $fn"
		go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$t" "./$dir"
	done
done
