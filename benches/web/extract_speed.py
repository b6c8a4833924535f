#!/usr/bin/env python3
"""Main-text extraction from a .warc.gz, WARC reading included, one core:
sluice's `extract` against Python trafilatura (read with warcio, as
datatrove's WarcReader does) and Resiliparse (read with FastWARC, as DCLM
does), on the same file, side by side, and the quality of each output on
trafilatura's own snippets.

Data: /work/shared/data/web/html_pages.warc.gz (the 990 pages of
html_pages.parquet as response records, gzip per record) or --warc; the
snippets come from html_pages.parquet (--pages), matched by URL.

- sluice: `target/release/sluice run <spec> --workers 1 --force --quiet`,
  the spec [input] = the WARC, one `extract` step (favour = "balanced", the
  default), Parquet out; a fresh process, wall clock. Its start-up, the
  Parquet writing and the run's bookkeeping count.
- trafilatura: warcio ArchiveIterator over the response records, the body
  (de-chunked) decoded as trafilatura.extract does (trafilatura's
  decode_file), then extract(include_comments=False), as trafilatura's own
  evaluation and the article-extraction-benchmark run it. In-process: the
  Python start-up and imports do not count.
- resiliparse: FastWARC ArchiveIterator (responses, HTTP parsed), its
  detect_encoding + bytes_to_str, then extract_plain_text(main_content=True)
  (DCLM's call). In-process, as above.

Every tool is pinned to one CPU (--cpu); each is run --repeat times and the
fastest pass counts. pages/s = response records read / seconds.

Set-up: target/web-venv (benches/web/requirements.txt). Run from the repository root after
`cargo build --release`:
  target/web-venv/bin/python benches/web/extract_speed.py --repeat 3
"""

import argparse
import json
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import peers  # this folder: pin_to_one_core, decoders, trafilatura options (sets thread env vars)
import extract_eval

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"


def run_sluice(binary: str, warc: Path, work: Path) -> tuple:
    out = work / "sluice-out"
    seconds = peers.sluice_run(binary, f'[input]\npaths = ["{warc}"]\nformat = "warc"\n\n'
                               f'[[step]]\nop = "extract"\n\n[output]\ndir = "{out}"\n', work)
    stats = json.loads((out / "stats.json").read_text())
    return seconds, peers.parquet_column(out, "url", "text"), stats["input"]["docs"]


def run_trafilatura(warc: Path) -> tuple:
    from trafilatura import extract
    from warcio.archiveiterator import ArchiveIterator
    texts, n = {}, 0
    t = time.perf_counter()
    with open(warc, "rb") as f:
        for rec in ArchiveIterator(f):
            if rec.rec_type != "response":
                continue
            n += 1
            url = rec.rec_headers.get_header("WARC-Target-URI")
            body = rec.content_stream().read()
            texts[url] = extract(peers.trafilatura_decode(body), **peers.TRAFILATURA_OPTS)
    return time.perf_counter() - t, texts, n


def run_resiliparse(warc: Path) -> tuple:
    from fastwarc.warc import ArchiveIterator, WarcRecordType
    from resiliparse.extract.html2text import extract_plain_text
    texts, n = {}, 0
    t = time.perf_counter()
    with open(warc, "rb") as f:
        for rec in ArchiveIterator(f, record_types=WarcRecordType.response, parse_http=True):
            n += 1
            url = rec.headers.get("WARC-Target-URI")
            body = rec.reader.read()
            texts[url] = extract_plain_text(peers.resiliparse_decode(body), main_content=True)
    return time.perf_counter() - t, texts, n


def key(url: str) -> str:
    return url.strip().replace(" ", "%20")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warc", type=Path, default=SHARED / "data/web/html_pages.warc.gz")
    ap.add_argument("--pages", type=Path, default=SHARED / "data/web/html_pages.parquet")
    ap.add_argument("--tool", nargs="+", default=["sluice", "trafilatura", "resiliparse"],
                    choices=["sluice", "trafilatura", "resiliparse"])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--cpu", type=int, default=0)
    ap.add_argument("--sluice", default=str(REPO / "target/release/sluice"))
    args = ap.parse_args()
    peers.pin_to_one_core(args.cpu)  # children (sluice) inherit the pin
    rows = extract_eval.load_pages(str(args.pages))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for tool in args.tool:
            best = None
            for _ in range(args.repeat):
                if tool == "sluice":
                    r = run_sluice(args.sluice, args.warc, Path(tmp))
                elif tool == "trafilatura":
                    r = run_trafilatura(args.warc)
                else:
                    r = run_resiliparse(args.warc)
                if best is None or r[0] < best[0]:
                    best = r
            seconds, texts, n = best
            # Pages a tool dropped (sluice: extract:empty) score as empty outputs.
            # The set's URLs: nine end in a space the WARC header lost, one has a
            # space warcio writes as %20.
            texts = {key(u): t for u, t in texts.items()}
            res = extract_eval.score(rows, [texts.get(key(r["url"])) for r in rows])
            missing = sum(1 for r in rows if key(r["url"]) not in texts)
            if missing:
                print(f"{tool}: {missing} pages of the set not found by URL in its output "
                      "(dropped or renamed); they score as empty", file=sys.stderr)
            ver = {"sluice": "0.1.0"}.get(tool) or version(tool)
            results.append((tool, ver, n, seconds, res["overall"]))
    base = next((r for r in results if r[0] == "trafilatura"), None)
    print("| tool | version | pages | seconds | pages/s (1 core) | × trafilatura | P | R | F1 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for tool, ver, n, s, o in results:
        ratio = f"{(n / s) / (base[2] / base[3]):.1f}" if base else "-"
        print(f"| {tool} | {ver} | {n} | {s:.2f} | {n / s:.1f} | {ratio} | "
              f"{o['precision']:.4f} | {o['recall']:.4f} | {o['f1']:.4f} |")


if __name__ == "__main__":
    main()
