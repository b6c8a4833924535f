#!/usr/bin/env python3
"""WARC reading alone, one core: sluice's WARC reader against FastWARC (the
C++-backed reader Resiliparse and DCLM use) and warcio (datatrove's), on the
same file, side by side. Each tool goes from the .warc.gz to every HTML
response's page as a decoded string:

- sluice: `target/release/sluice run <spec> --workers 1 --force --quiet`
  with no steps: its reader parses each response's HTTP head, undoes
  chunked/gzip bodies, finds the charset (BOM, HTTP, <meta>, detection) and
  decodes to UTF-8, and the run writes the rows (url, html, ...) to Parquet.
  A fresh process, wall clock: start-up and the Parquet writing count.
- fastwarc: ArchiveIterator(record_types=response, parse_http=True), the
  body read, then its detect_encoding + bytes_to_str. In-process.
- warcio: ArchiveIterator over the response records, content_stream() (de-
  chunked, decompressed), decoded as UTF-8 else cp1252 (warcio has no
  charset detection; this is the least a user must add). In-process.

Every tool is pinned to one CPU (--cpu); each is run --repeat times and the
fastest pass counts. Prints records/s and MB/s of the compressed file.

Set-up: target/web-venv (benches/web/requirements.txt). From the repository
root after `cargo build --release`:
  target/web-venv/bin/python benches/web/warc_read_speed.py --repeat 5
"""

import argparse
import json
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import peers  # this folder: pin_to_one_core, sluice_run

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"


def run_sluice(binary: str, warc: Path, work: Path) -> tuple:
    out = work / "sluice-out"
    seconds = peers.sluice_run(
        binary, f'[input]\npaths = ["{warc}"]\nformat = "warc"\n\n[output]\ndir = "{out}"\n', work)
    stats = json.loads((out / "stats.json").read_text())
    return seconds, stats["input"]["docs"]


def run_fastwarc(warc: Path) -> tuple:
    from fastwarc.warc import ArchiveIterator, WarcRecordType
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding
    n, chars = 0, 0
    t = time.perf_counter()
    with open(warc, "rb") as f:
        for rec in ArchiveIterator(f, record_types=WarcRecordType.response, parse_http=True):
            body = rec.reader.read()
            chars += len(bytes_to_str(body, detect_encoding(body)))
            n += 1
    return time.perf_counter() - t, n


def run_warcio(warc: Path) -> tuple:
    from warcio.archiveiterator import ArchiveIterator
    n, chars = 0, 0
    t = time.perf_counter()
    with open(warc, "rb") as f:
        for rec in ArchiveIterator(f):
            if rec.rec_type != "response":
                continue
            body = rec.content_stream().read()
            try:
                s = body.decode("utf-8")
            except UnicodeDecodeError:
                s = body.decode("cp1252", errors="replace")
            chars += len(s)
            n += 1
    return time.perf_counter() - t, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warc", type=Path, default=SHARED / "data/web/html_pages.warc.gz")
    ap.add_argument("--tool", nargs="+", default=["sluice", "fastwarc", "warcio"],
                    choices=["sluice", "fastwarc", "warcio"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cpu", type=int, default=0)
    ap.add_argument("--sluice", default=str(REPO / "target/release/sluice"))
    args = ap.parse_args()
    peers.pin_to_one_core(args.cpu)  # children (sluice) inherit the pin
    mb = args.warc.stat().st_size / 1e6
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for tool in args.tool:
            best = None
            for _ in range(args.repeat):
                if tool == "sluice":
                    r = run_sluice(args.sluice, args.warc, Path(tmp))
                elif tool == "fastwarc":
                    r = run_fastwarc(args.warc)
                else:
                    r = run_warcio(args.warc)
                if best is None or r[0] < best[0]:
                    best = r
            ver = {"sluice": "0.1.0"}.get(tool) or version(tool)
            results.append((tool, ver, best[1], best[0]))
    print(f"{args.warc.name}: {mb:.1f} MB compressed")
    print("| tool | version | responses | seconds | records/s (1 core) | MB/s compressed |")
    print("|---|---|---:|---:|---:|---:|")
    for tool, ver, n, s in results:
        print(f"| {tool} | {ver} | {n} | {s:.3f} | {n / s:.0f} | {mb / s:.1f} |")


if __name__ == "__main__":
    main()
