#!/usr/bin/env bash
# selftests/e2e/e2e_restarts.sh with the XDP dataplane.
HM_E2E_DATAPLANE=xdp exec bash "$(dirname "$0")/e2e_restarts.sh" "$@"
