"""Load test of the plate reader's HTTP server: concurrent clients post JPEGs to POST /predict.

Run from the repository root, as a module (it imports params.py from there):

    python -m scripts.load_test --start                  # start `platereader serve` on a free port
                                                          # with out/mlem/plate_reader, test it
    python -m scripts.load_test --url http://127.0.0.1:8080 --pid <server pid>   # a running server

Each client is a thread with its own keep-alive HTTP/1.1 connection (http.client) that posts
multipart uploads back to back for --duration seconds (after --warmup seconds not counted). The
report gives requests, errors (any status but 200, an answer that is not {"plates": [...]}, any
connection failure), requests/s, latency percentiles, the share of answers whose best plate is the
scene's own (the server reads, not only answers), and the server's resident memory at the start
and the end (psutil if installed, else /proc/<pid>/status). The exit status is 1 if any request
failed.

Images are --size x --size JPEGs of scenes from the project's generator (platereader.synth.scenes,
default params), --images distinct ones, encoded once before the test starts so the clients spend
their time on HTTP, not on encoding.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

import numpy as np
from PIL import Image

import params
from platereader.synth.scenes import make_scene

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the server's working directory


def scene_jpegs(count: int, size: int, seed: int = 0) -> list[tuple[bytes, str]]:
    """`count` distinct JPEG scenes of size x size pixels from the project's generator (default
    GeneratorParams), each with its plate's text ("" for a scene without one): plates like those
    the reader is made for, so the test times real reads, including the re-reading of unsure
    plates, not only the rejection of non-plates."""
    images = []
    for i in range(count):
        scene = make_scene(np.random.default_rng([seed, 77, i]), params.GeneratorParams, size)
        buffer = io.BytesIO()
        Image.fromarray(scene.image).save(buffer, "JPEG", quality=85)
        images.append((buffer.getvalue(), scene.text if scene.present else ""))
    return images


def best_text(payload: bytes) -> str:
    """The best plate's text in an answer {"plates": [...]} ("" when it has none); ValueError if the
    payload is not such an answer."""
    answer = json.loads(payload)
    if not isinstance(answer, dict) or not isinstance(answer.get("plates"), list):
        raise ValueError("not a {\"plates\": [...]} answer")
    plates = answer["plates"]
    if plates and not (isinstance(plates[0], dict) and isinstance(plates[0].get("text"), str)):
        raise ValueError("a plate without its text")
    return plates[0]["text"] if plates else ""


def server_command() -> list[str]:
    """`platereader serve` (the console script next to this Python), else the module itself."""
    script = os.path.join(os.path.dirname(sys.executable), "platereader")
    if os.path.isfile(script):
        return [script, "serve"]
    return [sys.executable, "-m", "platereader.serving"]


def multipart(field: str, filename: str, data: bytes, content_type: str = "image/jpeg"):
    """(body, content-type header) of a multipart/form-data upload with one file field."""
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n").encode()
    body = head + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def resident_mb(pid: int | None) -> float | None:
    """Resident memory of process `pid` in MB (psutil, else /proc), None if unknown."""
    if pid is None:
        return None
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss / 1e6
    except ImportError:
        pass
    except Exception:  # noqa: BLE001 - process gone or not ours: report unknown
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        return None
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(host: str, port: int, timeout: float, process=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"error: the server exited with status {process.returncode}")
        try:
            conn = http.client.HTTPConnection(host, port, timeout=2)
            conn.request("GET", "/interface.json")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"error: no server answered on {host}:{port} within {timeout:g} s")


class Client(threading.Thread):
    def __init__(self, host, port, path, bodies, start_at, stop_at, offset):
        super().__init__(daemon=True)
        self.host, self.port, self.path = host, port, path
        self.bodies, self.start_at, self.stop_at, self.offset = bodies, start_at, stop_at, offset
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.correct = 0  # answers whose best plate is the scene's (no plate for an empty scene)

    def run(self):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        i = self.offset
        while True:
            now = time.perf_counter()
            if now >= self.stop_at:
                break
            body, content_type, text = self.bodies[i % len(self.bodies)]
            i += 1
            try:
                conn.request("POST", self.path, body=body, headers={"Content-Type": content_type})
                response = conn.getresponse()
                payload = response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                status, payload = None, str(exc).encode()
                conn.close()
                conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            done = time.perf_counter()
            if now < self.start_at:  # warm-up
                continue
            if status != 200:
                self.errors.append(f"{status}: {payload[:200]!r}")
                continue
            try:
                read = best_text(payload)
            except ValueError as exc:  # json.JSONDecodeError is one
                self.errors.append(f"200 with a bad answer ({exc}): {payload[:200]!r}")
                continue
            self.latencies.append(done - now)
            self.correct += read == text
        conn.close()


def run(host, port, path, images, clients, duration, warmup, pid):
    bodies = [(*multipart("file", f"scene{i}.jpg", data), text) for i, (data, text) in enumerate(images)]
    rss_start = resident_mb(pid)
    t0 = time.perf_counter()
    start_at, stop_at = t0 + warmup, t0 + warmup + duration
    threads = [Client(host, port, path, bodies, start_at, stop_at, k * 7) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rss_end = resident_mb(pid)
    latencies = np.array(sorted(x for t in threads for x in t.latencies)) * 1000
    errors = [e for t in threads for e in t.errors]
    ok = len(latencies)
    pct = (lambda q: float(np.percentile(latencies, q))) if ok else (lambda q: float("nan"))
    return {
        "clients": clients, "duration_s": duration, "requests": ok + len(errors), "errors": len(errors),
        "first_errors": errors[:5], "requests_per_s": (ok + len(errors)) / duration,
        "read_correctly": sum(t.correct for t in threads) / ok if ok else float("nan"),
        "latency_ms": {"p50": pct(50), "p90": pct(90), "p99": pct(99),
                       "max": float(latencies[-1]) if ok else float("nan")},
        "server_rss_mb": {"start": rss_start, "end": rss_end},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="server URL (default: %(default)s)")
    parser.add_argument("--pid", type=int, help="server process id, for its memory figures")
    parser.add_argument("--start", action="store_true",
                        help="start `platereader serve` on a free loopback port and stop it after")
    parser.add_argument("--model", default="out/mlem/plate_reader", help="with --start: MLEM model")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds measured (default: %(default)s)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds not measured first (default: %(default)s)")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (default: %(default)s)")
    parser.add_argument("--images", type=int, default=32, help="distinct images (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.duration <= 0 or args.warmup < 0 or args.size < 8 or args.images < 1:
        parser.error("need --clients >= 1, --duration > 0, --warmup >= 0, --size >= 8, --images >= 1")

    process = None
    if args.start:
        host, port = "127.0.0.1", free_port()
        process = subprocess.Popen(
            [*server_command(), "--host", host, "--port", str(port), "--model", args.model,
             "--no-access-log"], cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        pid = process.pid
    else:
        url = urllib.parse.urlsplit(args.url)
        if url.scheme != "http" or not url.hostname:
            parser.error(f"--url {args.url}: expected http://HOST:PORT")
        host, port, pid = url.hostname, url.port or 80, args.pid
    try:
        wait_ready(host, port, timeout=60, process=process)
        images = scene_jpegs(args.images, args.size)
        report = run(host, port, "/predict", images, args.clients, args.duration, args.warmup, pid)
    finally:
        if process is not None:
            process.terminate()
            try:
                _, stderr = process.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                _, stderr = process.communicate()
            if process.returncode not in (0, -15):
                sys.stderr.write(stderr.decode(errors="replace")[-2000:])

    report["image"] = f"{args.size}x{args.size} JPEG, {np.mean([len(d) for d, _ in images]) / 1e3:.1f} kB"
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        lat, rss = report["latency_ms"], report["server_rss_mb"]
        fmt = lambda v: "unknown" if v is None else f"{v:.0f} MB"  # noqa: E731
        print(f"{report['requests']} requests from {args.clients} clients in {args.duration:g} s "
              f"({report['image']}): {report['errors']} errors, {report['requests_per_s']:.1f} requests/s")
        print(f"latency ms: p50 {lat['p50']:.1f}  p90 {lat['p90']:.1f}  p99 {lat['p99']:.1f}  max {lat['max']:.1f}")
        print(f"answers with the scene's own plate first: {100 * report['read_correctly']:.1f} %")
        print(f"server resident memory: start {fmt(rss['start'])}, end {fmt(rss['end'])}")
        for e in report["first_errors"]:
            print(f"  error {e}")
    return 1 if report["errors"] or report["requests"] == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
