#!/usr/bin/env bash
# Run OpsConductor: install what is missing (as root), build, start the server
# in the foreground on its embedded PostgreSQL with the development config.
set -euo pipefail
cd "$(dirname "$0")"
bash packaging/install-deps.sh
cmake --preset dev -DOPSC_BUILD_TESTS=OFF >/dev/null
cmake --build --preset dev -j"$(nproc)" >/dev/null
if [[ $(id -u) -ne 0 && -z ${OPSC_SNMP_LISTEN:-} ]]; then
    # Port 162 needs root (or CAP_NET_BIND_SERVICE).
    export OPSC_SNMP_LISTEN="udp:0.0.0.0:10162,udp6:[::]:10162"
    echo "run.sh: not root: listening for SNMP traps on unprivileged port 10162 (set OPSC_SNMP_LISTEN to change)" >&2
fi
exec build/bin/opsconductord --config packaging/opsconductor.dev.yaml "$@"
