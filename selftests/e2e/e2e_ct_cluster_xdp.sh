#!/usr/bin/env bash
# The CT cluster suite (selftests/e2e/e2e_ct_cluster.sh) with the XDP dataplane.
exec env HM_E2E_DATAPLANE=xdp bash "$(dirname "$0")/e2e_ct_cluster.sh" "$@"
