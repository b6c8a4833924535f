"""k-means (`cluster`) on synthetic embeddings: N unit vectors of 384
dimensions drawn around C random centres (Gaussian noise), written as a
Parquet column; `sluice run` reads them (`embed` with `column`), fits k
centroids on its hash sample and assigns every document. Reports wall
time, peak memory (RSS) and the purity of the clusters against the true
centres.

    python3 -m venv /tmp/tokbench && /tmp/tokbench/bin/pip install numpy pyarrow
    cargo build --release
    /tmp/tokbench/bin/python benches/cluster_synthetic.py [N] [k] [n_init]   # default 1,000,000, 100, 1
    # CLUSTER_EXTRA="max_iter = 5" adds keys to the step; --assign runs the
    # assignment both ways (`assign = "exact"`, then `"hnsw"`) on the same
    # centroids and reports each one's time and how many documents agree.
"""

import collections
import os
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


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if len(args) > 0 else 1_000_000
    k = int(args[1]) if len(args) > 1 else 100
    n_init = int(args[2]) if len(args) > 2 else 1
    work = tempfile.mkdtemp(prefix="cluster-bench-")
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((k, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    files = 8
    per = n // files
    for f in range(files):
        truth = rng.integers(0, k, per)
        v = centres[truth] + rng.standard_normal((per, DIM)).astype(np.float32) * 0.03
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        ids = [f"c{t}-{f}-{i}" for i, t in enumerate(truth)]
        col = pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), DIM)
        pq.write_table(pa.table({"id": ids, "text": ["x"] * per, "vec": col}),
                       os.path.join(work, f"in-{f}.parquet"), row_group_size=65536)
    mb = sum(os.path.getsize(os.path.join(work, f"in-{f}.parquet")) for f in range(files)) / 1e6
    if "--assign" in sys.argv:
        return compare_assign(work, k, n_init)
    out, spec = write_spec(work, "out", k, n_init, "")
    start = time.time()
    rep = os.path.join(work, "time.txt")
    r = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rep, SLUICE, "run", spec, "--force"],
                       check=True, capture_output=True, text=True)
    secs = time.time() - start
    peak = int(open(rep).read().split()[-1]) / 1024
    # Purity: the share of documents whose cluster's majority centre is theirs.
    pairs = collections.Counter()
    for f in sorted(os.listdir(out)):
        if f.endswith(".parquet"):
            t = pq.read_table(os.path.join(out, f), columns=["id", "cluster_id"])
            for i, c in zip(t.column("id").to_pylist(), t.column("cluster_id").to_pylist()):
                pairs[(c, i.split("-")[0])] += 1
    best = collections.defaultdict(int)
    for (c, _), m in pairs.items():
        best[c] = max(best[c], m)
    purity = sum(best.values()) / sum(pairs.values())
    print(r.stdout)
    print(f"{n} vectors x {DIM} (input {mb:.0f} MB Parquet), k = {k}, n_init = {n_init}: {secs:.1f} s, peak RSS {peak:.0f} MB, "
          f"purity {purity:.4f} (vectors in memory would be {n * DIM * 4 / 1e6:.0f} MB)")


def write_spec(work, name, k, n_init, extra):
    """The run's spec (embed the column, cluster; CLUSTER_EXTRA and `extra`
    added to the step): (output folder, spec path)."""
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
n_init = {n_init}
{extra}
{os.environ.get("CLUSTER_EXTRA", "")}
[output]
dir = "{out}"
excluded = false
""")
    return out, spec


def compare_assign(work, k, n_init):
    got = {}
    for assign in ["exact", "hnsw"]:
        out, spec = write_spec(work, assign, k, n_init, f'assign = "{assign}"')
        r = subprocess.run([SLUICE, "run", spec, "--force"], check=True, capture_output=True, text=True)
        phase = [l for l in r.stdout.splitlines() if l.startswith("phase s1")]
        ids = {}
        for f in sorted(os.listdir(out)):
            if f.endswith(".parquet"):
                t = pq.read_table(os.path.join(out, f), columns=["id", "cluster_id"])
                ids.update(zip(t.column("id").to_pylist(), t.column("cluster_id").to_pylist()))
        got[assign] = ids
        print(f"assign = {assign}: {phase}")
    same = sum(1 for i, c in got["exact"].items() if got["hnsw"].get(i) == c)
    print(f"k = {k}: {same} of {len(got['exact'])} documents ({100 * same / len(got['exact']):.2f}%) "
          f"get the same centroid from the graph as from the exact scan")


if __name__ == "__main__":
    main()
