#!/usr/bin/env python3
"""The FineWeb recipe end to end, .warc.gz to Parquet, one core: datatrove
against `sluice run pipelines/fineweb.toml`, on the same WARC, side by side.

Data: /work/shared/data/web/html_pages.warc.gz (990 real pages, Common-Crawl
style: warcinfo, then request + response per page, gzip per record), or --warc.

datatrove (huggingface/datatrove examples/fineweb.py, the code that made
FineWeb), run with LocalPipelineExecutor(tasks=1, workers=1):
  WarcReader → URLFilter → Trafilatura(favour_precision=True) →
  LanguageFilter(en, 0.65) → GopherRepetitionFilter → GopherQualityFilter →
  C4QualityFilter(filter_no_terminal_punct=False) → FineWebQualityFilter →
  ParquetWriter (zstd, sluice's default codec; the example writes JSONL),
  each filter with a JsonlWriter for what it removes, as in the example;
then, timed apart (--no-minhash skips it), its 4-stage MinHash dedup with
FineWeb's settings (5-grams, 14 buckets x 8 hashes, 64-bit) on that output.

sluice: `target/release/sluice run <spec> --workers 1 --force --quiet` on a
copy of pipelines/fineweb.toml with [input] paths and [output] dir replaced
(`--set` only reaches steps, so the copy carries the two changes; relative
paths in a spec are taken from the current directory, the repository root).

Each run is a fresh process (imports and model loads count, as for a CLI),
pinned to one CPU (--cpu; its children inherit the pin: datatrove's
extraction runs in a sandbox child process that the parent waits on);
wall-clock and CPU time (user + sys of the process and its children) and peak
RSS come from wait4. pages/s = response records in the input / seconds.
Documents in / kept / dropped per step come from each tool's own stats
(datatrove's logs/stats.json, sluice's <out>/stats.json); kept URLs of the
two are compared.

Offline: nothing is downloaded at run time (datatrove's defaults would).
  - LanguageFilter's FT176LID fetches lid.176.bin from dl.fbaipublicfiles.com
    into the HF assets cache; its MODEL_URL is pointed at a local model
    instead (--lid; default /work/shared/models/lid.176.bin if present, else
    the lid.176.ftz beside it or in fixtures/models/: the compressed model
    sluice's lang step uses, so both tools read the same model).
  - URLFilter's block lists ship inside the wheel (assets/
    url_filterblacklistsv0_3_0.tar.gz, unpacked on first use into the HF
    assets cache; banned words / subwords / soft words as .txt assets): no
    download. tldextract (which it constructs with defaults) would fetch the
    Public Suffix List: TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS="" disables that and
    it uses the snapshot in its package.
  - HF_ASSETS_CACHE and TLDEXTRACT_CACHE point into --work; HF_HUB_OFFLINE=1.
  - English word splitting in the Gopher / C4 / FineWeb filters is spaCy's
    blank("en") tokenizer: rules only, no model download.
  One-time set-up (unpacking the URL lists, copying the model into the cache)
  runs once before the timed runs, as a warm deployment has it; loading them
  into each run's memory is timed.

Set-up (once; python-magic needs the system's libmagic):
  python3 -m venv target/datatrove-venv
  target/datatrove-venv/bin/pip install -r benches/web/requirements-datatrove.txt
Run (from the repository root; sluice needs `cargo build --release` first):
  target/datatrove-venv/bin/python benches/web/fineweb_peers.py --payload-type --repeat 3
  target/datatrove-venv/bin/python benches/web/fineweb_peers.py --tool datatrove
"""

import argparse
import contextlib
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
import zlib
from importlib.metadata import version
from pathlib import Path

import peers  # this folder: pin_to_one_core (sets the one-thread env vars first)

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
DEFAULT_WARC = SHARED / "data/web/html_pages.warc.gz"
DEFAULT_WORK = REPO / "target/fineweb_peers"
LID_CANDIDATES = [SHARED / "models/lid.176.bin", SHARED / "models/lid.176.ftz", REPO / "fixtures/models/lid.176.ftz"]

