#!/usr/bin/env bash
# Benchmark of the IPAM page (issue 20: `calicoctl ipam check` from the watches) on a large lab
# whose pods each got their address from Calico's IPAM: bench/ipam.py through
# bench/with-lab.sh (its header has the options and the lab's timings). calicoctl cannot be
# built here, so the baseline is kubectl fetching what the check reads.
#
#   bench/ipam.sh [--nodes 5000] [--pods-per-node 30] [--down]
exec "$(dirname "${BASH_SOURCE[0]}")/with-lab.sh" ipam "$@"
