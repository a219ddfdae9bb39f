"""WebSocket feed scenarios for test_stream.sh, with Debian's python3-websockets as the client
(raw sockets only for the frames no client library will send: unmasked, invalid UTF-8).

usage: stream_client.py SCENARIO HTTP_PORT TRAP_PORT TOKEN [more...]
Prints "ok - ..." lines; any failure raises (non-zero exit)."""
import asyncio
import base64
import json
import os
import socket
import struct
import subprocess
import sys
import urllib.request

import websockets

SCENARIO, PORT, TRAP_PORT, TOKEN = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
EXTRA = sys.argv[5:]
URL = f"ws://127.0.0.1:{PORT}/api/v1/stream"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WAIT = 15  # seconds for any one expected message: a bound, not a timing check


def ok(what):
    print("ok -", what, flush=True)


def trap(kind, ifindex, port=None):
    """A real linkDown / linkUp from net-snmp's snmptrap (device 127.0.0.1)."""
    oid = "1.3.6.1.6.3.1.1.5.3" if kind == "down" else "1.3.6.1.6.3.1.1.5.4"
    ifx = "1.3.6.1.2.1.2.2.1"
    subprocess.run(["snmptrap", "-Ln", "-v", "2c", "-c", "public", f"127.0.0.1:{port or TRAP_PORT}",
                    "", oid, f"{ifx}.1.{ifindex}", "i", str(ifindex), f"{ifx}.7.{ifindex}", "i", "1",
                    f"{ifx}.8.{ifindex}", "i", "2"], check=True)


