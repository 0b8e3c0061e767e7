#!/usr/bin/env bash
# Certificate Transparency verdicts from a real cluster: 4 hypermeshd
# replicas (socket dataplane by default) with a ct: section, the test logs
# of selftests/service/ct/ct_log running in the client namespace (198.18.0.200), the
# factory's certificates checked with `hmctl cert check`, and verdict
# certificates checked offline with `hmctl verify`.
#
#   selftests/e2e/e2e_ct_cluster.sh          the suite (part of make test)
#   HM_E2E_DATAPLANE=socket|xdp          the dataplane (default socket)
#
# Replica 3 is stopped while the log grows and the cluster moves to a newer
# STH (2f+1 live replicas still certify), then started and must catch up;
# the log forks last and stays forked.
#
# Needs python3-cryptography, curl, jq, openssl.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=selftests/e2e/lib/services.sh
source "$here/lib/services.sh"

dataplane=${HM_E2E_DATAPLANE:-socket}
hmctl="$repo/build/hmctl"
dir=$(mktemp -d "/tmp/hm-ctc-$$-XXXXXX")   # the cluster
ctd=$(mktemp -d "/tmp/hm-ctd-$$-XXXXXX")   # CAs, log keys, certificates

cluster() { bash "$repo/scripts/cluster.sh" --dir "$dir" "$@"; }
cleanup() {
  ct_logs_stop
  cluster down >/dev/null 2>&1
  if [ -n "${HM_KEEP:-}" ]; then echo "kept $dir $ctd"; else rm -rf "$dir" "$ctd"; fi
}
trap cleanup EXIT INT TERM

for t in curl jq openssl; do
  command -v "$t" >/dev/null || give_up "$t is not installed (scripts/deps.sh)"
done

status() { "$hmctl" status --socket "$dir/replica-$1/control.sock" | jq -r "$2"; }

# ---- setup ------------------------------------------------------------------

ct_factory_init "$ctd" || give_up "certfactory init"
log_addr=198.18.0.200
ct_fragment "$ctd" "http://$log_addr:8080" >"$ctd/ct.yaml"

echo "# 4 replicas ($dataplane dataplane) with a ct: section; test logs in the client namespace"
cluster up -n 4 --clients 4 --dataplane "$dataplane" --config-fragment "$ctd/ct.yaml" >/dev/null ||
  give_up "cluster up"
# shellcheck source=/dev/null
. "$dir/state.env"

check "log A listens in the client namespace" ct_log_start "$ctd" log_a "$log_addr" 8080
check "log B listens in the client namespace" ct_log_start "$ctd" log_b "$log_addr" 8081
url_a=http://$log_addr:8080 url_b=http://$log_addr:8081
in_client() { ip netns exec "$HM_CLIENT_NS" "$@"; }
misbehave() { in_client curl -sf -X POST -d "{\"mode\": \"$1\"}" "$url_a/ct/test/misbehave" -o /dev/null; }

# An entry before the factory's, so the fork below (which rewrites entry 0)
# leaves the valid certificate in place and is caught by consistency alone.
der_b64() { openssl x509 -in "$1" -outform DER | base64 -w0; }
check "log A takes a first entry" in_client curl -sf -o /dev/null -d \
  "{\"chain\": [\"$(der_b64 "$ctd/int.pem")\", \"$(der_b64 "$ctd/root.pem")\"]}" "$url_a/ct/v1/add-chain"
check "the factory issues certificates into the logs" ct_factory_issue "$ctd" "$url_a" "$url_b"
# The agreed time has a resolution of one second and SCTs are in ms: a check
# in the second of issuance would rightly find the SCT dated in the future.
sleep 1

# cert_check NAME [ARGS...]: run hmctl cert check on NAME.chain.pem; output in $out, status in $rc
cert_check() {
  local f=$1; shift
  [ -f "$f" ] || f="$ctd/$f.chain.pem"
  out=$(cluster exec hmctl cert check "$f" "$@" 2>"$ctd/stderr")
  rc=$?
}
verdict() { sed -n 's/^verdict: //p' <<<"$out"; }

# ---- verdicts -----------------------------------------------------------------

