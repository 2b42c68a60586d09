#!/usr/bin/env python3
"""Benchmark peer: Prometheus Alertmanager as a webhook notifier.

Starts its own Alertmanager (cluster off, fresh storage, free port) whose only
receiver is a webhook to --receiver, with every alert in its own group
(group_by ['...'], group_wait 0s), then hands it --count distinct alerts through
POST /api/v2/alerts in batches of --batch. It does not wait for deliveries (the
benchmark's receiver counts them); --linger keeps Alertmanager alive after the
send so they can arrive, and SIGTERM ends the linger early. Prints one JSON line:
  {"peer":"alertmanager","version":...,"sent":N,"errors":E,"send_seconds":S}

Marker placement: each alert carries `bseq=<i>;t=<unix_ns>` (t taken just
before its batch is posted) in its generatorURL only. Alertmanager 0.25's
webhook body repeats labels in groupLabels/commonLabels/groupKey and annotations
in commonAnnotations, so a marker there would appear 3-4 times per body;
generatorURL is per alert and appears exactly once.
Stdlib only; run with the system python3.
"""
import argparse, json, os, shutil, signal, socket, subprocess, sys, tempfile, threading, time
import urllib.error, urllib.request

CONFIG = """\
route:
  receiver: bench
  group_by: ['...']
  group_wait: 0s
  group_interval: {group_interval}
  repeat_interval: 100h  # < 120h data retention, else a warning
receivers:
  - name: bench
    webhook_configs:
      - url: '{url}'
        send_resolved: false
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, timeout=10):
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--receiver", required=True, help="webhook URL, e.g. http://127.0.0.1:PORT/alertmanager")
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--workdir", help="kept after the run (default: a temporary directory, removed)")
    ap.add_argument("--binary", default="/usr/bin/prometheus-alertmanager")
    ap.add_argument("--linger", type=float, default=0.0, help="seconds to keep Alertmanager running after sending")
    ap.add_argument("--group-interval", default="1m",
                    help="only paces re-notification of a changed group; every group here gets one alert")
    a = ap.parse_args()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    workdir = a.workdir or tempfile.mkdtemp(prefix="carillon-bench-am-")
    data = os.path.join(workdir, "data")
    shutil.rmtree(data, ignore_errors=True)  # stale nflog would dedup same-label alerts
    os.makedirs(data)
    cfg = os.path.join(workdir, "alertmanager.yml")
    with open(cfg, "w") as f:
        f.write(CONFIG.format(url=a.receiver, group_interval=a.group_interval))
    version = subprocess.run([a.binary, "--version"], capture_output=True, text=True).stdout.split()[2]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(os.path.join(workdir, "alertmanager.log"), "wb")
    proc = subprocess.Popen(
        [a.binary, f"--config.file={cfg}", f"--storage.path={data}", f"--web.listen-address=127.0.0.1:{port}",
         "--cluster.listen-address=", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT)
    sent = errors = 0
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"alertmanager did not become ready; see {log.name}")
            try:
                if http("GET", base + "/-/ready", timeout=1)[0] == 200:
                    break
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)

        t0 = time.monotonic()
        for start in range(0, a.count, a.batch):
            if stop.is_set():
                break
            seqs = range(start, min(start + a.batch, a.count))
            now = time.time_ns()
            alerts = [{"labels": {"alertname": "CarillonBench", "bseq": str(i)},
                       "annotations": {"summary": f"carillon bench alert {i}"},
                       "generatorURL": f"http://carillon-bench/?bseq={i};t={now}"} for i in seqs]
            try:
                http("POST", base + "/api/v2/alerts", json.dumps(alerts).encode())
                sent += len(seqs)
            except (urllib.error.URLError, OSError) as e:
                errors += len(seqs)
                print(f"alertmanager.py: batch at {start} failed: {e}", file=sys.stderr)
        send_seconds = time.monotonic() - t0

        print(json.dumps({"peer": "alertmanager", "version": version, "sent": sent, "errors": errors,
                          "send_seconds": round(send_seconds, 6)}), flush=True)
        stop.wait(a.linger)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if not a.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
