#!/usr/bin/env bash
# The one list of Debian packages OpsConductor needs. Installs what is missing
# when run as root (apt-get update first); otherwise says what to install.
#   install-deps.sh          build + run
#   install-deps.sh --test   build + run + test suite
set -euo pipefail

BUILD=(gcc libc6-dev make cmake pkg-config)
LIBS=(libuv1-dev libpq-dev libc-ares-dev libmbedtls-dev uuid-dev libjansson-dev libfyaml-dev
      libsnmp-dev node-llhttp)
RUNTIME=(postgresql-15 postgresql-client-15)
# clang + libclang-rt-14-dev: the libFuzzer targets (libFuzzer and the sanitizer
# runtimes are in libclang-rt-14-dev, only Recommended by clang-14).
# openssl + python3: tests/integration/test_http.sh (throwaway certificate, s_client, raw sockets).
# prometheus-alertmanager: tests/integration/test_alertmanager.sh (a real webhook sender).
TEST=(libcmocka-dev curl procps snmp clang libclang-rt-14-dev dnsmasq-base openssl python3 python3-websockets
      prometheus-alertmanager)

want=("${BUILD[@]}" "${LIBS[@]}" "${RUNTIME[@]}")
[[ ${1:-} == --test ]] && want+=("${TEST[@]}")

missing=()
for p in "${want[@]}"; do
    if [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) != "install ok installed" ]]; then
        missing+=("$p")
    fi
done

# PostgreSQL refuses to run as root, so the server runs it as the unprivileged
# `postgres` user, which must be able to traverse "/". A root directory of mode
# 0700 (a chroot unpacked into a mktemp directory has one) stops every
# non-root user; no real system wants that, so open it for traversal.
if [[ $(id -u) -eq 0 ]] && (( ($(stat -c '%#a' /) & 0001) == 0 )); then
    echo "install-deps: / is mode $(stat -c %a /): adding o+x so unprivileged users (postgres) can reach files" >&2
    chmod o+x /
fi

[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
    echo "missing Debian packages: ${missing[*]}" >&2
    echo "install them as root: apt-get install ${missing[*]}" >&2
    exit 1
fi

echo "installing: ${missing[*]}" >&2
# OpsConductor runs its own PostgreSQL cluster; keep the package from creating
# and starting a system-wide one when it is installed for the first time.
if ! dpkg-query -W -f='${Status}' postgresql-common 2>/dev/null | grep -q "ok installed"; then
    mkdir -p /etc/postgresql-common
    [[ -e /etc/postgresql-common/createcluster.conf ]] ||
        echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >&2