# The recipe's steps in order, named as sluice names its ops; datatrove's
# stats name blocks by their display name (emoji and all), matched by substring.
STEPS = ["read", "url_filter", "extract", "lang", "gopher_repetition", "gopher_quality",
         "c4_quality", "fineweb_quality", "dedup_minhash"]
DATATROVE_NAMES = {"Warc": "read", "Url-filter": "url_filter", "Trafilatura": "extract",
                   "Language ID": "lang", "Gopher Repetition": "gopher_repetition",
                   "Gopher Quality": "gopher_quality", "C4 Quality": "c4_quality",
                   "FineWeb Quality": "fineweb_quality"}


# --- datatrove (run in a child process: `--child filter|minhash|prepare`) ----------

def offline_env(work: Path) -> dict:
    """Environment that keeps datatrove, huggingface_hub and tldextract off the network."""
    return {
        "HF_HUB_OFFLINE": "1",
        "HF_ASSETS_CACHE": str(work / "cache/hf-assets"),     # URL lists unpacked, LID model copied here
        "TLDEXTRACT_CACHE": str(work / "cache/tldextract"),
        "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "",             # no PSL download: tldextract's bundled snapshot
        "TOKENIZERS_PARALLELISM": "false",
    }


def datatrove_filter_pipeline(warc_dir: str, out: str, lid: str, timeout: float) -> list:
    """examples/fineweb.py's first executor, with local paths."""
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                            GopherRepetitionFilter, LanguageFilter, URLFilter)
    from datatrove.pipeline.readers import WarcReader
    from datatrove.pipeline.writers import JsonlWriter, ParquetWriter

    def removed(step):
        return JsonlWriter(f"{out}/removed/{step}")   # gzip JSONL, as the example's exclusion writers

    # The example calls LanguageFilter() bare: in datatrove 0.2 (FineWeb's
    # release) that meant languages=(english,); in 0.10 it means None (keep
    # any language above the threshold), so English is asked for by name.
    lang = LanguageFilter(languages=["en"], language_threshold=0.65,
                          exclusion_writer=JsonlWriter(f"{out}/removed/2_non_english",
                                                       output_filename="${language}/${rank}.jsonl.gz"))
    # Offline: FT176LID.MODEL_URL is dl.fbaipublicfiles.com/.../lid.176.bin; a
    # local path is "downloaded" (copied) into the HF assets cache instead.
    lang.model.MODEL_URL = lid
    return [
        WarcReader(warc_dir, glob_pattern="*.warc*"),
        URLFilter(exclusion_writer=removed("1_url")),
        # timeout: wall seconds per page before it is skipped (stat `timeout`);
        # 1 is 0.10's default, 0.2's was 0.1 (--timeout).
        Trafilatura(favour_precision=True, timeout=timeout),
        lang,
        GopherRepetitionFilter(exclusion_writer=removed("3_gopher_rep")),
        GopherQualityFilter(exclusion_writer=removed("4_gopher_qual")),
        C4QualityFilter(filter_no_terminal_punct=False, exclusion_writer=removed("5_c4")),
        FineWebQualityFilter(exclusion_writer=removed("6_fineweb_qual")),
        ParquetWriter(f"{out}/output", compression="zstd"),
    ]


