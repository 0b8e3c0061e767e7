#!/usr/bin/env bash
# The replica end-to-end suite (selftests/e2e/e2e_socket.sh) with the XDP
# dataplane: votes counted in the kernel, TC fan-out and MAC stamping.
exec env HM_E2E_DATAPLANE=xdp bash "$(dirname "$0")/e2e_socket.sh" "$@"
