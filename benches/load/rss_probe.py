#!/usr/bin/env python3
"""Memory a client can make the webhook hold, measured on the real binary.

Starts `cedar-authorizer serve` (release build) with the example policies
and test certificates, then over one keep-alive HTTP/1.1 TLS connection:

  distinct N [KIB]  sends N distinct SubjectAccessReviews of about KIB
              KiB each (default 8; every one a new cache key) and prints
              RSS before, during and after;
  groups N    sends one review with N groups (refused with 400 when N is
              over the bound) and prints the status and RSS after.

Loopback only; it stops the server when done. Usage:
  benches/load/rss_probe.py BINARY distinct 200000
  benches/load/rss_probe.py BINARY groups 100000
"""
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def review(i, size):
    groups = [f"g{i:07d}-{g:03d}-" + "x" * 40 for g in range(size // 64)]
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": f"user-{i}",
            "groups": groups + ["developers"],
            "resourceAttributes": {"verb": "get", "version": "v1", "resource": "pods", "namespace": "team-a"},
        },
    }


class Client:
    def __init__(self, port, pki):
        ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.pem"))
        ctx.load_cert_chain(os.path.join(pki, "apiserver-client.pem"), os.path.join(pki, "apiserver-client-key.pem"))
        ctx.set_alpn_protocols(["http/1.1"])
        raw = socket.create_connection(("127.0.0.1", port))
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        self.buf = b""

    def post(self, body):
        head = f"POST /authorize HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
        self.sock.sendall(head.encode() + body)
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(65536)
        header, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status = int(header.split()[1])
        length = next(int(l.split(b":")[1]) for l in header.split(b"\r\n") if l.lower().startswith(b"content-length"))
        while len(self.buf) < length:
            self.buf += self.sock.recv(65536)
        answer, self.buf = self.buf[:length], self.buf[length:]
        return status, answer


def main():
    binary, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    kib = int(sys.argv[4]) if len(sys.argv) > 4 else 8
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with tempfile.TemporaryDirectory() as tmp:
        pki = os.path.join(tmp, "pki")
        subprocess.run([binary, "certs", "--out", pki], check=True, stdout=subprocess.DEVNULL)
        port, admin = free_port(), free_port()
        server = subprocess.Popen(
            [binary, "serve", "--policies", os.path.join(root, "policies"), "--secure-port", str(port),
             "--metrics-bind-address", f"127.0.0.1:{admin}",
             "--tls-cert-file", os.path.join(pki, "serving.pem"), "--tls-private-key-file", os.path.join(pki, "serving-key.pem"),
             "--client-ca-file", os.path.join(pki, "ca.pem"), "--max-body-bytes", str(4 << 20), "--decision-log", "none"],
            stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):
                try:
                    c = Client(port, pki)
                    break
                except OSError:
                    time.sleep(0.05)
            status, _ = c.post(json.dumps(review(0, 64)).encode())
            assert status == 200
            before = rss_kib(server.pid)
            print(f"rss at start: {before / 1024:.1f} MiB")
            start = time.time()
            if mode == "distinct":
                for i in range(1, n + 1):
                    status, _ = c.post(json.dumps(review(i, kib * 1024)).encode())
                    assert status == 200, status
                    if i % 50000 == 0:
                        print(f"  after {i}: rss {rss_kib(server.pid) / 1024:.1f} MiB")
                print(f"{n} distinct ~{kib} KiB reviews in {time.time() - start:.1f} s")
            else:
                sar = review(0, 0)
                sar["spec"]["groups"] = [f"group-{g:06d}" for g in range(n)]
                body = json.dumps(sar).encode()
                status, answer = c.post(body)
                print(f"{n} groups ({len(body)} bytes): HTTP {status} {answer[:120].decode(errors='replace')}")
            print(f"rss after: {rss_kib(server.pid) / 1024:.1f} MiB, peak (VmHWM) {rss_kib(server.pid, 'VmHWM') / 1024:.1f} MiB")
        finally:
            server.terminate()
            server.wait(timeout=20)


if __name__ == "__main__":
    main()
