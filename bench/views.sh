#!/usr/bin/env bash
# Benchmark of the live cluster views (overview, nodes, diagnostics, the event stream) on a large
# lab, kubectl on the same lab as the baseline: bench/views.py through bench/with-lab.sh (its
# header has the options and the lab's timings).
#
#   bench/views.sh [--nodes 5000] [--pods-per-node 30] [--down]
exec "$(dirname "${BASH_SOURCE[0]}")/with-lab.sh" views "$@"
