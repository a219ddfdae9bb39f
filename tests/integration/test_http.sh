#!/usr/bin/env bash
# The HTTP server from outside, with real clients: curl (keep-alive, chunked
# upload, Expect: 100-continue, HTTPS), openssl s_client (which TLS versions
# and ciphers are accepted), and raw sockets from python3 for what no polite
# client sends (malformed requests, pipelining, slowloris, oversized heads,
# URLs and bodies, too many connections). Afterwards the server still
# answers, and SIGTERM drains a request in flight.
source "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || fail "openssl CLI missing (apt-get install openssl)"
command -v python3 >/dev/null || fail "python3 missing"

# A throwaway self-signed certificate (ECDSA P-256) for localhost.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" >"$TMP/openssl.log" 2>&1 ||
    { cat "$TMP/openssl.log"; fail "openssl req"; }

ext_server_config
TLS_PORT=$(free_port tcp)
TBASE="https://127.0.0.1:$TLS_PORT"
cat >"$TMP/opsc.yaml" <<YAML
data_dir: $TMP/data
shutdown_timeout: 8s
http:
  listen: 127.0.0.1:$HTTP_PORT
  max_connections: 20
  max_body_bytes: 64KiB
  max_headers: 50
  max_url_bytes: 2KiB
  header_timeout: 1s
  body_timeout: 1s
  idle_timeout: 5s
  tls:
    listen: 127.0.0.1:$TLS_PORT
    cert: $TMP/cert.pem
    key: $TMP/key.pem
    handshake_timeout: 1s
snmp:
  listen: udp:127.0.0.1:$TRAP_PORT
YAML

# ---- a bad certificate is a config error at start --------------------------------
for bad in "OPSC_HTTP_TLS_CERT=$TMP/nonexistent.pem" "OPSC_HTTP_TLS_KEY=$TMP/cert.pem"; do
    env "$bad" OPSC_DATABASE_URL="$EXT_URL" "$BIN" --config "$TMP/opsc.yaml" >"$TMP/bad.log" 2>&1 &
    pid=$!
    CLEANUP_PIDS+=("$pid")
    wait_exit "$pid" 30 || fail "server with $bad did not exit"
    [[ $EXIT_STATUS -ne 0 ]] || fail "server with $bad exited 0"
    grep -q "http.tls" "$TMP/bad.log" || { cat "$TMP/bad.log"; fail "no http.tls error for $bad"; }
done
ok "bad http.tls.cert / http.tls.key: start refused with the key and file named"

start_server
ok "plain and TLS listeners side by side"

# ---- curl -------------------------------------------------------------------------
out=$(curl -sv --max-time 5 "$BASE/health" "$BASE/health" 2>&1)
grep -q 'Re-using existing connection' <<<"$out" || { echo "$out"; fail "keep-alive not reused"; }
ok "curl: keep-alive (two requests, one connection)"

# Chunked upload to a route without bodies: the body is framed, read, dropped; 405 with Allow.
head -c 20000 /dev/urandom | base64 -w0 >"$TMP/body.txt"
out=$(curl -s -D - -o "$TMP/resp.json" --max-time 5 -H 'Transfer-Encoding: chunked' \
    -H 'Content-Type: application/json' --data-binary @"$TMP/body.txt" "$BASE/health")
[[ $out == "HTTP/1.1 405"* ]] || fail "chunked POST: $out"
grep -qi '^Allow: GET, HEAD' <<<"$out" || fail "405 without Allow"
grep -q '"code":"method_not_allowed"' "$TMP/resp.json" || fail "405 body: $(cat "$TMP/resp.json")"
ok "curl: chunked upload, 405 with Allow and a JSON error"

# Expect: 100-continue on a request that will be refused: the final status, no 100 first.
out=$(curl -sv -o /dev/null --max-time 5 -H 'Expect: 100-continue' --data-binary @"$TMP/body.txt" \
    "$BASE/nowhere" 2>&1)
grep -q '< HTTP/1.1 404' <<<"$out" || { echo "$out"; fail "Expect to 404 route"; }
! grep -q '< HTTP/1.1 100' <<<"$out" || fail "100 Continue sent for a refused request"
head -c 100000 /dev/zero >"$TMP/big.bin"
out=$(curl -sv -o "$TMP/resp.json" --max-time 5 -H 'Expect: 100-continue' \
    --data-binary @"$TMP/big.bin" "$BASE/health" 2>&1)