echo "# verdicts"
cert_check valid
check_eq "valid chain with log A's SCT and inclusion: ok" "$(verdict)" ok
[ "$(verdict)" = ok ] || { echo "$out"; cat "$ctd/stderr"; }
check_eq "  exit status 0" "$rc" 0
check "  from f+1 or more matching replies" grep -qE '^replicas: [234] matching' <<<"$out"
size_first=$(sed -n 's/^tree_size: //p' <<<"$out")
check_ge "  checked against a tree head holding the certificates" "${size_first:-0}" 4

cert_check unknown_log
check_eq "SCT from a log the cluster does not know: sct-unknown-log" "$(verdict)" sct-unknown-log
check_eq "  exit status 3 for a verdict other than ok" "$rc" 3
cert_check bad_sct
check_eq "SCT with a changed signature byte: sct-bad-signature" "$(verdict)" sct-bad-signature
cert_check no_sct
check_eq "no SCT at all: sct-missing" "$(verdict)" sct-missing

# The same chain as DER certificates, leaf first.
awk -v d="$ctd" '/BEGIN CERT/{n++} {print > (d "/part" n ".pem")}' "$ctd/valid.chain.pem"
for p in "$ctd"/part*.pem; do openssl x509 -in "$p" -outform DER; done >"$ctd/valid.chain.der"
cert_check "$ctd/valid.chain.der"
check_eq "the valid chain as DER: ok" "$(verdict)" ok

printf 'not a certificate\n' >"$ctd/garbage.pem"
cert_check "$ctd/garbage.pem"
check_eq "garbage is refused by the client before the cluster sees it" "$rc" 1

echo "# a log that misbehaves"
check "log A serves altered inclusion proofs" misbehave bad-proof
cert_check valid
check_eq "bad inclusion proof: inclusion-failed" "$(verdict)" inclusion-failed
check "log A behaves again" misbehave none
cert_check valid
check_eq "  and the valid chain is ok again" "$(verdict)" ok

echo "# verdict certificates"
cert_check valid --cert --out "$ctd/cert.json"
check_eq "--cert: verdict ok" "$(verdict)" ok
check_eq "  with 2f+1 or more signed replies in the certificate" \
  "$(jq '.replies | length >= 3' "$ctd/cert.json")" true
check_eq "  each a signature over the batch root, which the path binds to the verdict" \
  "$(jq '(.replies | all(keys == ["replica", "signature"])) and (.batch.root | length) == 64' \
    "$ctd/cert.json")" true
check "hmctl verify accepts it" cluster exec hmctl verify "$ctd/cert.json" >/dev/null
cluster exec hmctl verify "$ctd/cert.json" >"$ctd/verify.out" 2>&1
check "  and prints the verdict" grep -q '^verdict: ok' "$ctd/verify.out"
cert_check valid --cert
check "--cert without --out prints the certificate on stdout" jq -e '.replies | length >= 3' <<<"$out" >/dev/null

# refused CERT JQ-FILTER: a certificate changed by the filter must be refused
refused() {
  jq "$2" "$ctd/cert.json" >"$ctd/bad.json" || return 1
  if cluster exec hmctl verify "$ctd/bad.json" >"$ctd/verify.out" 2>&1; then
    echo "accepted: $1"; return 1
  fi
  grep -q refused "$ctd/verify.out"
}
flip_hex() { # jq: change the first hex digit of a string
  echo 'def flip: (.[0:1] | if . == "0" then "1" else "0" end) + .[1:];'
}
check "one signature altered: refused" refused sig "$(flip_hex) .replies[0].signature |= flip"
check "the batch root altered: refused" refused root "$(flip_hex) .batch.root |= flip"
check "another batch size: refused" refused size '.batch.size += 1'
check "another exec_seq (the root signed for another seq): refused" refused seq '.exec_seq += 1'
check "only 2f entries: refused" refused short '.replies |= .[0:2]'
check "the same replica twice: refused" refused dup '.replies |= (.[0:2] + [.[0]])'
check "a replica id outside the cluster: refused" refused id '.replies[0].replica = 4'
check "another replica's id on an entry: refused" refused swap \
  '.replies[0].replica = .replies[1].replica'
