#!/usr/bin/env bash
# Installs the Debian tools the tests drive (real third-party peers), when missing.
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
have ldapsearch   || need+=(ldap-utils)
have slapd        || need+=(slapd)
have swaks        || need+=(swaks)
have smtp-source  || need+=(postfix)
have ssh          || need+=(openssh-client)
have ssh-keygen   || need+=(openssh-client)
have promtool     || need+=(prometheus)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
	echo "missing test tools: ${need[*]} (run make test as root, or apt-get install them)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections 2>/dev/null || true
echo "slapd slapd/no_configuration boolean true" | debconf-set-selections 2>/dev/null || true
apt-get update -qq
apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null
# Packaged daemons must not hold the ports the tests use.
for svc in slapd postfix prometheus prometheus-node-exporter; do
	(service "$svc" stop || true) >/dev/null 2>&1
done
pkill -x prometheus 2>/dev/null || true
