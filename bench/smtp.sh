#!/usr/bin/env bash
# bench/smtp.sh — Postern's SMTP gateway side by side with Postfix (issue 3, Benchmark).
#
#   smtp-source → smtp-sink                  the machine's ceiling (no relay in between)
#   smtp-source → Postern (smtpgw) → smtp-sink
#   smtp-source → Postfix → smtp-sink        a private instance configured here
#
# N messages of SIZE bytes over SESSIONS parallel sessions; each run is timed from the
# start of smtp-source until smtp-sink has counted every message (end to end: accepted,
# queued with fsync before 250, delivered). Postern runs as bench/smtpgw (the gateway
# alone, static directory). Postfix runs with `postfix -c DIR` from a temporary
# config/queue directory on loopback ports, with its default queue fsync behaviour
# (cleanup fsyncs every queue file before smtpd answers 250). Prints messages/s for all
# three and the Postern/Postfix ratio. Everything listens on 127.0.0.1 and every
# process started here is stopped on exit.
#
# Knobs (environment): N=10000 SIZE=10240 SESSIONS=20 TIMEOUT=600 (seconds per run)
#   BENCH_ONLY=postern|postfix|sink  run one side only
#   SMTPGW_CPUPROFILE=FILE  the gateway writes a CPU profile of its run there
# Results: printed, and bench/out/smtp-latest.txt.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
N=${N:-10000}
SIZE=${SIZE:-10240}
SESSIONS=${SESSIONS:-20}
TIMEOUT=${TIMEOUT:-600}
ONLY=${BENCH_ONLY:-}

for tool in smtp-source smtp-sink postfix postconf; do
	command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "smtp.sh: $tool not found" >&2; exit 1; }
done
export PATH=$PATH:/usr/sbin

W=$(mktemp -d /tmp/postern-bench-smtp.XXXXXX)
chmod 755 "$W"
PIDS=()
POSTFIX_DIR=""
cleanup() {
	for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
	if [ -n "$POSTFIX_DIR" ]; then postfix -c "$POSTFIX_DIR/etc" stop >/dev/null 2>&1 || true; fi
	rm -rf "$W"
}
trap cleanup EXIT

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SINK_PORT=$(freeport)
POSTERN_PORT=$(freeport)
POSTFIX_PORT=$(freeport)
SINK_USER=()
[ "$(id -u)" = 0 ] && SINK_USER=(-u postfix)