def datatrove_minhash_stages(out: str) -> list:
    """examples/fineweb.py's MinHash part on the filter output: (name, pipeline, tasks).
    The example's TokensCounter (a GPT-2 tokenizer from the Hub) is left out."""
    from datatrove.pipeline.dedup import (MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter,
                                          MinhashDedupSignature)
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.writers import JsonlWriter, ParquetWriter
    from datatrove.utils.hashing import HashConfig

    config = MinhashConfig(hash_config=HashConfig(precision=64), num_buckets=14, hashes_per_bucket=8, n_grams=5)
    m = f"{out}/minhash"

    def reader():
        return ParquetReader(f"{out}/output")

    return [
        ("signatures", [reader(), MinhashDedupSignature(output_folder=f"{m}/signatures", config=config)], 1),
        ("buckets", [MinhashDedupBuckets(input_folder=f"{m}/signatures", output_folder=f"{m}/buckets",
                                         config=config)], config.num_buckets),
        ("cluster", [MinhashDedupCluster(input_folder=f"{m}/buckets", output_folder=f"{m}/remove_ids",
                                         config=config)], 1),
        ("filter", [reader(), MinhashDedupFilter(input_folder=f"{m}/remove_ids",
                                                 exclusion_writer=JsonlWriter(f"{m}/removed")),
                    ParquetWriter(f"{m}/deduped_output", compression="zstd")], 1),
    ]


def child(args) -> None:
    """What one timed datatrove process does."""
    from datatrove.executor import LocalPipelineExecutor

    out = args.out
    if args.child == "prepare":
        # One-time, untimed: unpack URLFilter's lists and copy the LID model
        # into the cache (both keyed by a .completed file), as a warm install has them.
        pipeline = datatrove_filter_pipeline(args.warc_dir, out, args.lid, args.timeout)
        pipeline[1].download_data()
        assert pipeline[3].model.model is not None
        return
    if args.child == "filter":
        LocalPipelineExecutor(pipeline=datatrove_filter_pipeline(args.warc_dir, out, args.lid, args.timeout),
                              tasks=1, workers=1, logging_dir=f"{out}/logs/filter").run()
        return
    stage_s = {}
    for name, pipeline, tasks in datatrove_minhash_stages(out):
        t0 = time.perf_counter()
        LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1,
                              logging_dir=f"{out}/logs/minhash-{name}").run()
        stage_s[name] = time.perf_counter() - t0
    with open(f"{out}/minhash_stage_s.json", "w") as f:
        json.dump(stage_s, f)


# --- running and measuring ------------------------------------------------------------

