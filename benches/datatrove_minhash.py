"""datatrove's 4-stage MinHash on the same file as benches/minhash.rs, one worker.

Set-up (once): python3 -m venv /tmp/dtvenv && /tmp/dtvenv/bin/pip install 'datatrove[processing,io]==0.10.1' 'spacy==3.8.*'
Run:           /tmp/dtvenv/bin/python benches/datatrove_minhash.py [SET]   (SET: neardup_en, the default)

Its defaults: word 5-grams after its normalisation, 14 buckets x 8 hashes, 64-bit
hashes, no verification. Prints the time per stage and, against the planted
pairs, the recall of pairs at Jaccard >= 0.8 and the precision of removals
(removed document within 0.8 of some kept document of its cluster).
"""
import os
import pathlib
import shutil
import sys
import time

import pyarrow.parquet as pq
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature
from datatrove.pipeline.dedup.minhash import MinhashConfig
from datatrove.pipeline.readers import ParquetReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.utils.hashing import HashConfig

SET = sys.argv[1] if len(sys.argv) > 1 else "neardup_en"
DATA = pathlib.Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "dedup" / SET
WORK = pathlib.Path("/tmp/datatrove-minhash")
shutil.rmtree(WORK, ignore_errors=True)
config = MinhashConfig(hash_config=HashConfig(precision=64), num_buckets=14, hashes_per_bucket=8, n_grams=5)
reader = lambda: ParquetReader(str(DATA), glob_pattern="docs.parquet", text_key="text", id_key="id")
stages = [
    ("signatures", [reader(), MinhashDedupSignature(output_folder=str(WORK / "sigs"), config=config)], 1),
    ("buckets", [MinhashDedupBuckets(input_folder=str(WORK / "sigs"), output_folder=str(WORK / "buckets"), config=config)], config.num_buckets),
    ("cluster", [MinhashDedupCluster(input_folder=str(WORK / "buckets"), output_folder=str(WORK / "remove"), config=config)], 1),
    ("filter", [reader(), MinhashDedupFilter(input_folder=str(WORK / "remove"), exclusion_writer=JsonlWriter(str(WORK / "removed"), compression=None)), JsonlWriter(str(WORK / "kept"), compression=None)], 1),
]
mb = sum(len(t.encode()) for t in pq.read_table(DATA / "docs.parquet", columns=["text"])["text"].to_pylist()) / 1e6
total = 0.0
for name, pipeline, tasks in stages:
    start = time.perf_counter()
    LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1, logging_dir=str(WORK / f"logs-{name}")).run()
    secs = time.perf_counter() - start
    total += secs
    print(f"{name:<12} {secs:8.2f} s")
print(f"{'total':<12} {total:8.2f} s  {mb / total:.2f} MB/s over {mb:.1f} MB")

import json
removed = [json.loads(l)["id"] for f in (WORK / "removed").glob("*.jsonl") for l in open(f)]
pairs = pq.read_table(DATA / "pairs.parquet").to_pylist()
j = {}
for p in pairs:
    j[(p["id_a"], p["id_b"])] = j[(p["id_b"], p["id_a"])] = p["jaccard"]
removed_set = set(removed)
kept_ids = [json.loads(l)["id"] for f in (WORK / "kept").glob("*.jsonl") for l in open(f)]
kept_set = set(kept_ids)
# Precision: a removal is right when the removed document is within 0.8 of a kept one.
right = sum(1 for r in removed if any(j.get((r, k), 0) >= 0.8 for k in kept_set if (r, k) in j))
print(f"removed {len(removed)}, precision {right / max(1, len(removed)):.4f}")