grep -q '< HTTP/1.1 413' <<<"$out" || { echo "$out"; fail "Expect with a too large body"; }
! grep -q '< HTTP/1.1 100' <<<"$out" || fail "100 Continue sent for a too large body"
grep -q '"code":"payload_too_large"' "$TMP/resp.json" || fail "413 body"
ok "curl: Expect: 100-continue refused at once (404, 413), without 100 Continue"

# ---- TLS --------------------------------------------------------------------------
out=$(curl -s --max-time 5 --cacert "$TMP/cert.pem" "https://localhost:$TLS_PORT/health" \
    --resolve "localhost:$TLS_PORT:127.0.0.1")
[[ $out == '{"status":"ok"}' ]] || fail "https /health: $out"
out=$(curl -sv --max-time 5 --cacert "$TMP/cert.pem" --resolve "localhost:$TLS_PORT:127.0.0.1" \
    "https://localhost:$TLS_PORT/health" "https://localhost:$TLS_PORT/nope" 2>&1)
grep -q 'Re-using existing connection' <<<"$out" || { echo "$out"; fail "TLS keep-alive"; }
grep -q '< HTTP/1.1 404' <<<"$out" || fail "TLS 404"
out=$(curl -s -k --max-time 5 -H 'Transfer-Encoding: chunked' --data-binary @"$TMP/body.txt" \
    -o /dev/null -w '%{http_code}' "$TBASE/metrics")
[[ $out == 405 ]] || fail "TLS chunked POST: $out"
ok "curl over TLS: certificate verified, keep-alive, chunked upload"

s_client() { timeout 10 openssl s_client -connect "127.0.0.1:$TLS_PORT" -servername localhost "$@" </dev/null 2>&1 || true; }
out=$(s_client -tls1_2)
grep -q 'Protocol *: TLSv1.2' <<<"$out" || { echo "$out" | tail -n 20; fail "TLS 1.2 refused"; }
grep -Eq 'Cipher *: ECDHE-ECDSA-(AES128-GCM-SHA256|AES256-GCM-SHA384|CHACHA20-POLY1305)' <<<"$out" ||
    fail "TLS 1.2 cipher: $(grep 'Cipher' <<<"$out")"
for v in -tls1_1 -tls1; do
    out=$(s_client "$v" -cipher 'ALL:@SECLEVEL=0')
    grep -q 'Cipher is (NONE)' <<<"$out" || { echo "$out" | tail; fail "$v accepted"; }
    grep -q 'alert protocol version' <<<"$out" || { echo "$out" | tail; fail "$v: no protocol_version alert"; }
done
out=$(s_client -tls1_2 -cipher 'ECDHE-ECDSA-AES128-SHA:AES128-GCM-SHA256')
grep -q 'Cipher is (NONE)' <<<"$out" || fail "CBC / non-ECDHE cipher accepted"
# mbedTLS 2.28 (Debian 12) has no TLS 1.3: a 1.3-only client is refused, not hung.
out=$(s_client -tls1_3)
grep -q 'Cipher is (NONE)' <<<"$out" || fail "TLS 1.3 unexpectedly spoken"
ok "openssl s_client: TLS 1.2 with ECDHE+AEAD; TLS 1.0/1.1, CBC and static-RSA suites refused"

# ---- hostile HTTP from raw sockets -------------------------------------------------
python3 - "$HTTP_PORT" "$TLS_PORT" >"$TMP/raw.log" 2>&1 <<'PY' || { cat "$TMP/raw.log"; fail "raw socket checks"; }
import json, socket, sys, time

PORT, TLS_PORT = int(sys.argv[1]), int(sys.argv[2])
DEADLINE = 5.0

def conn(port=PORT):
    s = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

def read_response(s, buf=b""):
    """One response: (status, headers dict, body, rest of the buffer). Bounded by the timeout."""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise AssertionError("EOF before a response; got %r" % buf[:200])
        buf += d
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for l in lines[1:]:
        k, v = l.split(":", 1)
        hdrs[k.strip().lower()] = v.strip()
    n = int(hdrs["content-length"])
    while len(buf) < n:
        d = s.recv(65536)
        if not d:
            raise AssertionError("EOF in body")
        buf += d
    return status, hdrs, buf[:n], buf[n:]

def closed(s):
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True

def one(raw, want, close=True, check_json=True):
    s = conn()
    try:
        s.sendall(raw)
    except (BrokenPipeError, ConnectionResetError):
        pass
    st, h, body, rest = read_response(s)
    assert st == want, (raw[:80], st, body)
    if check_json:
        err = json.loads(body)["error"]
        assert isinstance(err["code"], str) and isinstance(err["message"], str), body
    if close:
        assert h.get("connection") == "close", (raw[:60], h)
        assert closed(s), raw[:60]
    s.close()
    print("ok", want, raw[:40])
    return body

