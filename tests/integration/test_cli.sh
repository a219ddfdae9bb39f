#!/usr/bin/env bash
# Command line and configuration errors: exit 2 with one line naming the key.
source "$(dirname "$0")/lib.sh"

# Captured first: `cmd | grep -q` under pipefail fails when grep exits before cmd is done.
out=$("$BIN" --version); [[ $out == "opsconductord "[0-9]* ]] || fail "--version"
out=$("$BIN" --help); [[ $out == *--check-config* ]] || fail "--help"
out=$("$BIN" --help-config); [[ $out == *OPSC_DATABASE_URL* && $out == *OPSC_SNMP_V3_USERS* ]] || fail "--help-config"
ok "--version, --help, --help-config"
# The README's configuration reference is --help-config's table, row for row.
diff <(grep '^| `' <<<"$out") <(grep -E '^\| `[a-z0-9_.]+` \| `OPSC_' "$TEST_OPSC_SOURCE_DIR/README.md") >"$TMP/readme.diff" ||
    { cat "$TMP/readme.diff"; fail "README's configuration table differs from --help-config"; }
ok "README's configuration table is --help-config's"

expect_config_error() { # name key file-or-empty [env...]
    local name=$1 key=$2 conf=$3; shift 3
    set +e
    if [[ -n $conf ]]; then env "$@" "$BIN" --config "$conf" >"$TMP/out" 2>"$TMP/err"
    else env "$@" "$BIN" --check-config >"$TMP/out" 2>"$TMP/err"; fi
    local rc=$?
    set -e
    [[ $rc -eq 2 ]] || { cat "$TMP/err"; fail "$name: exit $rc, expected 2"; }
    [[ $(wc -l <"$TMP/err") -eq 1 ]] || { cat "$TMP/err"; fail "$name: not one line"; }
    grep -q -- "$key" "$TMP/err" || { cat "$TMP/err"; fail "$name: does not name $key"; }
    ok "$name: exit 2: $(cat "$TMP/err")"
}

printf 'database:\n  readers: lots\n' >"$TMP/bad1.yaml"
expect_config_error "bad integer in file" "database.readers" "$TMP/bad1.yaml"
grep -q "bad1.yaml:2" "$TMP/err" || fail "file:line missing"
printf 'log:\n  level: loud\n' >"$TMP/bad2.yaml"
expect_config_error "bad enum in file" "log.level" "$TMP/bad2.yaml"
printf 'http:\n  listen: nowhere\n' >"$TMP/bad3.yaml"
expect_config_error "bad listen address" "http.listen" "$TMP/bad3.yaml"
printf 'databse:\n  url: x\n' >"$TMP/bad4.yaml"
expect_config_error "unknown key" "databse" "$TMP/bad4.yaml"
printf 'log: [\n' >"$TMP/bad5.yaml"
expect_config_error "YAML syntax" "bad5.yaml" "$TMP/bad5.yaml"
expect_config_error "missing file" "nonexistent.yaml" "$TMP/nonexistent.yaml"
expect_config_error "bad env value" "OPSC_SHUTDOWN_TIMEOUT" "" OPSC_SHUTDOWN_TIMEOUT=soon
expect_config_error "env out of range" "database.readers" "" OPSC_DATABASE_READERS=1000
expect_config_error "bad expiry override" "correlation.expire_after_by_category" "" \
    OPSC_CORRELATION_EXPIRE_AFTER_BY_CATEGORY=weather=1h

# Nothing was started by any of them.
[[ ! -e $TMP/var ]] || fail "a bad config created the data dir"

OPSC_LOG_LEVEL=debug OPSC_DATABASE_URL=postgresql://u:secret@h/db "$BIN" --check-config >"$TMP/out"
grep -q 'log.level = debug' "$TMP/out" || fail "--check-config does not show env override"
grep -q secret "$TMP/out" && fail "--check-config printed a secret"
ok "--check-config shows effective values, masks secrets"

set +e
"$BIN" --bogus >/dev/null 2>"$TMP/err"; rc=$?
set -e
[[ $rc -eq 2 ]] || fail "unknown option: exit $rc"
ok "unknown option: exit 2"
echo "all passed"