def metric(name, port=None):
    with urllib.request.urlopen(f"http://127.0.0.1:{port or PORT}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


async def recv(ws):
    return json.loads(await asyncio.wait_for(ws.recv(), WAIT))


async def snapshot(ws):
    """All pages of a snapshot: (alerts, [more flags])."""
    alerts, mores = [], []
    while True:
        m = await recv(ws)
        assert m["type"] == "snapshot", m
        alerts += m["alerts"]
        mores.append(m["more"])
        assert len(mores) < 1000, "endless snapshot"
        if not m["more"]:
            return alerts, mores


def source_id(ifindex):
    return f"127.0.0.1/1.3.6.1.6.3.1.1.5.3/{ifindex}"


async def until(ws, pred, what):
    """Messages until one satisfies pred; returns (it, the ones before it)."""
    seen = []
    while True:
        m = await recv(ws)
        if pred(m):
            return m, seen
        seen.append(m)
        assert len(seen) < 10000, f"{what}: never came"


def is_event(kind, ifindex):
    return lambda m: m["type"] == kind and m["alert"]["source_alert_id"] == source_id(ifindex)


async def basic():
    # Paged snapshot: the test inserted 1,200 active alerts of source_system 'sqlgen'.
    async with websockets.connect(URL + "?source_system=sqlgen", extra_headers=AUTH) as ws:
        alerts, mores = await snapshot(ws)
        assert len(alerts) == 1200 and mores == [True, True, False], (len(alerts), mores)
        assert len({a["id"] for a in alerts}) == 1200
    ok("snapshot of 1,200 matching alerts in pages of 500 with \"more\": true, true, false")

    async with websockets.connect(URL + "?alert_type=link_down", extra_headers=AUTH) as ws:
        alerts, _ = await snapshot(ws)
        assert alerts == [], alerts
        trap("down", 7)
        m, before = await until(ws, is_event("alert.created", 7), "created")
        a = m["alert"]
        assert a["status"] == "active" and a["device_ip"] == "127.0.0.1" and a["occurrence_count"] == 1, a
        assert before == [], before
        ok("live: a real linkDown trap arrives as alert.created with the alert's JSON")
        trap("down", 7)
        m, _ = await until(ws, is_event("alert.updated", 7), "repeat")
        assert m["alert"]["occurrence_count"] == 2, m
        trap("up", 7)
        m, _ = await until(ws, is_event("alert.resolved", 7), "resolved")
        assert m["alert"]["status"] == "resolved" and m["alert"]["resolved_by"] == "auto-clear", m
        ok("live: the repeat as alert.updated (occurrence_count 2), the linkUp as alert.resolved")

        pong = await ws.ping(b"are-you-there")
        await asyncio.wait_for(pong, WAIT)
        ok("ping answered with pong")

        # Filter change by message: resolved link_down alerts only -> a new snapshot.
        await ws.send(json.dumps({"type": "filter", "filters": {"alert_type": "link_down",
                                                                "status": ["resolved"]}}))
        alerts, _ = await snapshot(ws)
        assert [a["source_alert_id"] for a in alerts] == [source_id(7)], alerts
        # The same, fragmented into three frames.
        msg = json.dumps({"type": "filter", "filters": {"alert_type": "nothing"}})
        await ws.send([msg[:5], msg[5:20], msg[20:]])
        alerts, _ = await snapshot(ws)
        assert alerts == [], alerts
        trap("down", 8)  # does not match "nothing": never sent as an event
        await ws.send(json.dumps({"type": "filter", "filters": {"alert_type": "link_down"}}))
        alerts, _ = await snapshot(ws)
        # Alert 8 reaches the client through the snapshot or as an event after it (one batch
        # may commit 8 and 9 together, in either order): never lost, never sent while excluded.
        need = {source_id(9)} | ({source_id(8)} - {a["source_alert_id"] for a in alerts})
        trap("down", 9)
        for _ in range(1000):
            if not need:
                break
            m = await recv(ws)
            assert m["type"] == "alert.created", m
            need.discard(m["alert"]["source_alert_id"])
        assert not need, need
        ok("filter changed by message (also fragmented): a new snapshot each time; nothing sent "
           "that the filter excludes; nothing lost across the change")

        await ws.send(json.dumps({"type": "filter", "filters": {"severity": "fatal"}}))
        m = await recv(ws)
        assert m["type"] == "error" and m["error"]["field"] == "severity", m
        await ws.send("not json")
        m = await recv(ws)
        assert m["type"] == "error", m
        ok("a bad filter message is answered with an error naming the field; the stream goes on")
        await ws.close()
    assert ws.close_code == 1000, ws.close_code
    ok("close handshake: 1000")


async def auth():
    async with websockets.connect(URL + f"?access_token={TOKEN}&severity=major") as ws:
        await snapshot(ws)
    ok("access_token query parameter accepted")
    for hdrs, url in (({}, URL), ({}, URL + "?access_token=wrong"),
                      ({"Authorization": "Bearer wrong"}, URL)):
        try:
            async with websockets.connect(url, extra_headers=hdrs):
                raise AssertionError("connected without valid credentials")
        except websockets.exceptions.InvalidStatusCode as e:
            assert e.status_code == 401, e
    ok("no or bad credentials (header or query): 401 before any upgrade")
    try:
        async with websockets.connect(URL + "?severity=fatal", extra_headers=AUTH):
            raise AssertionError("connected with a bad filter")
    except websockets.exceptions.InvalidStatusCode as e:
        assert e.status_code == 422, e
    ok("a bad filter in the query string: 422 before any upgrade")


def raw_connect():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=WAIT)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /api/v1/stream?alert_type=nothing HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
               f"Authorization: Bearer {TOKEN}\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        assert chunk, buf
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return s, rest


def raw_frames(s, rest):
    """Server frames until the close frame: returns its code."""
    buf = rest
    while True:
        while len(buf) < 2 or len(buf) < 2 + (buf[1] & 0x7F if buf[1] & 0x7F < 126 else 0):
            chunk = s.recv(65536)
            if not chunk:
                raise AssertionError("closed without a close frame")
            buf += chunk
        op, n = buf[0] & 0x0F, buf[1] & 0x7F
        h = 2
        if n == 126:
            while len(buf) < 4:
                buf += s.recv(65536)
            n, h = struct.unpack("!H", buf[2:4])[0], 4
        elif n == 127:
            while len(buf) < 10:
                buf += s.recv(65536)
            n, h = struct.unpack("!Q", buf[2:10])[0], 10
        while len(buf) < h + n:
            chunk = s.recv(65536)
            assert chunk, "closed mid-frame"
            buf += chunk
        payload, buf = buf[h:h + n], buf[h + n:]
        if op == 0x8:
            return struct.unpack("!H", payload[:2])[0]


