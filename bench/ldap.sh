#!/usr/bin/env bash
# bench/ldap.sh — Postern's LDAP server side by side with a stock slapd (issue 2, item 6).
#
# Starts a stock OpenLDAP slapd (back_mdb, the same indexes) and Postern on loopback
# ports, loads both over LDAP with the same users (bench/ldapload), runs the same
# bounded workloads against each and prints ops/s, p50, p99 and the ratio
# Postern/slapd. Then loads 100,000 users into Postern and reports its resident memory
# against the 150 MB target, with slapd's at the same size for reference (slapd gets
# its extra users offline with slapadd). Everything listens on 127.0.0.1, every run is
# bounded, and every process started here is stopped on exit.
#
# Run from anywhere: `bash bench/ldap.sh` (make bench calls it from the repo root).
# Knobs (environment):
#   BENCH_DURATION=5s       measured time of each run (each also has a 1s warm-up)
#   BENCH_CLIENTS="1 8 32"  client counts
#   BENCH_USERS=10000       users in the compared directories
#   BENCH_RSS_USERS=100000  users for the memory measurement (0 skips it)
#   BENCH_REPEAT=1         runs of each configuration; the median (by ops/s) is reported
#   BENCH_ONLY=slapd        measure slapd alone (checks the harness without Postern)
#   BENCH_SLAPD_LOAD=ldap   how slapd gets the compared users: ldap (default, timed
#                           like Postern's) or slapadd (offline)
# Results: bench/out/ldap-<UTC time>.txt (table, memory, environment) and .raw (every
# ldapload line), and bench/out/ldap-latest.txt. Exit status 0 when every run completed
# without errors; the targets are reported, not asserted.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

DURATION=${BENCH_DURATION:-5s}
CLIENTS=${BENCH_CLIENTS:-1 8 32}
USERS=${BENCH_USERS:-10000}
RSS_USERS=${BENCH_RSS_USERS:-100000}
ONLY=${BENCH_ONLY:-}
REPEAT=${BENCH_REPEAT:-1}
SLAPD_LOAD=${BENCH_SLAPD_LOAD:-ldap}
WARMUP=1s
SLAPD=/usr/sbin/slapd
SLAPADD=/usr/sbin/slapadd
SCHEMA_DIR=/etc/ldap/schema
MODULE_DIR=/usr/lib/ldap
SUFFIX=dc=postern,dc=local
ROOTDN=cn=admin,$SUFFIX
# Both servers get the same admin password; it guards nothing but these temporary
# loopback instances.
PASSWORD=bench-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
RSS_TARGET_MB=150
RSS_TARGET16_MB=100 # issue 16

case "$REPEAT" in [1-9]) ;; *) echo "ldap.sh: BENCH_REPEAT must be 1..9" >&2; exit 2 ;; esac
case "$ONLY" in "" | slapd) ;; *) echo "ldap.sh: BENCH_ONLY must be empty or slapd" >&2; exit 2 ;; esac
case "$SLAPD_LOAD" in ldap | slapadd) ;; *) echo "ldap.sh: BENCH_SLAPD_LOAD must be ldap or slapadd" >&2; exit 2 ;; esac
[ -x "$SLAPD" ] || { echo "ldap.sh: $SLAPD not found (apt-get install slapd)" >&2; exit 1; }
[ -e "$MODULE_DIR/back_mdb.so" ] || { echo "ldap.sh: $MODULE_DIR/back_mdb.so not found" >&2; exit 1; }

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$ROOT/bench/out
mkdir -p "$OUT"
REPORT=$OUT/ldap-$STAMP.txt
RAW=$OUT/ldap-$STAMP.raw
: >"$RAW"

TMP=$(mktemp -d /tmp/postern-ldapbench.XXXXXX)
SLAPD_PID=
POSTERN_PID=

