#!/usr/bin/env bash
# The test CT log (selftests/service/ct/ct_log/ct_log.py) read by an independent client:
# Debian's certspotter monitor, pointed at a local log list that names the
# test log.  On loopback, no namespace needed (nothing but the two processes
# talk).
#
#   1. the factory issues certificates (two precertificates with embedded
#      SCTs and one plain certificate) into log A; certspotter downloads the
#      log, verifies the entries against the signed tree head and reports
#      every certificate of the watched domain, with no error;
#   2. the log signs a new tree head with a key that is not its own;
#      certspotter refuses it;
#   3. the log is told to fork (rewrite its history); certspotter, resuming
#      from its verified state, refuses the new tree head.
#
# Needs python3-cryptography, certspotter, jq, curl.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=selftests/e2e/lib/assert.sh
source "$here/lib/assert.sh"

py=/usr/bin/python3
tools=$here/../service/ct/ct_log
dir=$(mktemp -d "/tmp/hm-ct-e2e-$$-XXXXXX")
pids=()

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  [ -n "${HM_KEEP:-}" ] && echo "kept $dir" || rm -rf "$dir"
}
trap cleanup EXIT

for t in certspotter jq curl; do
  command -v "$t" >/dev/null || { fail "$t is not installed (scripts/deps.sh)"; finish; exit 1; }
done

start_log() { # NAME: start log NAME with its key; its URL in url_NAME
  "$py" "$tools/ct_log.py" --key "$dir/$1.key.pem" --roots "$dir/root.pem" \
    --port-file "$dir/$1.port" >"$dir/$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$dir/$1.port" ] && break; sleep 0.1; done
  printf -v "url_$1" "http://127.0.0.1:%s" "$(cat "$dir/$1.port" 2>/dev/null)"
}

# wait_for SECONDS CMD...: poll CMD until it succeeds
wait_for() {
  local n=$(($1 * 5)); shift
  for _ in $(seq "$n"); do "$@" && return 0; sleep 0.2; done
  return 1
}

"$py" "$tools/certfactory.py" init "$dir" || { fail "certfactory init"; finish; exit 1; }
start_log log_a
start_log log_b
url_a=$url_log_a url_b=$url_log_b
check "certfactory issues certificates into the test logs" \
  "$py" "$tools/certfactory.py" issue "$dir" --log-a "$url_a" --log-b "$url_b"

# A log list in the format certspotter reads (Chrome's v3 schema).
"$py" - "$dir" "$url_a" <<'EOF'
import base64, hashlib, json, sys
from cryptography.hazmat.primitives import serialization
d, url = sys.argv[1], sys.argv[2]
with open(f"{d}/log_a.pub.pem", "rb") as f:
    der = serialization.load_pem_public_key(f.read()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
log = {"description": "HyperMesh test log A", "url": url + "/", "mmd": 86400,
       "key": base64.b64encode(der).decode(),
       "log_id": base64.b64encode(hashlib.sha256(der).digest()).decode(),
       "state": {"usable": {"timestamp": "2024-01-01T00:00:00Z"}}}
with open(f"{d}/loglist.json", "w") as f:
    json.dump({"version": "1", "operators": [{"name": "HyperMesh test", "email": ["ct@hypermesh.test"],
                                              "logs": [log]}]}, f)
EOF
echo ".hypermesh.test" > "$dir/watchlist"
mkdir -p "$dir/state"

# run_certspotter TAG: run it in the background, output in $dir/cs.TAG.{out,err}
run_certspotter() {
  certspotter -logs "$dir/loglist.json" -state_dir "$dir/state" -watchlist "$dir/watchlist" \
    -stdout -verbose >"$dir/cs.$1.out" 2>"$dir/cs.$1.err" &
  cs_pid=$!
  pids+=("$cs_pid")
}
stop_certspotter() { kill "$cs_pid" 2>/dev/null; wait "$cs_pid" 2>/dev/null; }

state_file() { ls "$dir"/state/logs/*/state.json 2>/dev/null | head -1; }
verified_size() { local f; f=$(state_file); [ -n "$f" ] && jq -r '.verified_sth.tree_size // 0' "$f"; }
verified_size_is() { [ "$(verified_size)" == "$1" ]; }

sth=$(curl -s "$url_a/ct/v1/get-sth")
size=$(jq -r .tree_size <<<"$sth")
root=$(jq -r .sha256_root_hash <<<"$sth")
check_eq "log A holds the three certificates" "$size" 3

# 1. the whole log read and verified
run_certspotter first
check "certspotter verifies log A up to its tree head" wait_for 20 verified_size_is "$size"
stop_certspotter
check_eq "the tree head certspotter verified is the log's" \
  "$(jq -r .verified_sth.sha256_root_hash "$(state_file)")" "$root"
for name in valid bad-sct no-sct; do
  check "certspotter found $name.hypermesh.test" grep -q "DNS Name = $name.hypermesh.test" "$dir/cs.first.out"
done
# (its shutdown on our SIGTERM says "stopped with error context canceled": not a finding)
check "certspotter reported no error" bash -c \
  "! grep -hEi 'error|unable|invalid' '$dir/cs.first.err' '$dir/cs.first.out' | grep -v 'context canceled'"
no_malformed() { [ -z "$(ls -A "$(dirname "$(state_file)")/malformed_entries" 2>/dev/null)" ]; }
check "certspotter found no malformed entry" no_malformed

# 2. the log signs a new tree head with a key that is not its own: refused
check "log A signs with a wrong key" curl -sf -X POST -d '{"mode": "wrong-key"}' "$url_a/ct/test/misbehave" -o /dev/null
# one more entry (the intermediate, add-chain), so there is a new tree head to sign
"$py" - "$dir" "$url_a" <<'EOF2'
import base64, json, sys, urllib.request
from cryptography import x509
from cryptography.hazmat.primitives import serialization
d, url = sys.argv[1], sys.argv[2]
chain = [base64.b64encode(x509.load_pem_x509_certificate(open(f"{d}/{n}.pem", "rb").read())
                          .public_bytes(serialization.Encoding.DER)).decode() for n in ("int", "root")]
req = urllib.request.Request(url + "/ct/v1/add-chain", data=json.dumps({"chain": chain}).encode())
urllib.request.urlopen(req, timeout=10).read()
EOF2
run_certspotter wrongkey
check "certspotter refuses the badly signed tree head" \
  wait_for 20 grep -q "has invalid signature" "$dir/cs.wrongkey.err"
stop_certspotter
check_eq "its verified tree head is still the first" \
  "$(jq -r .verified_sth.sha256_root_hash "$(state_file)")" "$root"
check "log A signs with its key again" curl -sf -X POST -d '{"mode": "none"}' "$url_a/ct/test/misbehave" -o /dev/null

# 3. the log forks: certspotter refuses the second view
check "log A forks" curl -sf -X POST -d '{"mode": "fork"}' "$url_a/ct/test/misbehave" -o /dev/null
run_certspotter fork
check "certspotter refuses the forked tree head" \
  wait_for 20 grep -q "does not match the entries returned by the log" "$dir/cs.fork.err"
stop_certspotter
check_eq "its verified tree head is still the first view" \
  "$(jq -r .verified_sth.sha256_root_hash "$(state_file)")" "$root"

finish