def masked(op, payload, fin=True):
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([(0x80 if fin else 0) | op, 0x80 | len(payload)]) + mask + body


async def bad_frames():
    s, rest = raw_connect()
    s.sendall(bytes([0x81, 0x02]) + b"hi")  # unmasked
    assert raw_frames(s, rest) == 1002
    s.close()
    s, rest = raw_connect()
    s.sendall(masked(0x9, b"x", fin=False))  # fragmented ping
    assert raw_frames(s, rest) == 1002
    s.close()
    s, rest = raw_connect()
    s.sendall(masked(0x0, b"orphan"))  # continuation of nothing
    assert raw_frames(s, rest) == 1002
    s.close()
    ok("unmasked frame, fragmented control frame, stray continuation: closed with 1002")
    s, rest = raw_connect()
    s.sendall(masked(0x1, b"\xc3\x28"))
    assert raw_frames(s, rest) == 1007
    s.close()
    ok("text that is not UTF-8: closed with 1007")
    async with websockets.connect(URL + "?alert_type=nothing", extra_headers=AUTH,
                                  max_size=None) as ws:
        await snapshot(ws)
        await ws.send("x" * 200000)
        try:
            await asyncio.wait_for(ws.recv(), WAIT)
            raise AssertionError("still open after an oversized message")
        except websockets.exceptions.ConnectionClosed:
            pass
    assert ws.close_code == 1009, ws.close_code
    ok("a 200,000-byte message: closed with 1009")
    # The server is unaffected: a new client still gets its snapshot.
    async with websockets.connect(URL + "?alert_type=nothing", extra_headers=AUTH) as ws:
        await snapshot(ws)
    ok("the server serves new clients after the bad ones")


async def slow():
    """A client that stops reading: its queue coalesces per alert, then it is closed with 1013
    while a fast client gets every change."""
    first = int(EXTRA[0])
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", PORT))
    slow_ws = await websockets.connect(URL + "?alert_type=link_down", extra_headers=AUTH, sock=sock,
                                       max_queue=1, read_limit=1024)
    fast_ws = await websockets.connect(URL + "?alert_type=link_down", extra_headers=AUTH,
                                       max_size=None, max_queue=None)
    await snapshot(slow_ws)
    await snapshot(fast_ws)
    fast_seen = {}

    async def fast_reader():
        try:
            while True:
                m = json.loads(await fast_ws.recv())
                if m["type"].startswith("alert."):
                    fast_seen[m["alert"]["source_alert_id"]] = m["alert"]
        except websockets.exceptions.ConnectionClosed:
            pass
    reader = asyncio.create_task(fast_reader())
    loop = asyncio.get_running_loop()
    # 1. Distinct alerts until frames wait in the server for the slow client (more than the
    # fast client ever has waiting between two of its writes).
    i = first
    while metric("opsc_stream_queue_longest") < 4:
        await loop.run_in_executor(None, trap, "down", i)
        i += 1
        assert i - first < 600, "the slow client's queue never filled"
    ok(f"slow client: frames wait in the server after {i - first} new alerts")
    # 2. Repeats of one alert: coalesced in place, not queued one by one.
    c0, q0 = metric("opsc_stream_coalesced_total"), metric("opsc_stream_queue_longest")
    for _ in range(20):
        await loop.run_in_executor(None, trap, "down", first)
    deadline = loop.time() + WAIT
    while metric("opsc_stream_coalesced_total") <= c0:
        assert loop.time() < deadline, "the repeats were never coalesced"
        await asyncio.sleep(0.1)
    q1 = metric("opsc_stream_queue_longest")
    # One new entry for the repeated alert, and the last few new alerts of step 1 still on
    # their way: never one entry per repeat (max_pending is 20: 20 more would have closed it).
    assert q1 <= q0 + 5, (q0, q1)
    ok(f"20 repeats of one alert: coalesced (queue {q0:.0f} -> {q1:.0f}, not +20)")
    # 3. More distinct alerts than max_pending: closed with 1013 and counted.
    s0 = metric("opsc_stream_slow_closed_total")
    j = i
    while metric("opsc_stream_slow_closed_total") <= s0:
        await loop.run_in_executor(None, trap, "down", j)
        j += 1
        assert j - i < 200, "the slow client was never closed"
    code = None
    try:
        for _ in range(100000):
            await asyncio.wait_for(slow_ws.recv(), WAIT)
    except websockets.exceptions.ConnectionClosed:
        code = slow_ws.close_code
    assert code == 1013, code
    ok("too far behind: the slow client is closed with 1013 and counted")
    # The fast client got every alert, each in its latest state.
    want = {source_id(k) for k in range(first, j)}
    deadline = loop.time() + WAIT
    while not want <= set(fast_seen) or fast_seen[source_id(first)]["occurrence_count"] < 21:
        assert loop.time() < deadline, (len(want - set(fast_seen)),)
        await asyncio.sleep(0.1)
    ok(f"meanwhile the fast client received all {len(want)} alerts and the repeats' final count")
    await fast_ws.close()
    await reader