# Malformed request lines and heads: 400, then close.
for raw in [b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", b"GET /\x00 HTTP/1.1\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,  # TLS to the plain port
            b"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
            b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]:
    one(raw, 400)
# Oversized: header bytes (431), header count (431), URL (414), declared body (413).
one(b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 431)
one(b"GET /health HTTP/1.1\r\n" + b"X-Dup: same\r\n" * 60 + b"\r\n", 431)
one(b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\n\r\n", 414)
one(b"POST /health HTTP/1.1\r\nContent-Length: 1000000\r\n\r\nabc", 413)
# Chunked beyond the limit: 413 as it arrives.
s = conn()
s.sendall(b"POST /health HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
try:
    for _ in range(10):
        s.sendall(b"2000\r\n" + b"z" * 0x2000 + b"\r\n")
except (BrokenPipeError, ConnectionResetError):
    pass
st, h, body, _ = read_response(s)
assert st == 413, st
s.close()
print("ok 413 chunked")
# Raw bytes above 0x7f in the path (llhttp lets them through): 404, quoted safely in valid JSON.
assert b"%FF%FE" in one(b"GET /\xff\xfe HTTP/1.1\r\n\r\n", 404, close=False)
# 404 and 405 keep the connection; percent-encoded invalid UTF-8 and SQL metacharacters
# in the path come back quoted in a valid JSON message.
s = conn()
s.sendall(b"GET /%FF%FE'%22;DROP%20TABLE%20alerts;--?q=1'OR'1'='1 HTTP/1.1\r\n\r\n")
st, h, body, rest = read_response(s)
assert st == 404 and h.get("connection") != "close", (st, h)
assert "DROP" in json.loads(body)["error"]["message"]
s.sendall(b"DELETE /metrics HTTP/1.1\r\n\r\n")
st, h, body, rest = read_response(s, rest)
assert st == 405 and h["allow"] == "GET, HEAD", (st, h)
s.close()
print("ok 404/405 keep-alive")
# A body longer than declared: the excess is the next request, which is garbage: 400.
s = conn()
s.sendall(b"POST /health HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloEXTRA-BYTES\r\n\r\n")
st, h, body, rest = read_response(s)
assert st == 405, st
st, h, body, rest = read_response(s, rest)
assert st == 400 and h["connection"] == "close", st
s.close()
print("ok body longer than declared")
# Pipelining: three requests in one segment, three answers in order.
s = conn()
s.sendall(b"GET /health HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\nHEAD /health HTTP/1.1\r\n\r\n"
          b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n")
st1, _, b1, rest = read_response(s)
st2, _, b2, rest = read_response(s, rest)
assert (st1, st2) == (200, 404), (st1, st2)
# HEAD: a Content-Length but no body
assert rest.startswith(b"HTTP/1.1 200") or len(rest) < 12
while b"\r\n\r\n" not in rest:
    rest += s.recv(65536)
head, rest = rest.split(b"\r\n\r\n", 1)
assert head.startswith(b"HTTP/1.1 200"), head
st4, h4, b4, rest = read_response(s, rest)
assert st4 == 200 and b4 == b'{"status":"ok"}' and h4["connection"] == "close"
assert closed(s)
s.close()
print("ok pipelined")
# Slowloris: a header byte every 200 ms never completes; 408 after header_timeout (1 s).
s = conn()
s.sendall(b"GET /health HTTP/1.1\r\n")
t0 = time.time()
got = b""
for i in range(40):  # at most 8 s
    try:
        s.sendall(b"X")
    except (BrokenPipeError, ConnectionResetError):
        break
    s.settimeout(0.2)
    try:
        d = s.recv(65536)
        got += d
        if not d or b"\r\n\r\n" in got:
            break
    except socket.timeout:
        pass
s.settimeout(DEADLINE)
elapsed = time.time() - t0
assert got.startswith(b"HTTP/1.1 408"), got[:100]
assert elapsed < 6, elapsed
s.close()
print("ok slowloris 408 after %.1fs" % elapsed)
# Unterminated chunked body: 408 after body_timeout.
s = conn()
s.sendall(b"POST /health HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc")
st, h, body, _ = read_response(s)
assert st == 408 and h["connection"] == "close", st
s.close()
print("ok unterminated chunk 408")
# Too many connections: 20 held, the next ones are closed at once; the held ones still work.
held = [conn() for _ in range(20)]
for s in held[:5]:
    s.sendall(b"GET /health HTTP/1.1\r\n\r\n")
    assert read_response(s)[0] == 200
extra = [conn() for _ in range(5)]
for s in extra:
    try:
        s.sendall(b"GET /health HTTP/1.1\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert closed(s), "connection beyond max_connections was served"
    s.close()
for s in held:
    s.sendall(b"GET /health HTTP/1.1\r\n\r\n")
    assert read_response(s)[0] == 200
    s.close()
print("ok max_connections")
# TLS port: silence past the handshake timeout, plaintext, and garbage are all closed.
for payload in [b"", b"GET /health HTTP/1.1\r\n\r\n", b"\x16\x03\x01\xff\xff" + b"\x00" * 100]:
    s = conn(TLS_PORT)
    if payload:
        s.sendall(payload)
    t0 = time.time()
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except ConnectionResetError:
        pass
    assert time.time() - t0 < 4.5, "TLS connection not closed in time"
    assert b"HTTP/1.1" not in data
    s.close()
print("ok TLS port: silent, plaintext and garbage clients closed")
PY
ok "raw sockets: 400/413/414/431/408, keep-alive after 404/405, pipelining, slowloris, max_connections, TLS junk"

# Many more hostile requests in a burst; the server stays up and answers.
python3 - "$HTTP_PORT" >"$TMP/burst.log" 2>&1 <<'PY' || { tail "$TMP/burst.log"; fail "burst"; }
import random, socket, sys
random.seed(4)
port = int(sys.argv[1])
junk = [b"GET / HTTP/1.1\r\n" + bytes(random.randrange(256) for _ in range(random.randrange(1, 300))),
        b"\r\n" * 50, b"POST /x HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        b"GET /%s HTTP/1.1\r\n\r\n" % (b"%" * 500), b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"]
for i in range(600):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(random.choice(junk) if i % 3 else bytes(random.randrange(256) for _ in range(64)))
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
    except (ConnectionResetError, BrokenPipeError, socket.timeout):
        pass
    s.close()
print("sent 600")
PY
[[ $(http_code "$BASE/health") == 200 ]] || fail "server unhealthy after the hostile burst"
[[ $(curl -sk --max-time 5 -o /dev/null -w '%{http_code}' "$TBASE/health") == 200 ]] ||
    fail "TLS listener unhealthy after the burst"
kill -0 "$SERVER" || fail "server died"
m=$(curl -s "$BASE/metrics")
grep -q '^opsc_http_requests_total{code="400"} [1-9]' <<<"$m" || fail "400s not counted"
grep -q '^opsc_http_tls_handshake_failures_total [1-9]' <<<"$m" || fail "TLS failures not counted"
grep -q '^opsc_http_connections_rejected_total [1-9]' <<<"$m" || fail "rejections not counted"
ok "600 more hostile requests: the server answers on both listeners; counters on /metrics"

# ---- graceful drain on SIGTERM -----------------------------------------------------
python3 - "$HTTP_PORT" "$SERVER" >"$TMP/drain.log" 2>&1 <<'PY' || { cat "$TMP/drain.log"; tail -n 20 "$TMP/server.log"; fail "drain"; }
import os, signal, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
def conn():
    return socket.create_connection(("127.0.0.1", port), timeout=5)
idle = conn()
idle.sendall(b"GET /health HTTP/1.1\r\n\r\n")
buf = b""
while b'{"status":"ok"}' not in buf:
    buf += idle.recv(65536)
busy = conn()  # a request in flight: headers sent, body not yet
busy.sendall(b"POST /health HTTP/1.1\r\nContent-Length: 4\r\n\r\nab")
time.sleep(0.2)
os.kill(pid, signal.SIGTERM)
# The idle keep-alive connection is closed at once.
t0 = time.time()
assert idle.recv(1) == b"", "idle connection not closed"
assert time.time() - t0 < 3
# New connections are refused (listener closed) or closed unanswered.
time.sleep(0.3)
try:
    s = conn()
    s.sendall(b"GET /health HTTP/1.1\r\n\r\n")
    assert s.recv(100) == b"", "a new connection was served while draining"
except (ConnectionRefusedError, ConnectionResetError):
    pass
# The request in flight completes, answered with Connection: close.
busy.sendall(b"cd")
resp = b""
while True:
    d = busy.recv(65536)
    if not d:
        break
    resp += d
assert resp.startswith(b"HTTP/1.1 405"), resp[:80]
assert b"Connection: close" in resp
print("drain ok")
PY
wait_exit "$SERVER" 15 || fail "no exit after SIGTERM"
[[ $EXIT_STATUS -eq 0 ]] || fail "exit status $EXIT_STATUS"
ok "SIGTERM: idle connections closed, new ones refused, the request in flight answered, exit 0"