# stop PID: SIGTERM, up to 15 s for a clean exit, then SIGKILL. Only our own children.
stop() {
	local pid=$1 i
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 150; i++)); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop "$POSTERN_PID"
	stop "$SLAPD_PID"
	for log in slapd.log postern.log; do
		[ -s "$TMP/$log" ] && tail -n 200 "$TMP/$log" >"$OUT/ldap-$STAMP-$log"
	done
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { echo "== $*" >&2; }
die() { echo "ldap.sh: $*" >&2; exit 1; }

# free_port prints a loopback TCP port nobody listens on (checked by connecting).
free_port() {
	local i p
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % 30000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	die "no free loopback port found"
}

# wait_port PORT PID LOG SECONDS: until PORT accepts connections. Returns 1 if PID
# exited first (its log tail on stderr), dies if nothing listens after SECONDS.
wait_port() {
	local port=$1 pid=$2 log=$3 secs=$4 i
	for ((i = 0; i < secs * 10; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" 2>/dev/null || true
			tail -n 5 "$log" >&2 || true
			say "process $pid exited before listening on 127.0.0.1:$port"
			return 1
		fi
		sleep 0.1
	done
	tail -n 30 "$log" >&2 || true
	die "nothing listens on 127.0.0.1:$port after ${secs}s"
}

# rss_kb PID FIELD: VmRSS or VmHWM of PID in kB.
rss_kb() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }
mb() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
# rss_line PID: "VmRSS X MB (anonymous A MB, file-backed F MB), peak VmHWM H MB". File-backed
# pages are mapped database pages (bbolt and back_mdb both read through mmap).
rss_line() {
	echo "VmRSS $(mb "$(rss_kb "$1" VmRSS)") MB (anonymous $(mb "$(rss_kb "$1" RssAnon)") MB, file-backed $(mb "$(rss_kb "$1" RssFile)") MB), peak VmHWM $(mb "$(rss_kb "$1" VmHWM)") MB"
}
# sizes DIR: the largest files (1 MB or more) below DIR with their allocated size.
sizes() { (cd "$1" && find . -type f -exec du -k {} + | sort -rn | awk '$1 >= 1024 && n < 4 {printf "%s%s %.0f MB", sep, substr($2, 3), $1 / 1024; sep = ", "; n++}'); }

# field LINE KEY: the value of key=value in an ldapload output line, units stripped.
field() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k {sub(/(ms|s|us\/op)$/, "", $2); print $2}'; }

LOADER=$TMP/ldapload
ldapload() { "$LOADER" "$@" -D "$ROOTDN" -w "$PASSWORD" -base "$SUFFIX"; }

# ---- build ----
say "building bench/ldapload and bin/postern"
go build -o "$LOADER" ./bench/ldapload
if [ -z "$ONLY" ]; then
	BUILT_FROM="commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
	[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || BUILT_FROM+=" plus uncommitted changes"
	ldflags="-X postern/firmware.Version=$(cat VERSION 2>/dev/null || echo 0.0.0-dev) -X postern/firmware.Build=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
	go build -ldflags "$ldflags" -o bin/postern .
fi

# ---- slapd ----
SLAPD_PORT=$(free_port)
mkdir -p "$TMP/slapd/db"
cat >"$TMP/slapd/slapd.conf" <<EOF
# Stock OpenLDAP $("$SLAPD" -VV 2>&1 | sed -n 's/.*slapd \([0-9.]*\).*/\1/p' | head -n 1), back_mdb with default settings
# (fsync on every commit), the same equality indexes Postern keeps.
include $SCHEMA_DIR/core.schema
include $SCHEMA_DIR/cosine.schema
include $SCHEMA_DIR/inetorgperson.schema
modulepath $MODULE_DIR
moduleload back_mdb
pidfile $TMP/slapd/slapd.pid
argsfile $TMP/slapd/slapd.args
loglevel none

database mdb
maxsize 4294967296
suffix "$SUFFIX"
rootdn "$ROOTDN"
rootpw $PASSWORD
directory $TMP/slapd/db
index objectClass,cn,uid,mail,entryUUID eq
EOF
"$SLAPD" -Tt -u -f "$TMP/slapd/slapd.conf" >"$TMP/slapd.log" 2>&1 || { cat "$TMP/slapd.log" >&2; die "slapd.conf rejected"; }

# start_slapd: starts slapd on SLAPD_PORT; if the port was taken in the meantime (other
# tests on this machine pick ports too), tries twice more on new ports.
start_slapd() {
	local try
	for try in 1 2 3; do
		"$SLAPD" -f "$TMP/slapd/slapd.conf" -h "ldap://127.0.0.1:$SLAPD_PORT/" -d 0 >>"$TMP/slapd.log" 2>&1 &
		SLAPD_PID=$!
		wait_port "$SLAPD_PORT" "$SLAPD_PID" "$TMP/slapd.log" 30 && return 0
		SLAPD_PID=
		SLAPD_PORT=$(free_port)
	done
	die "slapd did not start (log: $TMP/slapd.log, kept in bench/out)"
}

if [ "$SLAPD_LOAD" = slapadd ]; then
	say "slapd: $USERS users loaded offline with slapadd"
	"$LOADER" ldif -base "$SUFFIX" -n "$USERS" -o "$TMP/users.ldif"
	"$SLAPADD" -q -f "$TMP/slapd/slapd.conf" -l "$TMP/users.ldif" >>"$TMP/slapd.log" 2>&1 ||
		{ tail -n 20 "$TMP/slapd.log" >&2; die "slapadd failed"; }
	rm -f "$TMP/users.ldif"
fi
start_slapd
say "slapd pid $SLAPD_PID on ldap://127.0.0.1:$SLAPD_PORT/"

# ---- Postern ----
start_postern() {
	local try i
	for try in 1 2 3; do
		POSTERN_ADMIN_PASSWORD=$PASSWORD bin/postern serve --data "$TMP/postern" \
			--ldap "127.0.0.1:$POSTERN_PORT" --ldaps "127.0.0.1:$POSTERN_TLS_PORT" \
			--smtp 127.0.0.1:0 --admin 127.0.0.1:0 --cluster 127.0.0.1:0 --metrics 127.0.0.1:0 \
			>>"$TMP/postern.log" 2>&1 &
		POSTERN_PID=$!
		if wait_port "$POSTERN_PORT" "$POSTERN_PID" "$TMP/postern.log" 60; then
			# The appliance creates the suffix and ou=people before it says "ready".
			for ((i = 0; i < 300; i++)); do
				grep -q '^ready' "$TMP/postern.log" && return 0
				kill -0 "$POSTERN_PID" 2>/dev/null || die "postern exited during start-up"
				sleep 0.1
			done
			say "postern never printed ready; going on since its LDAP port answers"
			return 0
		fi
		POSTERN_PID=
		POSTERN_PORT=$(free_port)
		POSTERN_TLS_PORT=$(free_port)
	done
	die "postern did not start (log kept in bench/out)"
}
if [ -z "$ONLY" ]; then
	POSTERN_PORT=$(free_port)
	POSTERN_TLS_PORT=$(free_port)
	start_postern
	say "postern pid $POSTERN_PID on ldap://127.0.0.1:$POSTERN_PORT/"
fi

SERVERS="slapd"
[ -z "$ONLY" ] && SERVERS="slapd postern"
url_of() { if [ "$1" = slapd ]; then echo "ldap://127.0.0.1:$SLAPD_PORT"; else echo "ldap://127.0.0.1:$POSTERN_PORT"; fi; }
pid_of() { if [ "$1" = slapd ]; then echo "$SLAPD_PID"; else echo "$POSTERN_PID"; fi; }

# ---- load the compared users ----
declare -A R # R[server,workload,clients,field]
ERRORS=0
LOAD_ERRS=0
for s in $SERVERS; do
	if [ "$s" = slapd ] && [ "$SLAPD_LOAD" = slapadd ]; then continue; fi
	say "$s: adding $USERS users over LDAP, 8 connections"
	line=$(ldapload load -url "$(url_of "$s")" -n "$USERS" -clients 8 -server-pid "$(pid_of "$s")") || die "$s: load failed: $line"
	echo "server=$s $line" >>"$RAW"
	R[$s,add,8,ops/s]=$(field "$line" ops/s)
	for f in p50 p99 errors; do R[$s,add,8,$f]=$(field "$line" "$f"); done
	R[$s,add,8,cpu]=$(field "$line" server_cpu | awk '{printf "%.0f", $1}')
	LOAD_ERRS=$((LOAD_ERRS + $(field "$line" errors)))
done

# ---- the compared workloads: each configuration on both servers back to back, so
# that the other load on this machine weighs on both alike; with BENCH_REPEAT=N every
# configuration runs N times (the server order alternating) and the run with the
# median ops/s is reported ----
set_result() { # set_result SERVER WORKLOAD CLIENTS LINE
	local f
	for f in ops/s p50 p99 errors; do R[$1,$2,$3,$f]=$(field "$4" "$f"); done
	R[$1,$2,$3,cpu]=$(field "$4" server_cpu | awk '{printf "%.0f", $1}')
}
declare -A RUNS # RUNS[server,workload,clients] = newline-separated ldapload lines
ERRS=0
for ((rep = 1; rep <= REPEAT; rep++)); do
	order=$SERVERS
	((rep % 2 == 0)) && order=$(tr ' ' '\n' <<<"$SERVERS" | tac | tr '\n' ' ')
	for w in search-uid search-mail modify; do
		for c in $CLIENTS; do
			for s in $order; do
				rc=0
				line=$(ldapload run -url "$(url_of "$s")" -workload "$w" -clients "$c" -server-pid "$(pid_of "$s")" \
					-users "$USERS" -duration "$DURATION" -warmup "$WARMUP" -seed "$rep") || rc=$?
				[ -n "$line" ] || die "$s $w $c clients: ldapload failed (exit $rc)"
				[ "$rc" = 0 ] || ERRORS=1
				ERRS=$((ERRS + $(field "$line" errors)))
				echo "server=$s rep=$rep $line" >>"$RAW"
				RUNS[$s,$w,$c]+="$line"$'\n'
				say "$s $(printf '%-11s %2s' "$w" "$c") clients (run $rep/$REPEAT): $(field "$line" ops/s) ops/s, p50 $(field "$line" p50) ms, p99 $(field "$line" p99) ms, errors $(field "$line" errors)"
			done
		done
	done
done
for k in "${!RUNS[@]}"; do
	IFS=, read -r s w c <<<"$k"
	# The median run by ops/s (the lower middle one for an even count).
	line=$(printf '%s' "${RUNS[$k]}" | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^ops\/s=/) {split($i, a, "="); print a[2] "\t" $0}}' |
		sort -n | awk -v n="$REPEAT" 'NR == int((n + 1) / 2) {sub(/^[^\t]*\t/, ""); print}')
	set_result "$s" "$w" "$c" "$line"
