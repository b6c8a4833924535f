"""Static embeddings (backend `static`): `sluice run` with the `embed` step
against the wordllama package itself (`WordLlamaInference.embed(norm=True)`,
its default batch of 64), on the same ~53 MB of real text (../shared/data:
the prose files and the web pages) and the same model
(../shared/models/wordllama-l2-256), each end to end: read the Parquet
files, embed, write Parquet with the vectors. Checks that the two give the
same vectors (cosine per document). Best of three runs, each its own process.

    python3 -m venv /tmp/tokbench && /tmp/tokbench/bin/pip install wordllama==0.4.0.post1 pyarrow
    cargo build --release
    /tmp/tokbench/bin/python benches/embed_peers.py
"""

import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLUICE = os.path.join(REPO, "target", "release", "sluice")
MODEL = os.path.join(REPO, "..", "shared", "models", "wordllama-l2-256")
SHARED = os.path.join(REPO, "..", "shared", "data")
FILES = [os.path.join(SHARED, "prose", f) for f in sorted(os.listdir(os.path.join(SHARED, "prose")))] + [
    os.path.join(SHARED, "web", "trafilatura_pages.parquet")
]
RUNS = 3

PEER = r"""
import json, os, sys
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from safetensors.numpy import load_file
from tokenizers import Tokenizer
from wordllama.inference import WordLlamaInference

files, model, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
table = load_file(os.path.join(model, "l2_supercat_256.safetensors"))["embedding.weight"]
wl = WordLlamaInference(table, Tokenizer.from_file(os.path.join(model, "l2_supercat_tokenizer_config.json")))
for i, p in enumerate(files):
    parts = []
    for b in pq.ParquetFile(p).iter_batches(batch_size=4096, columns=["id", "text"]):
        texts = [t or "" for t in b.column(1).to_pylist()]
        v = wl.embed(texts, norm=True)
        col = pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1), pa.float32()), v.shape[1])
        parts.append(pa.table({"id": b.column(0), "embedding": col}))
    pq.write_table(pa.concat_tables(parts), f"{out}/part-{i:05}.parquet", compression="zstd")
"""


def best_of(f):
    best = None
    for _ in range(RUNS):
        start = time.time()
        f()
        t = time.time() - start
        best = t if best is None else min(best, t)
    return best


def vectors(d):
    import pyarrow.parquet as pq
    out = {}
    for f in sorted(os.listdir(d)):
        if f.endswith(".parquet"):
            t = pq.read_table(os.path.join(d, f), columns=["id", "embedding"])
            out.update(zip(map(str, t.column("id").to_pylist()), t.column("embedding").to_pylist()))
    return out


def main():
    import numpy as np
    import pyarrow.parquet as pq
    mb = sum(len(t.encode()) for p in FILES for t in pq.read_table(p, columns=["text"]).column("text").to_pylist()
             if t) / 1e6
    docs = sum(pq.ParquetFile(p).metadata.num_rows for p in FILES)
    work = tempfile.mkdtemp(prefix="embed-bench-")
    rows = []
    for workers in (1, os.cpu_count()):
        out = os.path.join(work, f"sluice-{workers}")
        spec = os.path.join(work, "run.toml")
        with open(spec, "w") as f:
            f.write(f"""[input]
paths = {json.dumps(FILES)}
[[step]]
op = "embed"
backend = "static"
model = "{MODEL}"
[output]
dir = "{out}"
excluded = false
""")
        args = [SLUICE, "run", spec, "-q", "--force", "--workers", str(workers)]
        secs = best_of(lambda: subprocess.run(args, check=True, stdout=subprocess.DEVNULL))
        rows.append((f"sluice, {workers} worker{'s' if workers > 1 else ''}", secs, workers))
    out = os.path.join(work, "wordllama")
    os.makedirs(out)
    cmd = [sys.executable, "-c", PEER, json.dumps(FILES), MODEL, out]
    secs = best_of(lambda: subprocess.run(cmd, check=True, capture_output=True,
                                          env=dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")))
    rows.append(("wordllama (Python, numpy)", secs, 1))

    ours, theirs = vectors(os.path.join(work, "sluice-1")), vectors(out)
    cos = [float(np.dot(ours[k], theirs[k])) for k in ours if k in theirs]
    print(f"{mb:.1f} MB, {docs} documents, best of {RUNS}")
    print(f"{'embedder':<28} {'seconds':>8} {'docs/s':>9} {'docs/s/core':>12} {'MB/s':>7}")
    for name, s, cores in rows:
        print(f"{name:<28} {s:>8.2f} {docs / s:>9.0f} {docs / s / cores:>12.0f} {mb / s:>7.1f}")
    print(f"\n{len(cos)} documents in both: cosine min {min(cos):.6f}, "
          f"{sum(c < 0.999 for c in cos)} below 0.999")


if __name__ == "__main__":
    main()
