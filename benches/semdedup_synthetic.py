"""Semantic dedup (`cluster` → `dedup_semantic`) on synthetic embeddings:
N unit vectors of 384 dimensions around C random centres, a share of them
planted near-copies (cosine about 0.995) of another document. `sluice run`
reads them as a column, clusters them (k) and removes near-duplicates
within each cluster. Reports wall time, peak memory (RSS), the documents
removed against the planted copies and, with `--compare`, how many of the
exact search's removals the HNSW graph finds.

    python3 -m venv /tmp/tokbench && /tmp/tokbench/bin/pip install numpy pyarrow
    cargo build --release
    /tmp/tokbench/bin/python benches/semdedup_synthetic.py [N] [k] [neighbours] [--compare]
    # defaults: 1,000,000, 100, auto; SEMDEDUP_EXTRA="hnsw_ef = 32" adds keys to the step
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLUICE = os.environ.get("SLUICE", os.path.join(REPO, "target", "release", "sluice"))
DIM = 384
CENTRES = 100
COPY_SHARE = 0.2


def write_input(work, n):
    """Files of vectors; ids `u<file>-<n>`, and `d<file>-<n>-<of>` for a
    near-copy of `u<file>-<of>`."""
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((CENTRES, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    files = 8
    per = n // files
    planted = 0
    for f in range(files):
        v = centres[rng.integers(0, CENTRES, per)] + rng.standard_normal((per, DIM)).astype(np.float32) * 0.03
        ids = [f"u{f}-{i}" for i in range(per)]
        copies = rng.random(per) < COPY_SHARE
        of = rng.integers(0, per, per)
        for i in np.nonzero(copies)[0]:
            if of[i] != i and not copies[of[i]]:
                v[i] = v[of[i]] + rng.standard_normal(DIM).astype(np.float32) * 0.005
                ids[i] = f"d{f}-{i}-{of[i]}"
                planted += 1
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        col = pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), DIM)
        pq.write_table(pa.table({"id": ids, "text": ["x"] * per, "vec": col}),
                       os.path.join(work, f"in-{f}.parquet"), row_group_size=65536)
    return planted


def run(work, k, neighbours, name):
    out = os.path.join(work, name)
    spec = os.path.join(work, f"{name}.toml")
    with open(spec, "w") as fh:
        fh.write(f"""[input]
paths = ["{work}/in-*.parquet"]
[[step]]
op = "embed"
column = "vec"
dim = {DIM}
[[step]]
op = "cluster"
k = {k}
[[step]]
op = "dedup_semantic"
eps = 0.05
neighbours = "{neighbours}"
{os.environ.get("SEMDEDUP_EXTRA", "")}
[output]
dir = "{out}"
""")
    rep = os.path.join(work, f"{name}.time")
    start = time.time()
    r = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rep, SLUICE, "run", spec, "--force"],
                       check=True, capture_output=True, text=True)
    secs = time.time() - start
    peak = int(open(rep).read().split()[-1]) / 1024
    removed = set()
    exc = os.path.join(out, "excluded")
    for f in sorted(os.listdir(exc)):
        if f.endswith(".parquet"):
            removed.update(pq.read_table(os.path.join(exc, f), columns=["id"]).column("id").to_pylist())
    phases = [l for l in r.stdout.splitlines() if l.startswith("phase ") or "dedup" in l or "cluster" in l]
    return secs, peak, removed, phases


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if len(args) > 0 else 1_000_000
    k = int(args[1]) if len(args) > 1 else 100
    neighbours = args[2] if len(args) > 2 else "auto"
    work = tempfile.mkdtemp(prefix="semdedup-bench-")
    try:
        bench(work, n, k, neighbours)
    finally:
        # Several GB a run (input, work files, output with the vectors).
        shutil.rmtree(work, ignore_errors=True)


def bench(work, n, k, neighbours):
    planted = write_input(work, n)
    secs, peak, removed, phases = run(work, k, neighbours, neighbours)
    print("\n".join(phases))
    print(f"{n} vectors x {DIM}, k = {k}, neighbours = {neighbours}: {secs:.1f} s, peak RSS {peak:.0f} MB "
          f"(vectors: {n * DIM * 4 / 1e6:.0f} MB); removed {len(removed)}; "
          f"planted near-copies {planted} (each should cost its group one document; `keep` decides which)")
    if "--compare" in sys.argv:
        esecs, epeak, exact, _ = run(work, k, "exact", "exact")
        found = len(removed & exact)
        print(f"exact: {esecs:.1f} s, peak RSS {epeak:.0f} MB, removed {len(exact)}; "
              f"{neighbours} found {found} of them ({100 * found / max(1, len(exact)):.2f}%), "
              f"{len(removed - exact)} not removed by exact")


if __name__ == "__main__":
    main()
