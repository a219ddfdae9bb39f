#!/usr/bin/env bash
# The spool journal end to end: PostgreSQL stopped while traps flow (INFORMs are still
# answered, nothing lost or doubled once it is back), and kill -9 with the database down
# (only the journal holds the changes) and with it up. Real snmptrap/snmpinform, real server.
source "$(dirname "$0")/lib.sh"
command -v snmptrap >/dev/null || fail "snmptrap not installed (apt-get install snmp)"

# Names by reverse DNS add 'updated' history rows of their own (test_names);
# here every history row is counted, so they stay out.
ext_server_config "  communities: public
dns:
  cache_ttl: 0"
PGDATA_EXT="$EXT_PG/data"
PGSOCK="$EXT_PG"
T="127.0.0.1:$TRAP_PORT"
SPOOL="$TMP/data/spool"

pg_down() { as_pg_user pg_ctl -D "$PGDATA_EXT" -m fast -w -t 30 stop >/dev/null; }
pg_up() {
    as_pg_user pg_ctl -D "$PGDATA_EXT" -l "$EXT_PG/pg.log" -w -t 60 \
        -o "-k $PGSOCK -c listen_addresses= -c fsync=off" start >/dev/null ||
        fail "pg_ctl start: $(tail -n 5 "$EXT_PG/pg.log")"
}
IFX=1.3.6.1.2.1.2.2.1
down_trap() { # IFINDEX
    snmptrap -Ln -v 2c -c public "$T" '' 1.3.6.1.6.3.1.1.5.3 $IFX.1.$1 i "$1" $IFX.7.$1 i 1 $IFX.8.$1 i 2
}
down_inform() { # IFINDEX: succeeds only when answered
    timeout 20 snmpinform -Ln -t 3 -r 2 -v 2c -c public "$T" '' 1.3.6.1.6.3.1.1.5.3 \
        $IFX.1.$1 i "$1" $IFX.7.$1 i 1 $IFX.8.$1 i 2
}
segments() { find "$SPOOL" -name '*.seg' 2>/dev/null | wc -l; }
# No alert, no history row twice: one row per fingerprint among the open ones, and no
# (alert, action, old, new) history row repeated.
no_doubles() {
    local d
    d=$(q "SELECT count(*) FROM (SELECT fingerprint FROM alerts WHERE status IN ('active','suppressed') GROUP BY 1 HAVING count(*) > 1) x")
    [[ $d == 0 ]] || fail "$1: $d fingerprints with more than one open alert"
    d=$(q "SELECT count(*) FROM (SELECT alert_id, action, old_status, new_status FROM alert_history GROUP BY 1,2,3,4 HAVING count(*) > 1) x")
    [[ $d == 0 ]] || fail "$1: $d history rows doubled"
}

start_server 60
ok "server ready with its journal in $SPOOL"

# ---- (a) database outage while traps flow -----------------------------------------
# 10 interfaces (ifIndex 100..109), 3 rounds each: before, during and after the outage.
round() { for i in $(seq 100 109); do down_trap "$i"; done; }
round
wait_q "SELECT count(*) || ' ' || sum(occurrence_count) FROM alerts WHERE alert_type = 'link_down'" "10 10" 20 ||
    fail "first round not stored"
pg_down
ok "PostgreSQL stopped"
round
# INFORMs keep being answered: the journal is the durability point while the database is away.
for i in 200 201 202; do
    down_inform "$i" || fail "INFORM $i not answered while PostgreSQL is down"
done
ok "3 INFORMs answered while PostgreSQL is down"
round
pg_up
ok "PostgreSQL started again"
wait_q "SELECT count(*) || ' ' || sum(occurrence_count) FROM alerts WHERE alert_type = 'link_down'" "13 33" 60 ||
    { tail -n 20 "$TMP/server.log"; fail "after the outage: expected 13 alerts, 33 occurrences"; }
wait_q "SELECT string_agg(occurrence_count::text, ',' ORDER BY occurrence_count) FROM alerts WHERE alert_type = 'link_down'" \
    "1,1,1,3,3,3,3,3,3,3,3,3,3" 10 || fail "per-alert counts after the outage"
no_doubles "outage"
hist=$(q "SELECT count(*) FROM alert_history h JOIN alerts a ON a.id = h.alert_id WHERE a.alert_type = 'link_down'")
[[ $hist == 13 ]] || fail "history rows after the outage: $hist, expected 13 (one per alert)"
ok "outage: every event present exactly once (13 alerts, occurrence_count sum 33, 13 history rows)"
# Everything is in the database: the journal is truncated to (at most) the segment in use.
for _ in $(seq 1 50); do (($(segments) <= 1)) && break; sleep 0.1; done
(($(segments) <= 1)) || fail "journal not truncated after the outage: $(segments) segments"
ok "journal truncated once the database had everything"

# ---- (b) kill -9 while only the journal holds the changes ----------------------------
pg_down
for i in 300 301 302 303 304; do
    down_inform "$i" || fail "INFORM $i not answered (PostgreSQL down)"
done
kill -9 "$SERVER"
wait_exit "$SERVER" 10 || fail "server did not die"
(($(segments) >= 1)) || fail "no journal segment after kill -9"
ok "5 INFORMs answered with PostgreSQL down, then kill -9 ($(segments) journal segments left)"
pg_up
start_server 60
# ready means the replay finished: the rows must be there at once, not eventually.
got=$(q "SELECT count(*) || ' ' || sum(occurrence_count) FROM alerts WHERE alert_type = 'link_down'")
[[ $got == "18 38" ]] || fail "after the restart: $got, expected 18 alerts with 38 occurrences"
no_doubles "kill -9 with PostgreSQL down"
grep -q "journal replayed" "$TMP/server.log" || fail "no replay logged"
for _ in $(seq 1 50); do (($(segments) == 0)) && break; sleep 0.1; done
(($(segments) == 0)) || fail "journal not truncated after the replay: $(ls "$SPOOL")"
replayed=$(metric opsc_spool_replayed_total)
((replayed >= 5)) || fail "opsc_spool_replayed_total = $replayed"
ok "restart replayed the journal ($replayed records): all 5 alerts exactly once, journal truncated"

# ---- (c) kill -9 with the database up, mid-stream --------------------------------------
for r in 1 2 3 4; do for i in 400 401 402 403 404; do down_trap "$i"; done; done
kill -9 "$SERVER"
wait_exit "$SERVER" 10 || fail "server did not die"
start_server 60
sleep 1
wait_q "SELECT count(*) FROM alerts WHERE alert_type = 'link_down' AND status = 'active'" "23" 20 ||
    fail "kill -9 mid-stream: expected 23 open link_down alerts"
no_doubles "kill -9 mid-stream"
n=$(q "SELECT coalesce(max(occurrence_count), 0) FROM alerts WHERE alert_type = 'link_down' AND occurrence_count > 3")
((n <= 4)) || fail "an interface counted $n times from 4 traps"
ok "kill -9 mid-stream with PostgreSQL up: nothing duplicated after the restart"

kill -TERM "$SERVER"
wait_exit "$SERVER" 30 || fail "no clean exit"
[[ $EXIT_STATUS == 0 ]] || fail "exit status $EXIT_STATUS"
ok "clean shutdown"
