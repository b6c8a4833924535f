"""`pii` throughput against the rule filters and datatrove's PIIFormatter,
on the same text, one core.

Set-up (once): python3 -m venv /tmp/dtvenv && /tmp/dtvenv/bin/pip install 'datatrove[io]==0.10.1' pyarrow regex
Run:           cargo build --release && /tmp/dtvenv/bin/python benches/pii_peers.py

The text: English prose of ../shared/data/prose (ABC News, kernel docs,
Python docs, speeches) and Chinese news (People's Daily 1998), as one
Parquet file; a made-up benchmark of 2,000 rows (40 words of every tenth
document) for `decontaminate`. sluice runs each step alone through the engine (Parquet in and
out, `--workers 1`); "op only" subtracts the run with no step. datatrove's
PIIFormatter (e-mails and public IPv4 only, its defaults) is called on every
document in one process. Each figure is the best of three.
"""
import pathlib
import subprocess
import tempfile
import time

import pyarrow as pa
import pyarrow.parquet as pq

REPO = pathlib.Path(__file__).resolve().parent.parent
PROSE = REPO.parent / "shared" / "data" / "prose"
FILES = ["en_abc_news", "en_linux_kernel_docs", "en_python_docs", "en_speeches", "zh_peoples_daily_1998"]
SLUICE = REPO / "target" / "release" / "sluice"

texts, ids = [], []
for f in FILES:
    t = pq.read_table(PROSE / f"{f}.parquet", columns=["id", "text"])
    for i, x in zip(t["id"].to_pylist(), t["text"].to_pylist()):
        if x:
            ids.append(i)
            texts.append(x)
mb = sum(len(t.encode()) for t in texts) / 1e6
print(f"{mb:.1f} MB of text, {len(texts)} documents (English and Chinese prose), one core")

STEPS = {
    "none": "",
    "pii (all kinds, replace)": '[[step]]\nop = "pii"\n',
    "pii (email + ip, as datatrove)": '[[step]]\nop = "pii"\nkinds = ["email", "ip"]\n',
    "gopher_quality": '[[step]]\nop = "gopher_quality"\n',
    "c4_quality": '[[step]]\nop = "c4_quality"\n',
    "fineweb_quality": '[[step]]\nop = "fineweb_quality"\n',
    "decontaminate (2,000 rows, drop)": '[[step]]\nop = "decontaminate"\n'
    'benchmarks = { bench = "bench.jsonl" }\nfields = ["question", "answer"]\n',
}

with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    (tmp / "in").mkdir()
    pq.write_table(pa.table({"id": ids, "text": texts}), tmp / "in" / "prose.parquet")
    # A benchmark of 2,000 rows: 40 words of every 10th document (so that
    # some documents hit), question and answer.
    import json

    with open(tmp / "bench.jsonl", "w") as f:
        for k, t in enumerate(texts[::10][:2000]):
            w = t.split()
            f.write(json.dumps({"id": k, "question": " ".join(w[:25]), "answer": " ".join(w[25:40])}) + "\n")
    seconds = {}
    for name, step in STEPS.items():
        spec = tmp / "spec.toml"
        spec.write_text(f'[input]\npaths = ["in"]\n[output]\ndir = "out"\n{step}')
        best = None
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run(
                [SLUICE, "run", spec, "--workers", "1", "--force", "-q"],
                cwd=tmp,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            s = time.perf_counter() - start
            best = s if best is None else min(best, s)
        seconds[name] = best
    base = seconds["none"]
    print(f"\n| step | s | MB/s | op only s | op only MB/s |\n| --- | ---: | ---: | ---: | ---: |")
    for name, s in seconds.items():
        if name == "none":
            print(f"| (no step: read + write) | {s:.2f} | {mb / s:.1f} | | |")
            continue
        op = s - base
        print(f"| {name} | {s:.2f} | {mb / s:.1f} | {op:.2f} | {mb / op:.1f} |")

try:
    from datatrove.data import Document
    from datatrove.pipeline.formatters import PIIFormatter
except ImportError:
    print("\ndatatrove is not installed: see the set-up line at the top")
    raise SystemExit(0)

fmt = PIIFormatter()
best = None
for _ in range(3):
    start = time.perf_counter()
    changed = 0
    for i, t in enumerate(texts):
        out = fmt.format(t)
        changed += out != t
    s = time.perf_counter() - start
    best = s if best is None else min(best, s)
print(f"\ndatatrove PIIFormatter.format (email + public IPv4): {best:.2f} s, {mb / best:.1f} MB/s, {changed} documents changed")