done

# ---- table ----
table() {
	printf '%-12s %7s | %10s %8s %8s %7s | %11s %8s %8s %7s | %7s\n' workload clients \
		"slapd op/s" "p50 ms" "p99 ms" "cpu µs" "postrn op/s" "p50 ms" "p99 ms" "cpu µs" "P/slapd"
	printf -- '-%.0s' {1..120}
	echo
	row() {
		local w=$1 c=$2 ratio=-
		if [ -n "${R[postern,$w,$c,ops/s]:-}" ] && [ -n "${R[slapd,$w,$c,ops/s]:-}" ]; then
			ratio=$(awk -v p="${R[postern,$w,$c,ops/s]}" -v s="${R[slapd,$w,$c,ops/s]}" 'BEGIN { if (s > 0) printf "%.2f", p / s; else print "-" }')
		fi
		printf '%-12s %7s | %10s %8s %8s %7s | %11s %8s %8s %7s | %7s\n' "$w" "$c" \
			"${R[slapd,$w,$c,ops/s]:--}" "${R[slapd,$w,$c,p50]:--}" "${R[slapd,$w,$c,p99]:--}" "${R[slapd,$w,$c,cpu]:--}" \
			"${R[postern,$w,$c,ops/s]:--}" "${R[postern,$w,$c,p50]:--}" "${R[postern,$w,$c,p99]:--}" "${R[postern,$w,$c,cpu]:--}" "$ratio"
	}
	for w in search-uid search-mail modify; do
		for c in $CLIENTS; do row "$w" "$c"; done
	done
	if [ -n "${R[postern,add,8,ops/s]:-}" ] || [ -n "${R[slapd,add,8,ops/s]:-}" ]; then row add 8; fi
	echo
	echo "ops/s: successful operations per second over ${DURATION} after a ${WARMUP} warm-up (median of $REPEAT runs); p50/p99:"
	echo "latency seen by the client; cpu µs: server CPU time per operation; P/slapd: Postern ops/s"
	echo "divided by slapd's. add = loading the $USERS users over 8 connections (slapd: ${SLAPD_LOAD})."
	echo "errors: $((ERRS + LOAD_ERRS)) in all $((REPEAT * 3 * $(wc -w <<<"$CLIENTS") * $(wc -w <<<"$SERVERS"))) runs and the loads"
}

