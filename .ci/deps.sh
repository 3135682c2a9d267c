#!/usr/bin/env bash
# Installs the Debian packages the tests drive (real third-party peers), checked
# by the capability each test needs, not by the presence of a binary: swaks
# without Net::SSLeay exists but cannot STARTTLS.
#
#   bash .ci/deps.sh           install what is missing (as root), then re-check
#   bash .ci/deps.sh --check   only check; print every missing capability, exit 1
#   bash .ci/deps.sh --list    print "capability<TAB>packages" for every row
#
# It starts no daemon (policy-rc.d refuses service starts while apt runs) and
# stops none: the tests start their own slapd, prometheus, ... on their own
# loopback addresses and never touch a process they did not start.
set -euo pipefail

# capability | packages (space-separated) | check (a shell command)
caps=(
	"ldap-client|ldap-utils|ldapsearch -VV && command -v ldapmodify ldapadd ldapdelete ldapmodrdn ldapcompare ldapwhoami ldappasswd"
	"slapd-syncprov|slapd|/usr/sbin/slapd -VV && ls /usr/lib/ldap/syncprov.so* /usr/lib/ldap/back_mdb.so* && ls /etc/ldap/schema/core.schema /etc/ldap/schema/inetorgperson.schema"
	"swaks-starttls|swaks libnet-ssleay-perl|swaks --support 2>&1 | grep -q '^=== TLS supported'"
	"postfix-smtp-tools|postfix|test -x /usr/sbin/smtp-source && test -x /usr/sbin/smtp-sink"
	"openssh-client|openssh-client|ssh -V && command -v ssh-keygen"
	"prometheus-server|prometheus|prometheus --version && promtool --version"
	"openssl-cms|openssl|openssl cms -help"
	"gnupg|gnupg gpg gpg-agent gpgconf|gpg --version && gpg-agent --version && gpgconf --list-dirs"
	"dkim-verifier|python3-dkim python3-minimal|/usr/bin/python3 -c 'import dkim' && command -v dkimverify"
	"git|git|git --version"
	"curl|curl|curl --version"
	"chromium-headless|chromium fonts-dejavu-core|chromium --headless=new --no-sandbox --disable-gpu --disable-background-networking --disable-component-update --dump-dom about:blank | grep -q '<body></body>' && test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
	"mkpasswd-libxcrypt|whois|mkpasswd -m help | grep -q '^yescrypt' && mkpasswd -m help | grep -q '^bcrypt '"
)

have() { bash -c "$1" >/dev/null 2>&1; }

missing() {
	local row name pkgs check
	for row in "${caps[@]}"; do
		IFS='|' read -r name pkgs check <<<"$row"
		have "$check" || printf '%s|%s\n' "$name" "$pkgs"
	done
}

case "${1:-}" in
--list)
	for row in "${caps[@]}"; do
		IFS='|' read -r name pkgs check <<<"$row"
		printf '%s\t%s\n' "$name" "$pkgs"
	done
	exit 0
	;;
--check)
	m=$(missing)
	if [ -n "$m" ]; then
		echo "missing test capabilities (capability|packages):" >&2
		echo "$m" >&2
		exit 1
	fi
	exit 0
	;;
"") ;;
*)
	echo "usage: deps.sh [--check|--list]" >&2
	exit 2
	;;
esac

m=$(missing)
[ -z "$m" ] && exit 0
need=$(echo "$m" | cut -d'|' -f2 | tr ' ' '\n' | sort -u | tr '\n' ' ')
if [ "$(id -u)" != 0 ]; then
	echo "missing test capabilities: $(echo "$m" | cut -d'|' -f1 | tr '\n' ' ')" >&2
	echo "install as root: apt-get install $need" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections 2>/dev/null || true
echo "slapd slapd/no_configuration boolean true" | debconf-set-selections 2>/dev/null || true
# No packaged daemon is started by the install (Debian's policy-rc.d
# interface, exit 101: action forbidden); a policy-rc.d the machine already
# has is put back afterwards.
prc=/usr/sbin/policy-rc.d
saved=""
if [ -e "$prc" ]; then
	saved=$(mktemp)
	cp -p "$prc" "$saved"
fi
restore() {
	if [ -n "$saved" ]; then mv -f "$saved" "$prc"; else rm -f "$prc"; fi
}
trap restore EXIT
printf '#!/bin/sh\nexit 101\n' >"$prc"
chmod 0755 "$prc"
echo "installing test tools: $need" >&2
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $need >/dev/null
m=$(missing)
if [ -n "$m" ]; then
	echo "still missing after apt-get install (capability|packages):" >&2
	echo "$m" >&2
	exit 1
fi
