#!/usr/bin/env bash
# selftests/e2e/e2e_dns_cluster.sh with the XDP dataplane: the replicas' own
# observation clients share the replica's address, so this also checks that
# the TC program leaves their MACs alone.
HM_E2E_DATAPLANE=xdp exec bash "$(dirname "$0")/e2e_dns_cluster.sh" "$@"
