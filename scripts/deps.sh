#!/usr/bin/env bash
# Install every build and test dependency of HyperMesh from Debian 12's packages.
# Idempotent: packages already present are skipped, so `make test` and `make demo` can call it first.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential pkg-config clang llvm make
  # BPF
  bpftool libbpf-dev libxdp-dev xdp-tools libelf-dev zlib1g-dev
  # userspace libraries
  libsodium-dev libyaml-dev uthash-dev libnl-3-dev libnl-route-3-dev libjansson-dev
  # replica links: message_compression (zstd)
  libzstd-dev
  # Prometheus endpoint
  libmicrohttpd-dev
  # Certificate Transparency: OpenSSL 3 (X.509, CT API), libcurl for the log client
  libssl-dev libcurl4-openssl-dev
  # DNS: messages (ldns), resolution and DNSSEC validation (libunbound)
  libldns-dev libunbound-dev
  # libunbound.pc requires libevent's .pc: without it pkg-config refuses every flag
  libevent-dev
  # sanitizer runtimes and fuzzing
  libclang-rt-14-dev
  # test and cluster tooling
  iproute2 procps psmisc jq python3
  # the link-layer suite captures replica traffic (selftests/e2e/e2e_link.sh)
  tcpdump
  # the metrics test parses with the Prometheus text-format parser
  python3-prometheus-client
  # the test CT log and certificate factory; certspotter reads the test log independently
  python3-cryptography certspotter
  # the CT cluster test: logs over HTTP, certificates altered and re-signed
  curl openssl xxd
  # DNS test infrastructure: authoritative server, zone signer, clients
  nsd ldnsutils dnsutils knot-dnsutils
  # a deployment's default DNSSEC trust anchor (hmctl init: /usr/share/dns/root.key)
  dns-root-data
  # the systemd unit: sd_notify (libsystemd), its check (systemd-analyze); man pages
  libsystemd-dev systemd go-md2man
  # make bench: dnsperf against a replica and against plain Unbound, Knot Resolver
  # and PowerDNS Recursor (scripts/bench_dns.sh; their host services are kept off, below)
  dnsperf unbound knot-resolver pdns-recursor
  # promtool: the metrics, alert rules and dashboard tests (contrib/monitoring)
  prometheus
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing ${missing[*]}; run as root (or with sudo) to install them" >&2
  exit 1
fi

# The resolvers the bench compares against run only inside its namespaces:
# their packages' own services (port 53 on the host) are neither started by
# the install (a policy-rc.d refusing them, unless the machine has its own)
# nor left enabled (where systemd runs).
BENCH_ONLY_SERVICES=(kresd.target kresd@1.service kres-cache-gc.service pdns-recursor.service)
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  cat >"$policy" <<'EOF'
#!/bin/sh
# HyperMesh scripts/deps.sh, during its apt-get install only: the bench's resolvers stay off.
case "$1" in kresd*|kres-cache-gc*|pdns-recursor*) exit 101 ;; esac
exit 0
EOF
  chmod 755 "$policy"
  own_policy=1
  trap 'rm -f "$policy"' EXIT
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"

if [ "$own_policy" = 1 ]; then
  rm -f "$policy"
  trap - EXIT
fi
if [ -d /run/systemd/system ]; then
  for unit in "${BENCH_ONLY_SERVICES[@]}"; do
    systemctl disable --now "$unit" >/dev/null 2>&1 || true
  done
fi
