"""Python peer extractors (trafilatura, resiliparse) for the main-text
extraction benchmarks in this folder, and the one-core timing loop they share.

Imported by extract_eval.py and aeb_eval.py (Python puts a script's own folder
on the path). Each peer is a pair of functions:

  decode(bytes) -> str   the peer's own way of turning served bytes into text,
                         copied from how trafilatura's evaluation feeds it
                         (adbar/trafilatura tests/evaluate.py, eval_common.py)
  extract(str) -> str|None   parse + main-text extraction, the part we time

so decoding is timed apart from extraction, and the extraction timings compare
with a Rust extractor that is handed text it has already decoded.
"""

import os

# One core, one thread: set before any peer library is imported (both are
# single-threaded anyway; this keeps BLAS/OpenMP/rayon-backed helpers honest).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import subprocess  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402
from importlib.metadata import version  # noqa: E402
from typing import Callable, Optional  # noqa: E402


# --- decoding ---------------------------------------------------------------

def trafilatura_decode(html: bytes) -> str:
    """What trafilatura.extract(bytes) does first: decompress if the bytes are
    gzip/zstd/brotli/deflate, try UTF-8, else guess with (faust-)cchardet when
    installed and charset_normalizer, else UTF-8 with U+FFFD replacement.
    It never reads <meta charset> or HTTP headers."""
    from trafilatura.utils import decode_file
    return decode_file(html)


def resiliparse_decode(html: bytes) -> str:
    """As trafilatura's evaluate.py runs resiliparse: uchardet-based
    detect_encoding (WHATWG names), then bytes_to_str, which falls back to
    UTF-8 / cp1252 on failure."""
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding
    return bytes_to_str(html, detect_encoding(html))


def utf8_decode(html: bytes) -> str:
    """Plain UTF-8, as the article-extraction-benchmark reads its pages."""
    return html.decode("utf-8")


# --- extraction --------------------------------------------------------------

# The settings trafilatura's own evaluation (tests/eval_common.py EXTRACT_OPTS)
# and the article-extraction-benchmark (extractors/run_trafilatura.py) use:
# library defaults except comments off. `fast=False` (the default) keeps the
# readability/justext fallbacks, as in the "trafilatura" row of their tables.
TRAFILATURA_OPTS = {"include_comments": False, "include_tables": True, "include_formatting": False}


def _trafilatura(**kwargs) -> Callable[[str], Optional[str]]:
    from trafilatura import extract
    return partial(extract, **kwargs)


def _resiliparse(**kwargs) -> Callable[[str], Optional[str]]:
    from resiliparse.extract.html2text import extract_plain_text
    # DCLM (mlfoundations/dclm tools/commoncrawl/process_common_crawl_w_ray.py)
    # calls extract_plain_text(html_str, main_content=True) with every other
    # argument at its default (preserve_formatting=True, list_bullets=True,
    # alt_texts=True, links/form_fields/noscript=False, comments=True,
    # post_meta=True); it decodes with bytes.decode("utf-8") and drops any
    # record that fails. trafilatura's evaluate.py does the same call on an
    # HTMLTree; passing the str lets extract_plain_text parse it itself.
    return partial(extract_plain_text, **kwargs)


@dataclass
class Peer:
    library: str                        # distribution name, for the version
    decode: Callable[[bytes], str]
    make: Callable[[], Callable[[str], Optional[str]]]   # lazy: imports on first use
    note: str = ""

    @property
    def version(self) -> str:
        return version(self.library)


PEERS = {
    "trafilatura": Peer(
        "trafilatura", trafilatura_decode, partial(_trafilatura, **TRAFILATURA_OPTS),
        "extract(include_comments=False) — as trafilatura's own eval and the AEB run it"),
    "trafilatura-precision": Peer(
        "trafilatura", trafilatura_decode, partial(_trafilatura, favor_precision=True, **TRAFILATURA_OPTS),
        "favor_precision=True"),
    "trafilatura-recall": Peer(
        "trafilatura", trafilatura_decode, partial(_trafilatura, favor_recall=True, **TRAFILATURA_OPTS),
        "favor_recall=True"),
    "trafilatura-fast": Peer(
        "trafilatura", trafilatura_decode, partial(_trafilatura, fast=True, **TRAFILATURA_OPTS),
        "fast=True (no readability/justext fallback)"),
    "trafilatura-bare": Peer(
        "trafilatura", trafilatura_decode, _trafilatura,
        "extract(html) with every library default (include_comments=True)"),
    "resiliparse": Peer(
        "resiliparse", resiliparse_decode, partial(_resiliparse, main_content=True),
        "extract_plain_text(html, main_content=True) — DCLM's call"),
}