async def tls():
    import ssl
    ctx = ssl.create_default_context(cafile=EXTRA[1])
    url = f"wss://127.0.0.1:{EXTRA[0]}/api/v1/stream?alert_type=link_down"
    async with websockets.connect(url, extra_headers=AUTH, ssl=ctx) as ws:
        await snapshot(ws)
        trap("down", 4000)
        await until(ws, is_event("alert.created", 4000), "created over TLS")
        pong = await ws.ping()
        await asyncio.wait_for(pong, WAIT)
        await ws.close()
    assert ws.close_code == 1000, ws.close_code
    ok("over TLS (wss://, certificate verified): snapshot, a live change, ping/pong, close 1000")


async def instances():
    """Two servers on one database: a change committed by either reaches the other's clients."""
    port_b, trap_b = int(EXTRA[0]), int(EXTRA[1])
    url_b = f"ws://127.0.0.1:{port_b}/api/v1/stream?alert_type=link_down"
    seen_b = []

    async def until_b(ws, pred, what):
        m, before = await until(ws, pred, what)
        seen_b.extend(before + [m])
        return m

    async with websockets.connect(url_b, extra_headers=AUTH) as wb, \
            websockets.connect(URL + "?alert_type=link_down", extra_headers=AUTH) as wa:
        await snapshot(wb)
        await snapshot(wa)
        trap("down", 5000)  # to instance A
        await until_b(wb, is_event("alert.created", 5000), "A's alert on B")
        ok("an alert created by instance A reaches instance B's client (NOTIFY, rows read back)")
        trap("down", 5001, port=trap_b)  # to instance B
        await until(wa, is_event("alert.created", 5001), "B's alert on A")
        trap("up", 5000)
        await until_b(wb, is_event("alert.resolved", 5000), "A's resolve on B")
        ok("... and B's alert reaches A's client; A's resolve reaches B")
        # B's own change came once (its own NOTIFY is ignored): a marker ends the count.
        trap("down", 5002)
        await until_b(wb, is_event("alert.created", 5002), "marker")
        own = [m for m in seen_b if m["type"] == "alert.created" and
               m["alert"]["source_alert_id"] == source_id(5001)]
        assert len(own) == 1, own
        ok("B's own change reached B's client exactly once")
    assert metric("opsc_stream_changes_remote_total", port_b) >= 1
    ok("each instance counts the other's changes as remote")


asyncio.run(globals()[SCENARIO]())
