#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer + ASan + UBSan) of the wire parsers, the
# KV service, the state-transfer payloads and the checkpoint file parser:
# selftests/fuzz_wire.c.  `make fuzz` runs this.
#
#   bash scripts/fuzz.sh            fuzz for $FUZZ_SECONDS (default 60) seconds
#   bash scripts/fuzz.sh --quick    10 seconds (for use in tests)
#   bash scripts/fuzz.sh FILE...    run the target once on each FILE (replay a crash)
#
# Everything lands in build/fuzz/: the target, the seed generator, the corpus
# (build/fuzz/corpus, kept between runs) and crash artifacts
# (build/fuzz/artifacts/).  Exits non-zero if the fuzzer found a crash, a
# leak, undefined behaviour or a broken invariant.
set -euo pipefail

cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
replay=()
for arg in "$@"; do
  case "$arg" in
    --quick) FUZZ_SECONDS=10 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz: unknown option $arg" >&2; exit 2 ;;
    *) replay+=("$arg") ;;
  esac
done

CLANG=${CLANG:-clang}
OUT=build/fuzz
CORPUS=$OUT/corpus
ARTIFACTS=$OUT/artifacts
SRCS=(user/wire.c user/crypto.c user/kv.c user/state_transfer.c user/persist.c)
CFLAGS=(-std=gnu11 -g -O1 -D_GNU_SOURCE -Wall -Wextra -Wno-missing-field-initializers
        -Iheaders -Iuser)
mkdir -p "$OUT" "$CORPUS" "$ARTIFACTS"

if ! command -v "$CLANG" >/dev/null; then
  echo "fuzz: $CLANG not found (install clang and libclang-rt-14-dev: make deps)" >&2
  exit 1
fi

# The target, instrumented for coverage and checked by ASan + UBSan (every
# UBSan report aborts, so the fuzzer sees it).
echo "fuzz: building $OUT/fuzz_wire"
if ! "$CLANG" "${CFLAGS[@]}" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
     -fno-omit-frame-pointer selftests/fuzz_wire.c "${SRCS[@]}" -lsodium \
     -o "$OUT/fuzz_wire" 2>"$OUT/build.log"; then
  cat "$OUT/build.log" >&2
  if grep -q "libclang_rt.fuzzer" "$OUT/build.log"; then
    echo "fuzz: the libFuzzer runtime is missing: apt-get install libclang-rt-14-dev" >&2
  fi
  exit 1
fi
cat "$OUT/build.log" >&2

if [ ${#replay[@]} -gt 0 ]; then
  exec "$OUT/fuzz_wire" "${replay[@]}"
fi

# The seed corpus: a few valid messages, batches, a reply, KV ops and KV
# snapshots, written by the same source built as a plain program.
"$CLANG" "${CFLAGS[@]}" -DHM_FUZZ_SEEDGEN selftests/fuzz_wire.c "${SRCS[@]}" -lsodium \
  -o "$OUT/fuzz_seedgen"
"$OUT/fuzz_seedgen" "$CORPUS"

echo "fuzz: running for ${FUZZ_SECONDS}s on $CORPUS ($(ls "$CORPUS" | wc -l) inputs)"
status=0
"$OUT/fuzz_wire" -max_total_time="$FUZZ_SECONDS" -max_len=8192 -timeout=10 \
  -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$ARTIFACTS/" \
  "$CORPUS" 2>"$OUT/fuzz.log" || status=$?
if [ "$status" -ne 0 ]; then
  tail -n 60 "$OUT/fuzz.log"
  echo "fuzz: FAILED (exit $status); full log: $OUT/fuzz.log" >&2
  echo "fuzz: artifacts in $ARTIFACTS; replay with: bash scripts/fuzz.sh $ARTIFACTS/<file>" >&2
  echo "0 passed, 1 failed"
  exit "$status"
fi
grep -aE '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::|^Done ' "$OUT/fuzz.log" || true
echo "fuzz: ok ($(grep -ao 'stat::number_of_executed_units: *[0-9]*' "$OUT/fuzz.log" | grep -o '[0-9]*$' || echo '?') executions, no crash)"
echo "1 passed, 0 failed"
