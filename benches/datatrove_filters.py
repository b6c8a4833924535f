"""datatrove's four rule filters on the same English prose as benches/filters.rs.

Set-up (once): python3 -m venv /tmp/dtvenv && /tmp/dtvenv/bin/pip install 'datatrove[processing,io]==0.10.1' 'spacy==3.8.*'
Run:           /tmp/dtvenv/bin/python benches/datatrove_filters.py

Each filter is built with its defaults and its filter() called on every
document, one process, as in ../shared/conformance/README.md.
"""
import pathlib
import time

import pyarrow.parquet as pq
from datatrove.data import Document
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "prose"
FILES = ["en_abc_news", "en_linux_kernel_docs", "en_python_docs", "en_speeches"]

texts = []
for f in FILES:
    texts += [t for t in pq.read_table(ROOT / f"{f}.parquet", columns=["text"])["text"].to_pylist() if t]
mb = sum(len(t.encode()) for t in texts) / 1e6
print(f"English prose: {mb:.1} MB of text, {len(texts)} documents, one process")

filters = [GopherRepetitionFilter(), GopherQualityFilter(), C4QualityFilter(), FineWebQualityFilter()]
# Warm spaCy up so that its load time is not counted.
filters[1].filter(Document(text="warm up " * 10, id="w"))
total = 0.0
for flt in filters:
    start = time.perf_counter()
    kept = 0
    for i, t in enumerate(texts):
        r = flt.filter(Document(text=t, id=str(i)))
        kept += r is True
    secs = time.perf_counter() - start
    total += secs
    print(f"{type(flt).__name__:<24} {secs:8.2f} s {mb / secs:8.2f} MB/s  kept {kept}")
print(f"{'four filters':<24} {total:8.2f} s {mb / total:8.2f} MB/s")
