#!/usr/bin/env python3
"""Start-up time and idle memory of the release binary, against a same-run floor.

Usage: cargo build --release && python3 tools/measure-startup.py [target/release/pos-gateway] [postgres://...]

Start-up is the time from exec to the first `200` from /healthz; the floor is
`pos-gateway --version` (process start, no server). Idle RSS is read 2 s after start.
With a PostgreSQL URL (of an empty database), it measures on PostgreSQL too.
"""
import os, secrets, socket, statistics, subprocess, sys, tempfile, time

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/pos-gateway"
PG = sys.argv[2] if len(sys.argv) > 2 else None
RUNS = 10


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as c:
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return c.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


def start(database_url):
    port = free_port()
    env = dict(os.environ, POS_GATEWAY_LISTEN=f"127.0.0.1:{port}", POS_GATEWAY_DATABASE_URL=database_url,
               POS_GATEWAY_JWT_SECRET=secrets.token_hex(32), RUST_LOG="warn")
    began = time.perf_counter()
    proc = subprocess.Popen([BIN, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = began + 30
    while not healthy(port):
        if time.perf_counter() > deadline or proc.poll() is not None:
            proc.kill()
            sys.exit(f"{BIN} did not start on {database_url}")
        time.sleep(0.001)
    elapsed = (time.perf_counter() - began) * 1000
    time.sleep(2)
    rss = rss_mib(proc.pid)
    proc.terminate()
    proc.wait()
    return elapsed, rss


def floor():
    began = time.perf_counter()
    subprocess.run([BIN, "--version"], stdout=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - began) * 1000


def report(name, samples, base):
    ms = statistics.median(t for t, _ in samples)
    rss = statistics.median(r for _, r in samples)
    print(f"{name:<40} start-up {ms:6.1f} ms ({ms / base:4.1f}x floor)   idle RSS {rss:5.1f} MiB")


with tempfile.TemporaryDirectory() as tmp:
    kept = f"sqlite://{tmp}/kept.db"
    start(kept)
    base = statistics.median(floor() for _ in range(RUNS))
    print(f"{'floor: pos-gateway --version':<40} {base:6.1f} ms")
    fresh = []
    for i in range(RUNS):
        fresh.append(start(f"sqlite://{tmp}/fresh{i}.db"))
    report("SQLite, new file (runs migrations)", fresh, base)
    report("SQLite, migrated", [start(kept) for _ in range(RUNS)], base)
    if PG:
        start(PG)
        report("PostgreSQL, migrated", [start(PG) for _ in range(RUNS)], base)
