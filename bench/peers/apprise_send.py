#!/usr/bin/env python3
"""Benchmark peer: Apprise, a notification library with no queue of its own.

Sends --count notifications through Apprise's Python API to --url (a json://
URL: Apprise 2.2 POSTs {"version","title","message","attachments","type"} to
http://host:port/path, a new connection per message, no throttle for json://).
Each body carries the marker `bseq=<i>;t=<unix_ns>`, t taken just before
notify() is called; the title carries no marker. Sequential by default; with
--concurrency K, K threads each use their own Apprise object. notify() returns
only once the POST is answered, so send_seconds is also delivery time. Prints:
  {"peer":"apprise","version":...,"sent":N,"errors":E,"send_seconds":S}
Run with the virtualenv's python (see setup.sh).
"""
import argparse, itertools, json, logging, sys, threading, time

import apprise


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True, help="e.g. json://127.0.0.1:PORT/apprise")
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--concurrency", type=int, default=1)
    a = ap.parse_args()
    logging.disable(logging.WARNING)  # per-failure warnings would dominate the run; we count errors

    seqs = itertools.count()  # next() on it is atomic under the GIL
    errors = [0] * a.concurrency

    objs = [apprise.Apprise() for _ in range(a.concurrency)]
    if not all(o.add(a.url) for o in objs):
        sys.exit(f"apprise rejected the URL {a.url!r}")

    def worker(k):
        ap_obj = objs[k]
        while (i := next(seqs)) < a.count:
            if not ap_obj.notify(title="carillon bench", body=f"bench message {i} bseq={i};t={time.time_ns()}"):
                errors[k] += 1

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(a.concurrency)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    send_seconds = time.monotonic() - t0
    err = sum(errors)
    print(json.dumps({"peer": "apprise", "version": apprise.__version__, "sent": a.count - err, "errors": err,
                      "send_seconds": round(send_seconds, 6)}), flush=True)
    return 0 if err == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