verdicts() {
	[ -z "$ONLY" ] || return 0
	local c w ratio ok want
	echo "targets (issue 2):"
	for w in search-uid search-mail modify; do
		for c in 8 32; do
			[ -n "${R[postern,$w,$c,ops/s]:-}" ] || continue
			ratio=$(awk -v p="${R[postern,$w,$c,ops/s]}" -v s="${R[slapd,$w,$c,ops/s]}" 'BEGIN { if (s > 0) printf "%.2f", p / s; else print 0 }')
			want=1.0
			[ "$w" = modify ] && want=1.5
			ok=$(awk -v r="$ratio" -v t="$want" 'BEGIN { print (r >= t) ? "met" : "MISSED" }')
			printf '  %-11s %2s clients: %s x slapd, target >= %s x: %s\n' "$w" "$c" "$ratio" "$want" "$ok"
		done
	done
	# issue 16: a single writer faster than slapd, searches further ahead
	for w in modify search-uid search-mail; do
		for c in $CLIENTS; do
			[ -n "${R[postern,$w,$c,ops/s]:-}" ] && [ -n "${R[slapd,$w,$c,ops/s]:-}" ] || continue
			case "$w,$c" in
			modify,1) want=1.2 ;; modify,8) want=3 ;; modify,32) want=4 ;;
			*,1) want=1.3 ;; *) want=1.5 ;;
			esac
			ratio=$(awk -v p="${R[postern,$w,$c,ops/s]}" -v s="${R[slapd,$w,$c,ops/s]}" 'BEGIN { if (s > 0) printf "%.2f", p / s; else print 0 }')
			ok=$(awk -v r="$ratio" -v t="$want" 'BEGIN { print (r >= t) ? "met" : "NOT met" }')
			printf 'target: LDAP %s, %s clients, Postern/slapd ops/s: %s (target >= %s): %s\n' "$w" "$c" "$ratio" "$want" "$ok"
		done
	done
}

