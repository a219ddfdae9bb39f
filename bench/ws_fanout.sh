#!/usr/bin/env bash
# One change to many WebSocket feed clients (issue 4, performance).
#
#   bench/ws_fanout.sh [CLIENTS] [CHANGES]      (release build; python3-websockets)
#
# CLIENTS (default 1,000) feed clients connect (python3-websockets, one
# process, no filter: every change matches every client) and take their
# snapshot; then CHANGES (default 200) new alerts are posted one at a time,
# 50 ms apart. The server's own histogram opsc_stream_delivery_seconds times
# each change from its commit to its frame queued for every client (the
# alert read from PostgreSQL included); the clients count what they received
# (every client must get every change).
source "$(dirname "$0")/lib.sh"
CLIENTS=${1:-1000}
CHANGES=${2:-200}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
export OPSC_ADMIN_TOKEN="bench-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export OPSC_HTTP_MAX_CONNECTIONS=$((CLIENTS + 100))
bench_start "${BENCH_YAML:-}"
echo "# ws fanout: $CLIENTS clients, $CHANGES changes, $(nproc) cores, $(date -u +%F)"
/usr/bin/python3 - "$HTTP" "$OPSC_ADMIN_TOKEN" "$CLIENTS" "$CHANGES" <<'PY'
import asyncio, json, sys, time, urllib.request
import websockets

port, token, nclients, nchanges = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
base = f"http://127.0.0.1:{port}"

def metrics():
    text = urllib.request.urlopen(base + "/metrics").read().decode()
    b = {}
    for line in text.splitlines():
        if line.startswith("opsc_stream_delivery_seconds_bucket"):
            le = line.split('le="')[1].split('"')[0]
            b[le] = int(line.split()[-1])
    return b

def post(i):
    body = json.dumps({"source_system": "bench", "source_alert_id": f"ws{i}", "device_name": f"host-{i}",
                       "severity": "major", "alert_type": "bench", "title": f"change {i}"}).encode()
    req = urllib.request.Request(base + "/api/v1/events", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": "Bearer " + token})
    urllib.request.urlopen(req).read()

async def client(ready, got):
    async with websockets.connect(f"ws://127.0.0.1:{port}/api/v1/stream?access_token={token}",
                                  max_size=None, ping_interval=None) as ws:
        while True:
            m = json.loads(await ws.recv())
            if m["type"] == "snapshot" and not m.get("more"):
                break
        ready.append(1)
        async for raw in ws:
            if '"alert.created"' in raw:
                got[0] += 1

async def main():
    ready, counts = [], [[0] for _ in range(nclients)]
    tasks = []
    for i in range(nclients):
        tasks.append(asyncio.create_task(client(ready, counts[i])))
        if i % 100 == 99:
            await asyncio.sleep(0.05)
    while len(ready) < nclients:
        await asyncio.sleep(0.1)
    print(f"{nclients} clients connected with their snapshot")
    before = metrics()
    loop = asyncio.get_running_loop()
    for i in range(nchanges):
        await loop.run_in_executor(None, post, i)
        await asyncio.sleep(0.05)
    deadline = time.time() + 30
    while time.time() < deadline and min(c[0] for c in counts) < nchanges:
        await asyncio.sleep(0.2)
    after = metrics()
    got = sorted(c[0] for c in counts)
    print(f"changes received per client: min {got[0]}, max {got[-1]} of {nchanges}")
    total = after["+Inf"] - before.get("+Inf", 0)
    print(f"server delivery latency over {total} changes (commit -> queued to all {nclients} clients):")
    for le in sorted((k for k in after if k != "+Inf"), key=float):
        n = after[le] - before.get(le, 0)
        print(f"  <= {float(le) * 1000:g} ms: {n} ({100.0 * n / max(total, 1):.1f}%)")
    for t in tasks:
        t.cancel()

asyncio.run(main())
PY
