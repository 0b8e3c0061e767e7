#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer + ASan + UBSan) of everything that parses
# bytes from the network or the disk:
#   wire    selftests/fuzz/fuzz_wire.c: the wire parsers, the KV service, the
#           state-transfer payloads and the checkpoint file parser
#   dns     selftests/fuzz/fuzz_dns.c: DNS queries, upstream replies and
#           canonical answers
#   link    selftests/fuzz/fuzz_link.c: sealed and compressed payloads
#   core    selftests/fuzz/fuzz_core.c: a replica's core fed the vote-log
#           records and committed batches a restart reads back, then what
#           its peers send
#   config  selftests/fuzz/fuzz_config.c: the configuration file
#   xdp-dns the XDP DNS responder's parser against the userspace one: random
#           and mutated queries through BPF_PROG_TEST_RUN
#           (selftests/dataplane/test_dns_xdp.c; not libFuzzer: a million
#           queries in quick mode, three million by default, HM_DNS_XDP_FUZZ
#           to choose)
# `make fuzz` runs this.
#
#   bash scripts/fuzz.sh            fuzz each target for $FUZZ_SECONDS (default 60) seconds
#   bash scripts/fuzz.sh --quick    10 seconds each (for use in tests)
#   bash scripts/fuzz.sh --target dns   only one target (wire, dns, link, core, config or xdp-dns)
#   bash scripts/fuzz.sh [--target T] FILE...   run a target once on each FILE (replay a crash)
#
# Everything lands in build/fuzz/: the targets, the seed generators, the
# corpora (build/fuzz/corpus for wire, build/fuzz/corpus-T for the others;
# kept between runs) and crash artifacts (build/fuzz/artifacts/).  Inputs that
# once crashed a target are kept in selftests/fuzz/regressions/ and join its
# corpus on every run.  Exits non-zero if the fuzzer found a crash, a leak,
# undefined behaviour or a broken invariant.
set -euo pipefail

cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
targets=(wire dns link core config xdp-dns)
XDP_DNS_QUERIES=${HM_DNS_XDP_FUZZ:-3000000}
replay=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) FUZZ_SECONDS=10; XDP_DNS_QUERIES=${HM_DNS_XDP_FUZZ:-1000000} ;;
    --target) shift; targets=("${1:?--target needs wire, dns, link, core, config or xdp-dns}") ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz: unknown option $1" >&2; exit 2 ;;
    *) replay+=("$1") ;;
  esac
  shift
done
if [ ${#replay[@]} -gt 0 ] && [ ${#targets[@]} -ne 1 ]; then
  targets=(wire)  # the default for replays, as before there were two targets
fi

CLANG=${CLANG:-clang}
OUT=build/fuzz
ARTIFACTS=$OUT/artifacts
CFLAGS=(-std=gnu11 -g -O1 -D_GNU_SOURCE -Wall -Wextra -Wno-missing-field-initializers
        -Iheaders -Iuser)
mkdir -p "$OUT" "$ARTIFACTS"

if ! command -v "$CLANG" >/dev/null; then
  echo "fuzz: $CLANG not found (install clang and libclang-rt-14-dev: make deps)" >&2
  exit 1
fi

# Per target: the sources it needs beside itself, its libraries, its corpus
# and the largest input worth trying.
target_setup() {
  case "$1" in
    wire) SRCS=(user/common/wire.c user/common/crypto.c user/common/sig_memo.c user/common/log.c user/common/merkle.c user/common/reply_proof.c user/service/kv/kv.c user/core/state_transfer.c user/core/persist.c user/core/persist_votes.c)
          LIBS=(-lsodium -lcrypto)
          CORPUS=$OUT/corpus; MAX_LEN=8192 ;;
    dns)  SRCS=(user/service/dns/dns_msg.c user/service/dns/dns_chain.c user/service/dns/dns_resolver.c user/service/dns/dns_service.c user/common/netprefix.c user/common/crypto.c user/common/sig_memo.c user/common/log.c user/common/wire.c user/common/merkle.c user/common/reply_proof.c)
          LIBS=(-lldns -lunbound -lsodium -lcrypto)
          CORPUS=$OUT/corpus-dns; MAX_LEN=4096 ;;
    # the link layer: sealed and compressed payloads (selftests/fuzz/fuzz_link.c)
    link) SRCS=(user/common/link_crypt.c user/common/crypto.c user/common/sig_memo.c user/common/log.c)
          LIBS=(-lsodium -lzstd)
          CORPUS=$OUT/corpus-link; MAX_LEN=8192 ;;
    # the PBFT core: what a restart reads back (vote-log records, committed
    # batches) through pbft_recover(), then peers' datagrams through
    # pbft_receive() (selftests/fuzz/fuzz_core.c)
    core) SRCS=(user/core/pbft.c user/core/pbft_auth.c user/core/pbft_fetch.c user/core/quorum.c
                user/core/pbft_state.c user/core/pbft_view.c user/core/pbft_votes.c
                user/core/state_transfer.c user/core/evidence.c user/core/persist.c
                user/core/persist_votes.c user/service/kv/kv.c
                user/common/wire.c user/common/crypto.c user/common/sig_memo.c
                user/common/log.c user/common/merkle.c user/common/reply_proof.c)
          LIBS=(-lsodium -lcrypto)
          CORPUS=$OUT/corpus-core; MAX_LEN=16384 ;;
    # the configuration file's text (selftests/fuzz/fuzz_config.c)
    config) SRCS=(user/common/config.c user/common/netprefix.c user/common/crypto.c
                  user/common/sig_memo.c user/common/log.c)
          LIBS=(-lyaml -lsodium)
          CORPUS=$OUT/corpus-config; MAX_LEN=16384 ;;
    *) echo "fuzz: unknown target $1 (wire, dns, link, core, config or xdp-dns)" >&2; exit 2 ;;
  esac
  mkdir -p "$CORPUS"
}

