"""Semantic dedup on the paraphrase pairs of ../shared/data/dedup/
mrpc_pairs.parquet (MRPC: 5,799 sentence pairs labelled paraphrase or
not). Every sentence becomes a document; `sluice run` embeds them with the
static wordllama model, clusters them (k-means) and runs `dedup_semantic`
(`keep = "first"`) at several `eps`. A pair is found when its two sentences
end in the same duplicate group (`dup_cluster`). Recall: paraphrase pairs
found / paraphrase pairs; precision: paraphrase pairs found / labelled
pairs found (pairs of sentences MRPC does not pair are not counted).
Each `eps` runs twice, with exact neighbours and with the HNSW graph
(`neighbours = "hnsw"` in every cluster); the last column is the share of
the exact search's pairs that the graph finds too.

    /tmp/tokbench/bin/pip install pyarrow     # any Python with pyarrow
    cargo build --release
    /tmp/tokbench/bin/python benches/semdedup_mrpc.py
"""

import os
import subprocess
import sys
import tempfile

import pyarrow as pa
import pyarrow.parquet as pq

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLUICE = os.path.join(REPO, "target", "release", "sluice")
PAIRS = os.path.join(REPO, "..", "shared", "data", "dedup", "mrpc_pairs.parquet")
MODEL = os.path.join(REPO, "..", "shared", "models", "wordllama-l2-256")
K = int(sys.argv[1]) if len(sys.argv) > 1 else 20


def main():
    t = pq.read_table(PAIRS).to_pylist()
    texts = {}
    for r in t:
        texts[r["id1"]] = r["text1"]
        texts[r["id2"]] = r["text2"]
    work = tempfile.mkdtemp(prefix="semdedup-")
    ids = sorted(texts)
    pq.write_table(pa.table({"id": ids, "text": [texts[i] for i in ids]}), os.path.join(work, "s.parquet"))
    pos = sum(r["label"] == 1 for r in t)
    print(f"{len(ids)} sentences, {len(t)} pairs ({pos} paraphrases); k = {K}, wordllama-l2-256")
    print(f"{'eps':>6} {'removed':>8} {'pairs found':>12} {'paraphrases':>12} {'recall':>7} {'precision':>10} {'hnsw':>14}")
    for eps in (0.02, 0.05, 0.1, 0.15, 0.2, 0.3):
        exact = pairs_found(work, t, eps, "exact")
        graph = pairs_found(work, t, eps, "hnsw")
        found, removed = exact
        both = len({(r["id1"], r["id2"]) for r in found} & {(r["id1"], r["id2"]) for r in graph[0]})
        tp = sum(r["label"] == 1 for r in found)
        recall = tp / pos
        precision = tp / len(found) if found else float("nan")
        share = f"{both}/{len(found)}"
        print(f"{eps:>6} {removed:>8} {len(found):>12} {tp:>12} {recall:>7.3f} {precision:>10.3f} {share:>14}")


def pairs_found(work, t, eps, neighbours):
    out = os.path.join(work, f"out-{eps}-{neighbours}")
    spec = os.path.join(work, "run.toml")
    with open(spec, "w") as f:
        f.write(f"""[input]
paths = ["{work}/s.parquet"]
[[step]]
op = "embed"
model = "{MODEL}"
[[step]]
op = "cluster"
k = {K}
[[step]]
op = "dedup_semantic"
eps = {eps}
keep = "first"
neighbours = "{neighbours}"
[output]
dir = "{out}"
""")
    subprocess.run([SLUICE, "run", spec, "-q", "--force"], check=True, stdout=subprocess.DEVNULL)
    group = {}
    removed = 0
    for d in (out, os.path.join(out, "excluded")):
        for f in os.listdir(d):
            if f.endswith(".parquet"):
                tab = pq.read_table(os.path.join(d, f), columns=["id", "dup_cluster"])
                group.update(zip(tab.column("id").to_pylist(), tab.column("dup_cluster").to_pylist()))
                if d != out:
                    removed += tab.num_rows
    found = [r for r in t if group.get(r["id1"]) == group.get(r["id2"]) and r["id1"] != r["id2"]]
    return found, removed


if __name__ == "__main__":
    main()