# --- one core, timed ----------------------------------------------------------

def pin_to_one_core(cpu: int) -> Optional[int]:
    """Pin this process to one CPU (cpu < 0: leave affinity alone). Returns the CPU."""
    if cpu < 0 or not hasattr(os, "sched_setaffinity"):
        return None
    os.sched_setaffinity(0, {cpu})
    return cpu


def sluice_run(binary, spec_text: str, work: Path) -> tuple:
    """Writes spec_text to work/spec.toml and times one `sluice run` of it:
    one worker, a fresh process (start-up included). Returns wall seconds."""
    spec = work / "spec.toml"
    spec.write_text(spec_text)
    t = time.perf_counter()
    subprocess.run([str(binary), "run", str(spec), "--workers", "1", "--force", "--quiet"], check=True)
    return time.perf_counter() - t


def parquet_column(folder: Path, key: str, value: str, pattern: str = "part-*.parquet") -> dict:
    """{row[key]: row[value]} over the Parquet files of a sluice output folder."""
    import pyarrow.parquet as pq
    out = {}
    for f in sorted(folder.glob(pattern)):
        t = pq.read_table(f)
        if key in t.column_names and value in t.column_names:
            for r in t.select([key, value]).to_pylist():
                out[r[key]] = r[value]
    return out


@dataclass
class Timed:
    """Outputs of one peer over a list of pages, with per-page timings (s)."""
    texts: list = field(default_factory=list)        # str | None per page
    errors: list = field(default_factory=list)       # (index, repr) of exceptions
    decode_s: list = field(default_factory=list)
    extract_s: list = field(default_factory=list)    # best over repeats, per page
    pass_s: list = field(default_factory=list)       # total extraction time of each pass


def run_peer(peer: Peer, pages: list, repeat: int = 1, decoded: Optional[list] = None) -> Timed:
    """Decode each page (timed once), then extract `repeat` times (timed);
    the per-page extraction time kept is the minimum over the repeats, which
    filters out noise from other processes on a shared machine. An exception
    counts as an empty output (as trafilatura's evaluation treats a crash).
    `decoded`, if given, replaces the peer's own decoding (already str)."""
    fn = peer.make()
    fn("<html><body><p>warm up: imports and one-time setup</p></body></html>")
    out = Timed()
    texts = []
    for i, page in enumerate(pages):
        if decoded is not None:
            texts.append(decoded[i])
            out.decode_s.append(0.0)
            continue
        t0 = time.perf_counter()
        texts.append(peer.decode(page))
        out.decode_s.append(time.perf_counter() - t0)
    best = [float("inf")] * len(pages)
    for r in range(repeat):
        total = 0.0
        for i, text in enumerate(texts):
            t0 = time.perf_counter()
            try:
                result = fn(text)
            except Exception as exc:  # noqa: BLE001 — a crash is a miss, not a stop
                result = None
                if r == 0:
                    out.errors.append((i, f"{type(exc).__name__}: {exc}"))
            dt = time.perf_counter() - t0
            total += dt
            best[i] = min(best[i], dt)
            if r == 0:
                out.texts.append(result)
        out.pass_s.append(total)
    out.extract_s = best
    return out


def timing_summary(t: Timed, html_bytes: int) -> dict:
    n = len(t.extract_s)
    ext = sum(t.extract_s)
    dec = sum(t.decode_s)
    return {
        "pages": n,
        "extract_s": ext,
        "decode_s": dec,
        "pages_per_s": n / ext if ext else None,
        "pages_per_s_with_decode": n / (ext + dec) if ext + dec else None,
        "mb_per_s": html_bytes / 1e6 / ext if ext else None,
        "pass_s": t.pass_s,
        "slowest_ms": sorted((1e3 * s for s in t.extract_s), reverse=True)[:5],
    }