def timed(cmd: list, log: Path, env=None, cwd=REPO) -> dict:
    """Runs cmd to completion; wall seconds, CPU seconds (user + sys of it and
    its waited-for children) and peak RSS, from wait4."""
    with open(log, "w") as logf:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        sys.exit(f"{' '.join(map(str, cmd))} failed ({p.returncode}); log {log}:\n{tail}")
    return {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss_mb": ru.ru_maxrss / 1024}


def best_of(runs: list) -> dict:
    """The run with the least wall time, with every run's wall time beside it."""
    best = dict(min(runs, key=lambda r: r["wall_s"]))
    best["all_wall_s"] = [round(r["wall_s"], 3) for r in runs]
    return best


def count_pages(warc: Path) -> dict:
    """WARC records by type (warcio): the pages are the `response` records."""
    from warcio.archiveiterator import ArchiveIterator
    counts = {}
    with open(warc, "rb") as f, contextlib.redirect_stderr(io.StringIO()):  # its notes on odd URIs
        for record in ArchiveIterator(f):
            counts[record.rec_type] = counts.get(record.rec_type, 0) + 1
    return counts


def with_payload_type(warc: Path, dest: Path) -> Path:
    """A copy of a gzip-per-record WARC whose response records carry
    `WARC-Identified-Payload-Type: text/html`, as Common Crawl's do (its own
    detection of the payload's type). datatrove's WarcReader reads that header
    and, without it, asks libmagic instead, which calls many real pages
    `application/javascript` or `text/xml` and drops them uncounted. Every
    other byte of each record is kept; only the gzip members are rewritten."""
    data = warc.read_bytes()
    out = bytearray()
    while data:
        d = zlib.decompressobj(wbits=31)
        record = d.decompress(data)
        data = d.unused_data
        if b"WARC-Type: response\r\n" in record.split(b"\r\n\r\n", 1)[0]:
            record = record.replace(b"WARC-Type: response\r\n",
                                    b"WARC-Type: response\r\nWARC-Identified-Payload-Type: text/html\r\n", 1)
        c = zlib.compressobj(6, zlib.DEFLATED, 31)
        out += c.compress(record) + c.flush()
    dest.write_bytes(out)
    return dest


def stage_input(warc: Path, work: Path, copies: int, payload_type: bool) -> list:
    """The input folder both tools read: `copies` links to the WARC (or to its
    copy with payload types)."""
    d = work / "input"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    if payload_type:
        warc = with_payload_type(warc, work / f"payload-type-{warc.name}")
    paths = []
    for i in range(copies):
        p = d / f"{i:03d}-{warc.name}"
        p.symlink_to(warc.resolve())
        paths.append(p)
    return paths


def run_datatrove(args, work: Path) -> dict:
    out = work / "datatrove"
    env = dict(os.environ, **offline_env(work))
    me = [sys.executable, str(Path(__file__).resolve())]
    common = ["--warc-dir", str(work / "input"), "--lid", str(args.lid), "--timeout", str(args.timeout)]
    timed(me + ["--child", "prepare", "--out", str(work / "datatrove-prepare")] + common,
          work / "datatrove-prepare.log", env)
    runs, mh_runs = [], []
    for _ in range(args.repeat):
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        runs.append(timed(me + ["--child", "filter", "--out", str(out)] + common,
                          work / "datatrove-filter.log", env))
        if not args.no_minhash:
            mh_runs.append(timed(me + ["--child", "minhash", "--out", str(out)] + common,
                                 work / "datatrove-minhash.log", env))
    res = {"tool": "datatrove", "version": version("datatrove"),
           "versions": {p: version(p) for p in ("trafilatura", "fasttext-numpy2-wheel", "spacy", "tldextract")},
           "filter": best_of(runs), "steps": datatrove_steps(out / "logs/filter/stats.json"),
           "kept_urls": parquet_urls(out / "output")}
    # LanguageFilter counts its drops without a reason; its exclusion writer
    # files them by predicted language (the best label: `en` there is English
    # at or below the threshold, sluice's lang:low_score).
    lang = res["steps"].get("lang")
    by_lang = {d.name: sum(1 for f in d.glob("*.jsonl.gz") for _ in gzip.open(f))
               for d in sorted((out / "removed/2_non_english").glob("*")) if d.is_dir()}
    if lang and sum(by_lang.values()) == sum(lang["dropped"].values()):
        lang["dropped"] = {("low_score" if k == "en" else k): n for k, n in by_lang.items()}
    if mh_runs:
        mh = best_of(mh_runs)
        mh["stage_s"] = json.loads((out / "minhash_stage_s.json").read_text())
        mh["kept_urls"] = parquet_urls(out / "minhash/deduped_output")
        mh["kept"] = len(mh["kept_urls"])
        n_in = len(res["kept_urls"])
        res["steps"]["dedup_minhash"] = {"in": n_in, "kept": mh["kept"],
                                         "dropped": {"duplicate": n_in - mh["kept"]}}
        res["minhash"] = mh
    return res


def datatrove_steps(path: Path) -> dict:
    """Per step: documents in, kept, dropped by reason, seconds (from datatrove's stats.json)."""
    steps = {}
    for block in json.loads(path.read_text()):
        key = next((k for n, k in DATATROVE_NAMES.items() if n in block["name"]), None)
        if key is None:
            continue
        s = block["stats"]
        num = lambda v: v["total"] if isinstance(v, dict) else v  # noqa: E731
        if key == "read":
            kept = num(s.get("documents", 0))
            entry = {"in": kept, "kept": kept, "dropped": {}}
        else:
            # Filters count total / forwarded / dropped / dropped_<reason>; the
            # extractor also timeout / clean_error / broken_process (skipped,
            # not counted in `dropped`) and `dropped` for an empty result.
            total = num(s.get("total", 0))
            kept = num(s.get("forwarded", 0))
            reasons = {k.removeprefix("dropped_"): num(v) for k, v in s.items() if k.startswith("dropped_")}
            for k in ("timeout", "clean_error", "broken_process"):
                if k in s:
                    reasons[k] = num(s[k])
            if key == "extract" and "dropped" in s:
                reasons["empty"] = num(s["dropped"])
            elif num(s.get("dropped", 0)) > sum(reasons.values()):   # LanguageFilter gives no reason
                reasons["unnamed"] = num(s["dropped"]) - sum(reasons.values())
            entry = {"in": total, "kept": kept, "dropped": reasons}
        entry["s"] = block["time_stats"].get("total", 0.0) if block.get("time_stats") else 0.0
        steps[key] = entry
    return steps


def parquet_urls(folder: Path, column: str = "url") -> list:
    """URLs of the documents in the Parquet files directly in `folder`
    (datatrove keeps it in the `metadata` struct, sluice as a column)."""
    import pyarrow.parquet as pq
    urls = []
    for f in sorted(folder.glob("*.parquet")):
        t = pq.read_table(f)
        if column in t.column_names:
            urls += t.column(column).to_pylist()
        elif "metadata" in t.column_names:
            urls += [m.get(column) if m else None for m in t.column("metadata").to_pylist()]
        else:
            sys.exit(f"{f}: no `{column}` column nor `metadata` struct; columns {t.column_names}")
    return urls


def toml_value(v) -> str:
    """A TOML value (inline form) for what tomllib read."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)     # a JSON string is a TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    return v.isoformat()  # dates and times


def derived_spec(spec: Path, paths: list, out_dir: Path, dest: Path) -> Path:
    """`spec` with [input] paths and [output] dir replaced, written to `dest`."""
    with open(spec, "rb") as f:
        s = tomllib.load(f)
    s.setdefault("input", {}).pop("sources", None)
    s["input"]["paths"] = [str(p) for p in paths]
    s.setdefault("output", {})["dir"] = str(out_dir)
    lines = [f"# {spec.relative_to(REPO) if spec.is_relative_to(REPO) else spec}, "
             "input paths and output dir replaced by benches/web/fineweb_peers.py"]
    for key, table in s.items():
        for t in (table if isinstance(table, list) else [table]):
            lines.append(f"\n[[{key}]]" if isinstance(table, list) else f"\n[{key}]")
            lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in t.items()]
    dest.write_text("\n".join(lines) + "\n")
    return dest


def run_sluice(args, work: Path, paths: list) -> dict:
    out = work / "sluice"
    binary = Path(args.sluice)
    spec = derived_spec(Path(args.spec), paths, out, work / "sluice-fineweb.toml")
    cmd = [str(binary), "run", str(spec), "--workers", "1", "--force", "--quiet"]
    runs = []
    for _ in range(args.repeat):
        shutil.rmtree(out, ignore_errors=True)
        runs.append(timed(cmd, work / "sluice.log"))
    ver = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.split()
    stats = json.loads((out / "stats.json").read_text())
    steps = {}
    for s in stats["steps"]:
        key = s["step"].split(":", 1)[-1]
        steps[key] = {"in": s["input"]["docs"], "kept": s["kept"]["docs"],
                      "dropped": {r.split(":", 1)[-1]: c["docs"] for r, c in s["dropped"].items()}}
        if s.get("skipped"):
            steps[key]["skipped"] = s["skipped"]
    return {"tool": "sluice", "version": ver[-1] if ver else "?", "command": cmd,
            "filter": best_of(runs), "steps": steps, "phases": stats.get("phases"),
            "kept_urls": parquet_urls(out)}


# --- report --------------------------------------------------------------------------

def totals(r: dict) -> dict:
    """Seconds of the filter part, of MinHash and of the whole recipe, and the
    documents left. datatrove: two timed processes. sluice: one run; its
    MinHash share is the time of its dedup_minhash phases (stats.json)."""
    f, mh = r["filter"], r.get("minhash")
    if r["tool"] == "datatrove":
        return {"filter_s": f["wall_s"], "minhash_s": mh["wall_s"] if mh else None,
                "wall_s": f["wall_s"] + (mh["wall_s"] if mh else 0.0),
                "cpu_s": f["cpu_s"] + (mh["cpu_s"] if mh else 0.0),
                "kept": mh["kept"] if mh else len(r["kept_urls"])}
    dedup = sum(p["seconds"] for p in r.get("phases") or [] if "minhash" in p["phase"])
    return {"filter_s": f["wall_s"] - dedup, "minhash_s": dedup if "dedup_minhash" in r["steps"] else None,
            "wall_s": f["wall_s"], "cpu_s": f["cpu_s"], "kept": len(r["kept_urls"])}


def table(results: list, pages: int, copies: int) -> str:
    rows = ["| tool | version | pages in | kept | filters s | MinHash s | whole recipe s | pages/s "
            "| CPU s | pages per CPU-s | peak RSS MB |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        t = totals(r)
        rss = max(r["filter"]["peak_rss_mb"], r.get("minhash", {}).get("peak_rss_mb", 0))
        rows.append("| " + " | ".join([
            r["tool"], r["version"], f"{pages}" + (f" ({copies} copies)" if copies > 1 else ""), str(t["kept"]),
            f"{t['filter_s']:.2f}", f"{t['minhash_s']:.2f}" if t["minhash_s"] is not None else "-",
            f"{t['wall_s']:.2f}", f"{pages / t['wall_s']:.1f}",
            f"{t['cpu_s']:.2f}", f"{pages / t['cpu_s']:.1f}", f"{rss:.0f}",
        ]) + " |")
    return "\n".join(rows)


def step_table(results: list) -> str:
    """Documents in → kept and drops by reason, per step of the recipe (and any
    other step a tool ran), one pair of columns per tool."""
    order = list(STEPS)
    for r in results:
        order += [k for k in r["steps"] if k not in order]
    rows = ["| step | " + " | ".join(f"{r['tool']} in → kept | {r['tool']} dropped" for r in results) + " |",
            "|---|" + "---:|---|" * len(results)]
    for step in order:
        cells = []
        for r in results:
            s = r["steps"].get(step)
            if s is None:
                cells += ["-", "-"]
                continue
            dropped = ", ".join(f"{k} {v}" for k, v in sorted(s["dropped"].items(), key=lambda kv: -kv[1]) if v)
            cells += [f"{s['in']} → {s['kept']}", dropped or "-"]
        if any(c != "-" for c in cells):
            rows.append(f"| {step} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def overlap(a: dict, b: dict) -> str:
    """Kept URLs of both, after MinHash where sluice's spec dedups, else after the filters."""
    dedup = any("dedup_minhash" in r["steps"] and r["tool"] == "sluice" for r in (a, b))

    def urls(r):
        return r["minhash"]["kept_urls"] if dedup and r.get("minhash") else r["kept_urls"]
    ua, ub = set(urls(a)), set(urls(b))
    both = len(ua & ub)
    union = len(ua | ub)
    return (f"kept URLs ({'after dedup' if dedup else 'after the filters'}): {a['tool']} {len(ua)}, "
            f"{b['tool']} {len(ub)}, both {both}, only {a['tool']} {len(ua - ub)}, only {b['tool']} "
            f"{len(ub - ua)}, Jaccard {both / union if union else 0:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warc", type=Path, default=DEFAULT_WARC)
    ap.add_argument("--tool", nargs="+", choices=["datatrove", "sluice"], default=["datatrove", "sluice"])
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool; the fastest counts (default 1)")
    ap.add_argument("--copies", type=int, default=1,
                    help="feed the WARC this many times (one task), to spread start-up costs (default 1)")
    ap.add_argument("--cpu", type=int, default=0, help="CPU to pin to; -1: no pinning (default 0)")
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK, help=f"scratch folder (default {DEFAULT_WORK})")
    ap.add_argument("--sluice", default=str(REPO / "target/release/sluice"))
    ap.add_argument("--spec", default=str(REPO / "pipelines/fineweb.toml"))
    ap.add_argument("--lid", type=Path, default=next((p for p in LID_CANDIDATES if p.exists()), LID_CANDIDATES[-1]),
                    help="fastText LID model for datatrove's LanguageFilter (default: lid.176.bin, else .ftz)")
    ap.add_argument("--timeout", type=float, default=1.0,
                    help="datatrove Trafilatura's per-page timeout, seconds (default 1, its default)")
    ap.add_argument("--no-minhash", action="store_true", help="skip datatrove's 4-stage MinHash part")
    ap.add_argument("--payload-type", action="store_true",
                    help="give both tools a copy of the WARC with WARC-Identified-Payload-Type: text/html on "
                         "every response, as Common Crawl's WARCs have (else datatrove sniffs with libmagic)")
    ap.add_argument("--json", type=Path, help="results file (default <work>/results.json)")
    ap.add_argument("--child", choices=["prepare", "filter", "minhash"], help=argparse.SUPPRESS)
    ap.add_argument("--warc-dir", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)

    if "sluice" in args.tool:   # before anything runs
        if not Path(args.sluice).exists():
            sys.exit(f"{args.sluice}: no release binary; `cargo build --release` first (or --tool datatrove)")
        if not Path(args.spec).exists():
            sys.exit(f"{args.spec}: no such spec (or --tool datatrove)")
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    cpu = peers.pin_to_one_core(args.cpu)
    records = count_pages(args.warc)
    pages = records.get("response", 0) * args.copies
    paths = stage_input(args.warc, work, args.copies, args.payload_type)
    print(f"{args.warc}: {records} records; {pages} pages in; cpu {cpu}", file=sys.stderr)

    results = []
    for tool in args.tool:
        print(f"running {tool} ({args.repeat} run(s))...", file=sys.stderr)
        results.append(run_datatrove(args, work) if tool == "datatrove" else run_sluice(args, work, paths))

    print(table(results, pages, args.copies))
    print()
    print(step_table(results))
    for r in results:
        if r["tool"] == "datatrove":
            print("\ndatatrove " + r["version"] + " with " + ", ".join(f"{k} {v}" for k, v in r["versions"].items()))
            print("datatrove seconds per step (its stats; the rest of the wall time is start-up): "
                  + ", ".join(f"{k} {v['s']:.2f}" for k, v in r["steps"].items() if "s" in v))
        else:
            print(f"\n{r['tool']} seconds per phase: "
                  + ", ".join(f"{p['phase']} {p['seconds']:.2f}" for p in r.get("phases") or []))
        if r.get("minhash"):
            mh = r["minhash"]
            print(f"{r['tool']} MinHash (14 x 8, 5-grams; one process, 4 executors): {mh['wall_s']:.2f} s; "
                  + ", ".join(f"{k} {v:.2f} s" for k, v in mh["stage_s"].items()))
    if len(results) == 2:
        print("\n" + overlap(*results))

    path = args.json or work / "results.json"
    with open(path, "w") as f:
        json.dump({"warc": str(args.warc), "records": records, "pages": pages, "copies": args.copies,
                   "payload_type": args.payload_type, "cpu": cpu, "lid": str(args.lid),
                   "trafilatura_timeout": args.timeout, "results": results}, f, indent=1, ensure_ascii=False)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