waitport() { # port
	for _ in $(seq 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "smtp.sh: nothing listens on port $1" >&2; return 1
}

SINK_PID=""
start_sink() {
	: >"$W/sink.out"
	smtp-sink "${SINK_USER[@]}" -c "127.0.0.1:$SINK_PORT" 1024 >"$W/sink.out" 2>&1 &
	SINK_PID=$!
	PIDS+=("$SINK_PID")
	waitport "$SINK_PORT"
}
stop_sink() { kill "$SINK_PID" 2>/dev/null || true; wait "$SINK_PID" 2>/dev/null || true; }
sink_count() { tr '\r' '\n' <"$W/sink.out" | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2; }

# run PORT: smtp-source → PORT, wait until the sink counted N; prints messages/s.
run() {
	local port=$1 t0 t1 c
	start_sink
	t0=$(date +%s.%N)
	smtp-source -s "$SESSIONS" -m "$N" -l "$SIZE" -f bench@source.test -t rcpt@bench.test \
		-M source.test "127.0.0.1:$port" >"$W/source.out" 2>&1 || { cat "$W/source.out" >&2; return 1; }
	while :; do
		c=$(sink_count); c=${c:-0}
		[ "$c" -ge "$N" ] && break
		if [ "$(echo "$(date +%s.%N) - $t0 > $TIMEOUT" | bc)" = 1 ]; then
			echo "smtp.sh: timeout, sink counted $c of $N" >&2; stop_sink; return 1
		fi
		sleep 0.02
	done
	t1=$(date +%s.%N)
	stop_sink
	echo "scale=1; $N / ($t1 - $t0)" | bc
}

start_postern() {
	go build -o "$W/smtpgw" ./bench/smtpgw
	"$W/smtpgw" -listen "127.0.0.1:$POSTERN_PORT" -data "$W/postern-queue" ${SMTPGW_CPUPROFILE:+-cpuprofile "$SMTPGW_CPUPROFILE"} \
		-domain bench.test -deliver-to "127.0.0.1:$SINK_PORT" >"$W/postern.out" 2>&1 &
	PIDS+=($!)
	waitport "$POSTERN_PORT"
}

start_postfix() {
	POSTFIX_DIR=$W/postfix
	mkdir -p "$POSTFIX_DIR/etc" "$POSTFIX_DIR/spool" "$POSTFIX_DIR/data"
	chown postfix "$POSTFIX_DIR/data" 2>/dev/null || true
	cat >"$POSTFIX_DIR/etc/main.cf" <<-CF
		compatibility_level = 3.6
		queue_directory = $POSTFIX_DIR/spool
		data_directory = $POSTFIX_DIR/data
		mail_owner = postfix
		setgid_group = postdrop
		myhostname = postfix.bench.test
		mydestination =
		inet_interfaces = 127.0.0.1
		inet_protocols = ipv4
		mynetworks = 127.0.0.0/8
		relayhost = [127.0.0.1]:$SINK_PORT
		smtp_dns_support_level = disabled
		local_transport = error:local delivery is disabled
		alias_maps =
		alias_database =
		biff = no
		maillog_file_prefixes = $POSTFIX_DIR
		maillog_file = $POSTFIX_DIR/maillog
		smtpd_client_connection_count_limit = 0
	CF
	cat >"$POSTFIX_DIR/etc/master.cf" <<-CF
		127.0.0.1:$POSTFIX_PORT inet n - n - - smtpd
		pickup    unix  n       -       n       60      1       pickup
		cleanup   unix  n       -       n       -       0       cleanup
		qmgr      unix  n       -       n       300     1       qmgr
		tlsmgr    unix  -       -       n       1000?   1       tlsmgr
		rewrite   unix  -       -       n       -       -       trivial-rewrite
		bounce    unix  -       -       n       -       0       bounce
		defer     unix  -       -       n       -       0       bounce
		trace     unix  -       -       n       -       0       bounce
		verify    unix  -       -       n       -       1       verify
		flush     unix  n       -       n       1000?   0       flush
		proxymap  unix  -       -       n       -       -       proxymap
		proxywrite unix -       -       n       -       1       proxymap
		smtp      unix  -       -       n       -       -       smtp
		relay     unix  -       -       n       -       -       smtp
		showq     unix  n       -       n       -       -       showq
		error     unix  -       -       n       -       -       error
		retry     unix  -       -       n       -       -       error
		discard   unix  -       -       n       -       -       discard
		local     unix  -       n       n       -       -       local
		lmtp      unix  -       -       n       -       -       lmtp
		anvil     unix  -       -       n       -       1       anvil
		scache    unix  -       -       n       -       1       scache
		postlog   unix-dgram n  -       n       -       1       postlogd
	CF
	postfix -c "$POSTFIX_DIR/etc" start >"$W/postfix-start.out" 2>&1 || { echo "smtp.sh: postfix start failed:" >&2; cat "$W/postfix-start.out" "$POSTFIX_DIR/maillog" >&2 2>/dev/null; return 1; }
	waitport "$POSTFIX_PORT"
}

ceiling="-" postern="-" postfix="-"
if [ -z "$ONLY" ] || [ "$ONLY" = sink ]; then
	# The ceiling: smtp-source straight into smtp-sink.
	ceiling=$(run "$SINK_PORT")
fi
if [ -z "$ONLY" ] || [ "$ONLY" = postern ]; then
	start_postern
	postern=$(run "$POSTERN_PORT")
fi
if [ -z "$ONLY" ] || [ "$ONLY" = postfix ]; then
	start_postfix
	postfix=$(run "$POSTFIX_PORT")
fi
ratio="-" share="-"
if [ "$postern" != "-" ] && [ "$postfix" != "-" ]; then
	ratio=$(echo "scale=2; $postern / $postfix" | bc)
fi
if [ "$postern" != "-" ] && [ "$ceiling" != "-" ]; then
	share=$(echo "scale=2; $postern / $ceiling" | bc)
fi
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r != "-" && r >= t) ? "met" : "NOT met" }'; }
mkdir -p bench/out
{
	echo "SMTP end to end: $N messages of $SIZE bytes over $SESSIONS sessions ($(nproc) CPUs, $(date -u +%FT%TZ))"
	printf '%-34s %12s\n' "path" "messages/s"
	printf '%-34s %12s\n' "smtp-source → smtp-sink (ceiling)" "$ceiling"
	printf '%-34s %12s\n' "smtp-source → Postern → smtp-sink" "$postern"
	printf '%-34s %12s\n' "smtp-source → Postfix → smtp-sink" "$postfix"
	printf '%-34s %12s\n' "Postern / Postfix" "$ratio"
	printf '%-34s %12s\n' "Postern / ceiling" "$share"
	echo "Postfix $(postconf -d -h mail_version 2>/dev/null || echo unknown); Postern acknowledges after fdatasync (group commit); Postfix after fsync per queue file."
	echo "target: SMTP relay, Postern/Postfix messages/s: $ratio (target >= 5): $(verdict "$ratio" 5)"
	echo "target: SMTP relay, Postern/ceiling (smtp-source -> smtp-sink): $share (target >= 0.6): $(verdict "$share" 0.6)"
} | tee bench/out/smtp-latest.txt