# ---- memory with RSS_USERS entries ----
MEM=""
memory() {
	[ "$RSS_USERS" -gt "$USERS" ] || return 0
	local extra=$((RSS_USERS - USERS)) line
	if [ -z "$ONLY" ]; then
		say "postern: adding $extra more users over LDAP (8 connections) for the memory measurement"
		line=$(ldapload load -url "$(url_of postern)" -start "$USERS" -n "$extra" -clients 8) || die "postern: load failed: $line"
		echo "server=postern phase=rss-load $line" >>"$RAW"
		local after_load warm restarted
		after_load=$(rss_line "$POSTERN_PID")
		line=$(ldapload run -url "$(url_of postern)" -workload search-uid -clients 8 -users "$RSS_USERS" -duration 3s) || ERRORS=1
		echo "server=postern phase=rss-search $line" >>"$RAW"
		local warm_kb re_kb
		warm_kb=$(rss_kb "$POSTERN_PID" VmRSS)
		warm=$(rss_line "$POSTERN_PID")
		say "postern: restarting on the same data"
		stop "$POSTERN_PID"
		POSTERN_PID=
		start_postern
		line=$(ldapload run -url "$(url_of postern)" -workload search-uid -clients 8 -users "$RSS_USERS" -duration 3s) || ERRORS=1
		echo "server=postern phase=rss-restart-search $line" >>"$RAW"
		re_kb=$(rss_kb "$POSTERN_PID" VmRSS)
		restarted=$(rss_line "$POSTERN_PID")
		local verdict
		verdict=$(awk -v k="$((warm_kb > re_kb ? warm_kb : re_kb))" -v t="$RSS_TARGET_MB" 'BEGIN { print (k / 1024 <= t) ? "met" : "MISSED" }')
		MEM+="Postern resident memory with $RSS_USERS users (target <= $RSS_TARGET_MB MB VmRSS: $verdict):"$'\n'
		MEM+="  after adding them over LDAP:           $after_load"$'\n'
		MEM+="  then after 3 s of uid searches:        $warm"$'\n'
		MEM+="  restarted, after 3 s of uid searches:  $restarted"$'\n'
		MEM+="  data directory: $(du -sm "$TMP/postern" | cut -f1) MB on disk ($(sizes "$TMP/postern"))"$'\n'
		MEM+=$(awk -v k="$((warm_kb > re_kb ? warm_kb : re_kb))" -v t="$RSS_TARGET16_MB" -v n="$RSS_USERS" \
			'BEGIN { printf "target: LDAP memory with %d users, Postern VmRSS: %.0f MB (target <= %d MB): %s", n, k / 1024, t, (k / 1024 <= t) ? "met" : "NOT met" }')$'\n'
	fi
	say "slapd: adding $extra more users offline (slapadd) for the memory reference"
	local before
	before=$(rss_line "$SLAPD_PID")
	stop "$SLAPD_PID"
	SLAPD_PID=
	"$LOADER" ldif -base "$SUFFIX" -start "$USERS" -n "$extra" -with-base=false -o "$TMP/extra.ldif"
	"$SLAPADD" -q -f "$TMP/slapd/slapd.conf" -l "$TMP/extra.ldif" >>"$TMP/slapd.log" 2>&1 ||
		{ tail -n 20 "$TMP/slapd.log" >&2; die "slapadd failed"; }
	rm -f "$TMP/extra.ldif"
	start_slapd
	line=$(ldapload run -url "$(url_of slapd)" -workload search-uid -clients 8 -users "$RSS_USERS" -duration 3s) || ERRORS=1
	echo "server=slapd phase=rss-restart-search $line" >>"$RAW"
	MEM+="slapd for reference (back_mdb):"$'\n'
	MEM+="  $USERS users, after the benchmark:         $before"$'\n'
	MEM+="  $RSS_USERS users, restarted, after 3 s of uid searches: $(rss_line "$SLAPD_PID")"$'\n'
	MEM+="  database: $(du -sm "$TMP/slapd/db" | cut -f1) MB on disk"$'\n'
}
memory

{
	echo "Postern LDAP benchmark, $(date -u '+%Y-%m-%d %H:%M:%SZ')"
	echo "host: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f MB", $2/1024}' /proc/meminfo), load average before the table: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "slapd: $("$SLAPD" -VV 2>&1 | head -n 1 | sed 's/^@(#) \$OpenLDAP: //; s/ \$$//'), back_mdb, 16 threads (default)"
	if [ -z "$ONLY" ]; then
		echo "postern: $(bin/postern version 2>/dev/null | head -n 1 || echo unknown), built from $BUILT_FROM"
	fi
	echo "client: bench/ldapload, one connection per client, bound as $ROOTDN; users picked at random"
	echo
	table
	echo
	verdicts
	echo
	printf '%s' "$MEM"
} | tee "$REPORT"
cp "$REPORT" "$OUT/ldap-latest.txt"
say "report: $REPORT (raw lines: $RAW)"
[ "$ERRORS" = 0 ] || { echo "ldap.sh: some runs had errors (see $RAW)" >&2; exit 1; }
