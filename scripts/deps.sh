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
  # make bench: dnsperf against a replica and against plain Unbound (scripts/bench_dns.sh)
  dnsperf unbound
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

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
