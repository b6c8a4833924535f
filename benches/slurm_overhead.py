"""The Slurm executor's overhead: pipelines/dedup.toml (exact + MinHash
dedup) over the real text in ../shared/data (prose, web pages and the
near-duplicate sets), run locally (`--workers` = all cores) and through a
Slurm on the same machine (`--executor slurm --wait`, one CPU per array
element, so as many elements run at once as there are cores). Checks that
both write the same bytes. Needs a running Slurm (`.ci/slurm-up`).

    cargo build --release
    python3 benches/slurm_overhead.py
"""

import os
import subprocess
import tempfile
import time

from common import shard_digests

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLUICE = os.environ.get("SLUICE", os.path.join(REPO, "target", "release", "sluice"))
SHARED = os.path.abspath(os.path.join(REPO, "..", "shared", "data"))
INPUT = [os.path.join(SHARED, d) for d in ("prose", "web", "dedup/neardup_en/docs.parquet", "dedup/neardup_zh/docs.parquet")]


def main():
    work = tempfile.mkdtemp(prefix="slurm-bench-")
    body = open(os.path.join(REPO, "pipelines", "dedup.toml")).read()
    paths = ", ".join(f'"{p}"' for p in INPUT)
    files = []
    for p in INPUT:
        files += [p] if os.path.isfile(p) else [os.path.join(dp, f) for dp, _, fs in os.walk(p) for f in fs]
    mb = sum(os.path.getsize(f) for f in files) / 1e6
    times = {}
    for name, extra in (("local", []), ("slurm", ["--executor", "slurm", "--wait"])):
        out = os.path.join(work, name)
        spec = os.path.join(work, f"{name}.toml")
        with open(spec, "w") as f:
            f.write(body.replace('paths = ["fixtures/quickstart"]', f"paths = [{paths}]")
                    .replace('dir = "out/dedup"', f'dir = "{out}"'))
        start = time.time()
        r = subprocess.run([SLUICE, "run", spec, "-q", "--force"] + extra, check=True, capture_output=True, text=True)
        times[name] = time.time() - start
        tasks = [l for l in r.stdout.splitlines() if l.startswith("phase ")]
    same = shard_digests(os.path.join(work, "local")) == shard_digests(os.path.join(work, "slurm"))
    print(f"dedup.toml over {mb:.0f} MB of Parquet, {len(tasks)} phases, {os.cpu_count()} cores: "
          f"local {times['local']:.1f} s, Slurm {times['slurm']:.1f} s "
          f"(+{times['slurm'] - times['local']:.1f} s); same bytes: {same}")


if __name__ == "__main__":
    main()
