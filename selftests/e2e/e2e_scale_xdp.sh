#!/usr/bin/env bash
# e2e_scale.sh with the XDP/TC dataplane at n = 16 (f = 5) for make test:
# vote counting in XDP, node_stats and the TC fan-out's peer bitmap beyond
# the old 16-bit layout's ids are checked by e2e_scale.sh itself; the soak
# (scripts/run-tests.sh --soak) runs it at n = 31.
#
#   HM_E2E_SCALE_N=31 selftests/e2e/e2e_scale_xdp.sh
here=$(cd "$(dirname "$0")" && pwd)
HM_E2E_DATAPLANE=xdp HM_E2E_SCALE_N=${HM_E2E_SCALE_N:-16} exec bash "$here/e2e_scale.sh" "$@"
