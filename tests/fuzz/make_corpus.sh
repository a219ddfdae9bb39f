#!/usr/bin/env bash
# Regenerate the SNMP seed corpus (tests/fuzz/corpus/snmp/) from net-snmp's
# real clients: each file is one datagram exactly as snmptrap / snmpinform
# put it on the wire, captured on a loopback UDP socket.
#
# The v3 users, engine IDs and passphrases are the ones fuzz_snmp_decode.c
# configures, so the authenticated seeds decode all the way through:
#   trap engine 0x8000000001020304: fuzzauth (SHA, authNoPriv),
#                                   fuzzpriv (SHA/AES-128, authPriv)
#                                   fuzznoauth (noAuthNoPriv)
#   our engine  0x80001f88056f70736366757a7a3031: fuzzinform (SHA/AES-128)
# A v3 INFORM needs an authoritative engine that answers (discovery, then a
# notInTimeWindow Report carrying boots/time): snmptrapd plays it, with our
# engine ID and boots 1, behind a recording proxy. The INFORM that snmptrapd
# accepts carries an engine time of a second or two: the fuzzer's decoder
# (boots 1, time from its start) accepts it during its first ~150 s.
#
# Needs: snmp (snmptrap, snmpinform), snmptrapd, python3. Dev tool, not CI.
set -euo pipefail
cd "$(dirname "$0")"
out=corpus/snmp
mkdir -p "$out"
rm -f "$out"/*.bin

exec python3 - "$out" <<'PY'
import os, shutil, socket, subprocess, sys, tempfile, time

OUT = sys.argv[1]
TRAP_ENGINE = "0x8000000001020304"
OUR_ENGINE = "0x80001f88056f70736366757a7a3031"
tmp = tempfile.mkdtemp(prefix="opsc_corpus_")
for sub in ("conf", "persist", "trapd"):
    os.mkdir(os.path.join(tmp, sub))
ENV = {"SNMPCONFPATH": tmp + "/conf", "SNMP_PERSISTENT_DIR": tmp + "/persist", "HOME": tmp,
       "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MIBS": ""}

def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s

def save(name, data):
    with open(os.path.join(OUT, name + ".bin"), "wb") as f:
        f.write(data)
    print("%-28s %4d bytes" % (name, len(data)))

def capture(name, argv):
    """Run a client against our socket; keep the first datagram it sends."""
    s = udp()
    target = "127.0.0.1:%d" % s.getsockname()[1]
    p = subprocess.Popen([a.replace("@", target) for a in argv], env=ENV,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    s.settimeout(5)
    try:
        data, _ = s.recvfrom(65535)
    finally:
        p.kill()
        p.wait()
        s.close()
    save(name, data)

def trap(name, version, args, community="public"):
    capture(name, ["snmptrap", "-Ln", "-v", version, "-c", community, "@"] + args)

def v3(name, user, level, auth=None, priv=None, engine=TRAP_ENGINE, oid="1.3.6.1.6.3.1.1.5.3",
       extra=()):
    argv = ["snmptrap", "-Ln", "-v", "3", "-e", engine, "-Z", "1,100", "-u", user, "-l", level]
    if auth:
        argv += ["-a", auth[0], "-A", auth[1]]
    if priv:
        argv += ["-x", priv[0], "-X", priv[1]]
    capture(name, argv + ["@", "", oid] + list(extra))

IFX = "1.3.6.1.2.1.2.2.1"
# v1: generic traps, enterprise-specific, v1 with many varbinds.
trap("v1_coldstart", "1", ["1.3.6.1.4.1.8072.2.3", "192.0.2.9", "0", "0", "4242",
                           "1.3.6.1.2.1.1.5.0", "s", "router-1"])
trap("v1_linkdown", "1", ["1.3.6.1.4.1.6141.2", "10.0.0.1", "2", "0", "",
                          IFX + ".1.3", "i", "3", IFX + ".2.3", "s", "ge-0/0/3"])
trap("v1_enterprise_specific", "1", ["1.3.6.1.4.1.6141.2", "10.9.8.7", "6", "17", "",
                                     "1.3.6.1.4.1.6141.2.1.1", "x", "00 01 fe ff"])
# v2c: every value type snmptrap can send.
trap("v2c_linkdown_types", "2c", ["123", "1.3.6.1.6.3.1.1.5.3",
     IFX + ".1.3", "i", "3", IFX + ".7.3", "i", "1", IFX + ".8.3", "i", "2",
     IFX + ".2.3", "s", "GigabitEthernet0/3", IFX + ".10.3", "c", "4000000000",
     "1.3.6.1.2.1.31.1.1.1.6.3", "C", "123456789012", IFX + ".5.3", "u", "1000000000",
     "1.3.6.1.2.1.1.2.0", "o", "1.3.6.1.4.1.9.1.1", "1.3.6.1.2.1.1.1.0", "x", "DE AD BE EF",
     "1.3.6.1.2.1.1.6.0", "n", "", IFX + ".9.3", "t", "77",
     "1.3.6.1.2.1.4.20.1.1.10.0.0.1", "a", "10.0.0.1", "1.3.6.1.2.1.1.4.0", "i", "-5",
     "1.3.6.1.2.1.31.1.1.1.1.3", "s", "Gi0/3", "1.3.6.1.2.1.31.1.1.1.18.3", "s", "uplink \u00e9"])
trap("v2c_linkup", "2c", ["", "1.3.6.1.6.3.1.1.5.4", IFX + ".1.3", "i", "3",
                          IFX + ".8.3", "i", "1"])
trap("v2c_warmstart", "2c", ["", "1.3.6.1.6.3.1.1.5.2"])
trap("v2c_authfail_trapaddr", "2c", ["", "1.3.6.1.6.3.1.1.5.5",
     "1.3.6.1.6.3.18.1.3.0", "a", "10.0.0.2", "1.3.6.1.6.3.18.1.4.0", "s", "public"],
     community="s3cret,with comma")
trap("v2c_enterprise", "2c", ["", "1.3.6.1.4.1.9.9.41.2.0.1",
     "1.3.6.1.6.3.1.1.4.3.0", "o", "1.3.6.1.4.1.9.9.41.2", "1.3.6.1.4.1.9.9.41.1.2.3.1.5.1",
     "s", "%LINK-3-UPDOWN: Interface Gi0/1, changed state to down"])
trap("v2c_unknown_wildcard", "2c", ["", "1.3.6.1.4.1.6141.2.60.1.0.9",
     "1.3.6.1.4.1.6141.2.60.1.1.1.1.1.4.1", "i", "4"])
trap("v2c_bad_community", "2c", ["", "1.3.6.1.6.3.1.1.5.1"], community="private")
capture("v2c_inform", ["snmpinform", "-Ln", "-t", "1", "-r", "0", "-v", "2c", "-c", "public",
                       "@", "", "1.3.6.1.6.3.1.1.5.3", IFX + ".1.5", "i", "5"])
# v3 traps for the fuzzer's users, and some it rejects.
SHA = ("SHA", "authpass123")
AES = ("AES", "privpass123")
LINK7 = [IFX + ".1.7", "i", "7", IFX + ".2.7", "s", "eth7"]
v3("v3_authnopriv", "fuzzauth", "authNoPriv", SHA, extra=LINK7)
v3("v3_authpriv", "fuzzpriv", "authPriv", SHA, AES, extra=LINK7)
v3("v3_authpriv_coldstart", "fuzzpriv", "authPriv", SHA, AES, oid="1.3.6.1.6.3.1.1.5.1")
v3("v3_noauthnopriv", "fuzznoauth", "noAuthNoPriv", extra=LINK7 + ["1.3.6.1.2.1.1.5.0", "s", "sw7"])
v3("v3_noauth_unknown_user", "mallory", "noAuthNoPriv")
v3("v3_wrong_level", "fuzzpriv", "authNoPriv", SHA)
v3("v3_bad_auth", "fuzzauth", "authNoPriv", ("SHA", "wrongpass99"))
v3("v3_other_engine", "fuzzauth", "authNoPriv", SHA, engine="0x80000000aabbccdd")
# An engine-ID discovery probe (the first thing snmpinform -v 3 sends).
capture("v3_discovery_probe", ["snmpinform", "-Ln", "-t", "1", "-r", "0", "-v", "3",
        "-u", "fuzzinform", "-l", "authPriv", "-a", "SHA", "-A", "informauth1",
        "-x", "AES", "-X", "informpriv1", "@", "", "1.3.6.1.6.3.1.1.5.1"])

# v3 INFORM through snmptrapd (our engine ID, boots 1) and a recording proxy.
td = tmp + "/trapd"
with open(tmp + "/trapd.conf", "w") as f:
    # -C reads no other file, so the persistent tokens go here too.
    f.write("oldEngineID %s\nengineBoots 0\n" % OUR_ENGINE +
            "createUser fuzzinform SHA informauth1 AES informpriv1\n"
            "authUser log fuzzinform priv\ndisableAuthorization yes\n")
port_s = udp()
trapd_port = port_s.getsockname()[1]
port_s.close()
trapd = subprocess.Popen(["snmptrapd", "-f", "-Lf", "/dev/null", "-C", "-c", tmp + "/trapd.conf",
                          "udp:127.0.0.1:%d" % trapd_port],
                         env=dict(ENV, SNMP_PERSISTENT_DIR=td),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(0.5)
proxy = udp()
up = udp()
p = subprocess.Popen(["snmpinform", "-Ln", "-t", "2", "-r", "2", "-v", "3", "-u", "fuzzinform",
                      "-l", "authPriv", "-a", "SHA", "-A", "informauth1", "-x", "AES",
                      "-X", "informpriv1", "127.0.0.1:%d" % proxy.getsockname()[1], "",
                      "1.3.6.1.6.3.1.1.5.3", IFX + ".1.9", "i", "9"],
                     env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
sent = []
client = None
deadline = time.time() + 10
import select
while p.poll() is None and time.time() < deadline:
    r, _, _ = select.select([proxy, up], [], [], 0.1)
    if proxy in r:
        data, client = proxy.recvfrom(65535)
        sent.append(data)
        up.sendto(data, ("127.0.0.1", trapd_port))
    if up in r:
        data, _ = up.recvfrom(65535)
        proxy.sendto(data, client)
rc = p.wait() if p.poll() is None or True else None
trapd.kill()
trapd.wait()
if rc != 0 or len(sent) < 2:
    sys.exit("snmpinform -v 3 through snmptrapd failed (exit %s, %d datagrams)" % (rc, len(sent)))
save("v3_inform_authpriv", sent[-1])
shutil.rmtree(tmp)
PY
