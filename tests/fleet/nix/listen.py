# fleet-listen PORT PIDFILE: accept (and close) every TCP connection on
# PORT, on all addresses of the host's network namespace (IPv4 and IPv6).
import os
import signal
import socket
import sys
import time

port, pidfile = int(sys.argv[1]), sys.argv[2]
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
        c.close()
    except InterruptedError:
        pass
