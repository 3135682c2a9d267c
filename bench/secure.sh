#!/usr/bin/env bash
# bench/secure.sh — the cost of secure mail (issue 15, Benchmark): messages per
# second through Postern's gateway with S/MIME encryption of a 10 KB message to one
# recipient and with S/MIME signing, side by side with the plain relay, and the
# ratios. Runs bench/securebench (everything on 127.0.0.1, ports the kernel picks).
#
# Knobs (environment): N=2000 SIZE=10240 SESSIONS=10
# Results: printed, and bench/out/secure-latest.txt.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p bench/out
go run ./bench/securebench -n "${N:-2000}" -size "${SIZE:-10240}" -sessions "${SESSIONS:-10}" | tee bench/out/secure-latest.txt
