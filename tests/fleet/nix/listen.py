# fleet-listen PORT PIDFILE [STATUS]: accept every TCP connection on PORT,
# on all addresses of the host's network namespace (IPv4 and IPv6). A
# connection that sends an HTTP request gets an answer: GET /healthz has
# STATUS (default 200), / has 200, any other path 404; one that sends
# nothing is closed.
import os
import signal
import socket
import sys
import threading
import time

port, pidfile = int(sys.argv[1]), sys.argv[2]
status = int(sys.argv[3]) if len(sys.argv) > 3 else 200
REASONS = {200: "OK", 404: "Not Found", 500: "Internal Server Error"}


def serve(c):
    try:
        c.settimeout(2.0)
        req = b""
        while b"\r\n\r\n" not in req and b"\n\n" not in req and len(req) < 8192:
            chunk = c.recv(4096)
            if not chunk:
                break
            req += chunk
        parts = req.split(b"\r\n", 1)[0].split()
        if len(parts) >= 2:
            path = parts[1].split(b"?", 1)[0]
            code = status if path == b"/healthz" else 200 if path == b"/" else 404
            body = ("%d %s\n" % (code, REASONS.get(code, "Status"))).encode()
            c.sendall(b"HTTP/1.0 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                      b"Connection: close\r\n\r\n%s"
                      % (code, REASONS.get(code, "Status").encode(), len(body), body))
    except OSError:
        pass
    finally:
        c.close()


signal.signal(signal.SIGHUP, signal.SIG_IGN)
try:
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    addr = ("::", port)
except OSError:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    addr = ("0.0.0.0", port)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
for attempt in range(100):
    try:
        s.bind(addr)
        break
    except OSError:
        if attempt == 99:
            raise
        time.sleep(0.05)
s.listen(128)
with open(pidfile + ".tmp", "w") as f:
    f.write("%d\n" % os.getpid())
os.rename(pidfile + ".tmp", pidfile)
while True:
    try:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
    except InterruptedError:
        pass
