#!/usr/bin/env python3
"""Installs and removes N distinct builds of the echo fixture plugin in a
running gateway's plugin directory (each through POST /v1/plugins/reload,
checked by its SHA-256) and prints the gateway's RSS and memory-map count
before, after the builds are gone, and after a quiet pause.

usage: plugin-churn.py CARILLON_BINARY ECHO_WASM [N]"""
import hashlib, json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.request

binary, echo, n = sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 60
ADMIN = "adm-churn-0123456789abcdef"
work = tempfile.mkdtemp(prefix="carillon-churn-")
plugins = os.path.join(work, "plugins")
os.makedirs(plugins)
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
with open(os.path.join(work, "carillon.toml"), "w") as f:
    f.write(f"""[server]
listen = "127.0.0.1:{port}"
data_dir = "{work}/data"
plugin_dir = "{plugins}"
watch_plugins = false

[auth]
admin_token = "{ADMIN}"

[[auth.ingest]]
name = "app"
token = "ing-churn-0123456789abcdef"
""")
proc = subprocess.Popen([binary, "serve", "-c", os.path.join(work, "carillon.toml")],
                        stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)

def call(method, path):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 headers={"Authorization": f"Bearer {ADMIN}"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)

def sample():
    rss = 0
    with open(f"/proc/{proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    with open(f"/proc/{proc.pid}/maps") as f:
        maps = sum(1 for _ in f)
    return rss, maps

for _ in range(600):
    try:
        call("GET", "/v1/plugins"); break
    except Exception:
        time.sleep(0.1)
base = open(echo, "rb").read()
# Warm up: one build in and out, so first-use allocations are not counted.
def cycle(i):
    data = base + bytes([0, 5, 1, ord("n")]) + i.to_bytes(3, "little")
    path = os.path.join(plugins, f"echo-{i}.wasm")
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.rename(path + ".tmp", path)
    sha = hashlib.sha256(data).hexdigest()
    listed = call("POST", "/v1/plugins/reload")
    echo_status = [p for p in listed["items"] if p["name"] == "echo"]
    assert echo_status and echo_status[0]["sha256"] == sha, echo_status
    os.remove(path)
    listed = call("POST", "/v1/plugins/reload")
    assert not [p for p in listed["items"] if p["name"] == "echo" and p.get("status") == "loaded"]
for i in range(3):
    cycle(1_000_000 + i)
time.sleep(2)
before = sample(); shutil.copy(f"/proc/{proc.pid}/maps", "/tmp/churn-maps-before")
t0 = time.time()
for i in range(n):
    cycle(i)
after = sample()
time.sleep(15)
settled = sample(); shutil.copy(f"/proc/{proc.pid}/maps", "/tmp/churn-maps-after")
print(json.dumps({"builds": n, "seconds": round(time.time() - t0 - 15, 1),
                  "rss_mib": {"before": round(before[0], 1), "after": round(after[0], 1), "after_15s": round(settled[0], 1)},
                  "maps": {"before": before[1], "after": after[1], "after_15s": settled[1]}}))
proc.terminate(); proc.wait()
shutil.rmtree(work)
