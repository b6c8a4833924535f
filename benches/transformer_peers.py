"""Transformer embeddings (backend `transformer`, candle): `sluice run` with
`embed` against sentence-transformers on PyTorch (CPU), the same model
(../shared/models/all-MiniLM-L6-v2, 256-token truncation, mean pooling,
L2-normalised) on the same documents, both on all cores, each end to end
(read Parquet, embed, write Parquet). Checks that the vectors agree
(cosine per document).

    python3 -m venv /tmp/stbench && /tmp/stbench/bin/pip install sentence-transformers==3.3.1 pyarrow
    cargo build --release
    /tmp/stbench/bin/python benches/transformer_peers.py [DOCS]   # default 1000 news articles
    # SLUICE_BATCH (8) and PEER_BATCH (16): documents per forward pass
"""

import json
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
MODEL = os.path.join(REPO, "..", "shared", "models", "all-MiniLM-L6-v2")
DATA = os.path.join(REPO, "..", "shared", "data", "prose", "en_abc_news.parquet")
# Documents per forward pass, each tool at its fastest here: sluice's
# batches run in parallel and its attention is materialised (batch x
# length^2), so small ones win; sentence-transformers was fastest at 16
# (500 articles: 18.7 s at 4, 18.3 at 8, 17.8-18.0 at 16, 18.7 at 32, 24.9 at 64).
SLUICE_BATCH = int(os.environ.get("SLUICE_BATCH", "8"))
PEER_BATCH = int(os.environ.get("PEER_BATCH", "16"))

PEER = r"""
import sys, torch
import pyarrow as pa, pyarrow.parquet as pq
from sentence_transformers import SentenceTransformer
src, model, out = sys.argv[1:4]
torch.set_num_threads(int(sys.argv[4]))
m = SentenceTransformer(model, device="cpu")
m.max_seq_length = 256
t = pq.read_table(src, columns=["id", "text"])
v = m.encode([x or "" for x in t.column("text").to_pylist()], batch_size=int(sys.argv[5]), normalize_embeddings=True)
col = pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1), pa.float32()), v.shape[1])
pq.write_table(pa.table({"id": t.column("id"), "embedding": col}), out)
"""


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    work = tempfile.mkdtemp(prefix="transformer-bench-")
    src = os.path.join(work, "in.parquet")
    t = pq.read_table(DATA, columns=["id", "text"]).slice(0, n)
    pq.write_table(t, src)
    mb = sum(len(x.encode()) for x in t.column("text").to_pylist() if x) / 1e6
    cores = os.cpu_count()

    spec = os.path.join(work, "run.toml")
    out = os.path.join(work, "sluice")
    with open(spec, "w") as fh:
        fh.write(f"""[input]
paths = ["{src}"]
[[step]]
op = "embed"
backend = "transformer"
model = "{os.path.abspath(MODEL)}"
batch_size = {SLUICE_BATCH}
[output]
dir = "{out}"
""")
    start = time.time()
    subprocess.run([SLUICE, "run", spec, "--force", "-q"], check=True, capture_output=True)
    ours = time.time() - start

    peer_out = os.path.join(work, "peer.parquet")
    start = time.time()
    subprocess.run([sys.executable, "-c", PEER, src, os.path.abspath(MODEL), peer_out, str(cores), str(PEER_BATCH)],
                   check=True)
    peer = time.time() - start

    a = {}
    for f in sorted(os.listdir(out)):
        if f.endswith(".parquet"):
            tb = pq.read_table(os.path.join(out, f), columns=["id", "embedding"])
            for i, v in zip(tb.column("id").to_pylist(), tb.column("embedding").to_pylist()):
                a[i] = np.array(v)
    tb = pq.read_table(peer_out)
    cos = [float(np.dot(a[i], np.array(v))) for i, v in zip(tb.column("id").to_pylist(), tb.column("embedding").to_pylist())]
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({
        "docs": n, "sluice_batch": SLUICE_BATCH, "peer_batch": PEER_BATCH, "text_mb": round(mb, 2), "cores": cores,
        "sluice_s": round(ours, 1), "sluice_docs_per_s": round(n / ours, 1),
        "sentence_transformers_s": round(peer, 1), "sentence_transformers_docs_per_s": round(n / peer, 1),
        "min_cosine": round(min(cos), 6), "ratio": round(peer / ours, 2),
    }, indent=1))


if __name__ == "__main__":
    main()