# Build selftests/fuzz/fuzz_T.c, instrumented for coverage and checked by ASan +
# UBSan (every UBSan report aborts, so the fuzzer sees it).
build_target() {
  local t=$1
  echo "fuzz: building $OUT/fuzz_$t"
  if ! "$CLANG" "${CFLAGS[@]}" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
       -fno-omit-frame-pointer "selftests/fuzz/fuzz_$t.c" "${SRCS[@]}" "${LIBS[@]}" \
       -o "$OUT/fuzz_$t" 2>"$OUT/build.log"; then
    cat "$OUT/build.log" >&2
    if grep -q "libclang_rt.fuzzer" "$OUT/build.log"; then
      echo "fuzz: the libFuzzer runtime is missing: apt-get install libclang-rt-14-dev" >&2
    fi
    exit 1
  fi
  cat "$OUT/build.log" >&2
}

# Seed, then fuzz one target; return its status.
run_target() {
  local t=$1 status=0 log=$OUT/fuzz-$1.log
  # The seed corpus, written by the same source built as a plain program.
  "$CLANG" "${CFLAGS[@]}" -DHM_FUZZ_SEEDGEN "selftests/fuzz/fuzz_$t.c" "${SRCS[@]}" "${LIBS[@]}" \
    -o "$OUT/fuzz_${t}_seedgen"
  "$OUT/fuzz_${t}_seedgen" "$CORPUS"
  # Inputs that once crashed a target (selftests/fuzz/regressions/T-*): run
  # first with the corpus, so a bug that comes back fails at once.
  for f in selftests/fuzz/regressions/"$t"-*; do
    [ -f "$f" ] && cp "$f" "$CORPUS/"
  done
  echo "fuzz: $t: running for ${FUZZ_SECONDS}s on $CORPUS ($(ls "$CORPUS" | wc -l) inputs)"
  "$OUT/fuzz_$t" -max_total_time="$FUZZ_SECONDS" -max_len="$MAX_LEN" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$ARTIFACTS/$t-" \
    "$CORPUS" 2>"$log" || status=$?
  if [ "$status" -ne 0 ]; then
    tail -n 60 "$log"
    echo "fuzz: $t: FAILED (exit $status); full log: $log" >&2
    echo "fuzz: artifacts in $ARTIFACTS; replay with: bash scripts/fuzz.sh --target $t $ARTIFACTS/$t-<file>" >&2
    return "$status"
  fi
  grep -aE '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::|^Done ' "$log" || true
  echo "fuzz: $t: ok ($(grep -ao 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?') executions, no crash)"
}

if [ ${#replay[@]} -gt 0 ]; then
  target_setup "${targets[0]}"
  build_target "${targets[0]}"
  exec "$OUT/fuzz_${targets[0]}" "${replay[@]}"
fi

# The XDP responder against the userspace parser, through the kernel.
run_xdp_dns() {
  local bin=build/tests/test_dns_xdp
  [ -x "$bin" ] || { echo "fuzz: xdp-dns: $bin missing (make all)" >&2; return 1; }
  echo "fuzz: xdp-dns: $XDP_DNS_QUERIES random and mutated queries through BPF_PROG_TEST_RUN"
  HM_DNS_XDP_FUZZ=$XDP_DNS_QUERIES "$bin" fuzz_against_userspace_parser
}

passed=0
failed=0
for t in "${targets[@]}"; do
  if [ "$t" = xdp-dns ]; then
    if run_xdp_dns; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    continue
  fi
  target_setup "$t"
  build_target "$t"
  if run_target "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
