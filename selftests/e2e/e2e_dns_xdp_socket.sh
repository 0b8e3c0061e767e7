#!/usr/bin/env bash
# selftests/e2e/e2e_dns_xdp.sh with the socket dataplane: the DNS responder
# attached alone (no hm_xdp to tail-call it).
HM_E2E_DATAPLANE=socket exec bash "$(dirname "$0")/e2e_dns_xdp.sh" "$@"