check "the verdict altered: refused" refused verdict "$(flip_hex) .verdict |= (.[0:20] + (.[20:] | flip))"
check "a summary that lies: refused" refused summary '.summary.result = "sct-missing"'

# An entry signed by a key that is not a member's, over the very same batch
# statement: "HMRB", replica, exec_seq, batch size, root (docs/wire-format.md).
openssl genpkey -algorithm ed25519 -out "$ctd/outsider.pem" 2>/dev/null
field() { jq -r "$1" "$ctd/cert.json"; }
statement=$(printf '484d5242%08x%016x%08x%s' "$(field '.replies[0].replica')" "$(field .exec_seq)" \
  "$(field .batch.size)" "$(field .batch.root)")
xxd -r -p <<<"$statement" >"$ctd/statement.bin"
check_eq "the statement is 52 bytes" "$(stat -c %s "$ctd/statement.bin")" 52
sig=$(openssl pkeyutl -sign -rawin -inkey "$ctd/outsider.pem" -in "$ctd/statement.bin" | xxd -p -c 256)
check_eq "the outsider's signature is an Ed25519 signature" "${#sig}" 128
check "an entry signed by a non-member key: refused" refused outsider ".replies[0].signature = \"$sig\""

echo "# one replica down: 2f+1 = 3 still certify, and the log grows meanwhile"
check "replica 3 stops" cluster stop 3 >/dev/null
check "log A takes another entry" in_client curl -sf -o /dev/null -d \
  "{\"chain\": [\"$(der_b64 "$ctd/root.pem")\"]}" "$url_a/ct/v1/add-chain"
cert_check valid --cert --out "$ctd/cert3.json"
check_eq "the valid chain from the three live replicas: ok" "$(verdict)" ok
check_ge "  against the grown tree (a consistency proof moved the cluster's STH)" \
  "$(sed -n 's/^tree_size: //p' <<<"$out")" "$((size_first + 1))"
check_eq "  certified by replicas 0, 1 and 2" "$(jq -c '[.replies[].replica] | sort' "$ctd/cert3.json")" \
  "[0,1,2]"
check "  and hmctl verify accepts it" cluster exec hmctl verify "$ctd/cert3.json" >/dev/null

echo "# replica 3 back: it catches up on the STH it missed"
check "replica 3 starts again" cluster start 3 >/dev/null
cert_check valid
check_eq "a check with all four replicas: ok" "$(verdict)" ok
check_eq "every replica holds the same state digest" "$(settled_digests 0 1 2 3 | wc -l)" 1

echo "# concurrent checks while the log grows"
# Four clients at once: each reads the cluster's STH, fetches a consistency
# proof from it and submits; the first to commit moves the STH, so the others
# hold stale evidence and must fetch again (hmctl retries) to get ok.
check "log A takes another entry" in_client curl -sf -o /dev/null -d \
  "{\"chain\": [\"$(der_b64 "$ctd/part1.pem")\", \"$(der_b64 "$ctd/int.pem")\"]}" \
  "$url_a/ct/v1/add-chain"
cpids=()
for id in 100 101 102 103; do
  cluster exec hmctl -c "$dir/client-$id.yaml" cert check "$ctd/valid.chain.pem" \
    >"$ctd/conc.$id.out" 2>"$ctd/conc.$id.err" &
  cpids+=($!)
done
for p in "${cpids[@]}"; do wait "$p"; done
for id in 100 101 102 103; do
  check_eq "client $id: ok" "$(sed -n 's/^verdict: //p' "$ctd/conc.$id.out")" ok
done
echo "# ($(cat "$ctd"/conc.*.err | grep -c 'stale evidence') retries after stale evidence)"

echo "# a log that forks"
check "log A forks" misbehave fork
cert_check valid
check_eq "a tree head inconsistent with the one the cluster holds: sth-inconsistent" \
  "$(verdict)" sth-inconsistent
check "log A behaves again (its history stays forked)" misbehave none
cert_check valid
check_eq "  the cluster keeps the first view: still sth-inconsistent" "$(verdict)" sth-inconsistent

echo "# replicated state"
check_eq "every replica holds the same state digest" "$(settled_digests 0 1 2 3 | wc -l)" 1
check_eq "all 4 replicas are still running" \
  "$(cluster status | grep -c running)" 4

finish
