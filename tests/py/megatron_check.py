#!/usr/bin/env python3
"""Check that a Megatron-LM indexed dataset (.bin + .idx) loads in Megatron's own reader.

usage: python megatron_check.py <prefix_of_our_files> <out.json>

1. Opens <prefix>.idx / <prefix>.bin with megatron.core.datasets.indexed_dataset
   .IndexedDataset (mmap=True) and dumps what Megatron sees to <out.json>.
2. Rebuilds the same token arrays with Megatron's IndexedDatasetBuilder (same dtype,
   same document boundaries) into a temp prefix, twice (add_document(), which is what
   Megatron's tools/preprocess_data.py uses, and add_item()+end_document()), and
   reports whether the rebuilt files are byte-identical to ours.

Exit status: 0 when Megatron read the files (even if not byte-identical; the JSON
says), 2 on usage error, 1 when Megatron could not open/read them ("error" in JSON).

torch: real PyTorch is used if importable. Otherwise the stand-in in
./torch_standin (next to this script) is put on sys.path: a tiny `torch` plus a light
`megatron.core` package shim; indexed_dataset.py itself is always the upstream file.
"""

import json
import os
import sys
import tempfile
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
STANDIN = os.path.join(HERE, "torch_standin")


def log(msg):
    print(f"megatron_check: {msg}", file=sys.stderr, flush=True)


def _purge(prefix):
    for name in [m for m in sys.modules if m == prefix or m.startswith(prefix + ".")]:
        del sys.modules[name]


def import_megatron():
    """Returns (indexed_dataset module, description of the torch/megatron setup)."""
    try:
        import torch  # noqa: F401  (real torch unless the stand-in is already on PYTHONPATH)
    except ImportError:
        sys.path.insert(0, STANDIN)
        import torch  # noqa: F401
    standin_torch = bool(getattr(torch, "SLUICE_STANDIN", False))
    if standin_torch:
        log(f"torch: STAND-IN ({torch.__file__}); real PyTorch not importable (or shadowed via PYTHONPATH)")
    else:
        log(f"torch: real PyTorch {torch.__version__} ({torch.__file__})")

    shim = standin_torch
    try:
        import megatron.core.datasets.indexed_dataset as idx_mod
    except Exception as e:
        if standin_torch or STANDIN in sys.path:
            raise
        # Real torch, but megatron/core/__init__.py wants more (packaging, ...):
        # use the package shim only; torch stays the real one already in sys.modules.
        log(f"full `import megatron.core` failed ({type(e).__name__}: {e}); "
            "retrying with the light megatron.core package shim")
        _purge("megatron")
        sys.path.insert(0, STANDIN)
        import megatron.core.datasets.indexed_dataset as idx_mod
        shim = True
    log(f"indexed_dataset: {idx_mod.__file__}")
    return idx_mod, {
        "torch": "stand-in" if standin_torch else f"real {torch.__version__}",
        "megatron_core_package_shim": shim,
        "indexed_dataset_file": idx_mod.__file__,
    }


def megatron_version():
    try:
        from importlib.metadata import version
        return version("megatron-core")
    except Exception:
        try:
            from megatron.core.package_info import __version__
            return __version__
        except Exception:
            return None


class _NumpyItem:
    """IndexedDatasetBuilder.add_item() only calls `tensor.numpy()`; this keeps the
    rebuild independent of torch tensor construction (and torch's uint16 support)."""

    def __init__(self, array):
        self._array = array

    def numpy(self):
        return self._array


def raw_header(idx_path):
    """Header fields parsed without Megatron, for diagnosing files Megatron rejects
    (its consistency checks are bare asserts with empty messages)."""
    import struct
    try:
        with open(idx_path, "rb") as f:
            h = f.read(34)
        magic, (version, code, seqs, docs_plus_1) = h[:9], struct.unpack("<QBQQ", h[9:34])
        return {"magic_ok": magic == b"MMIDIDX\x00\x00", "version": version, "dtype_code": code,
                "sequence_count": seqs, "document_index_count": docs_plus_1,
                "idx_size": os.path.getsize(idx_path)}
    except Exception as e:
        return {"unreadable": f"{type(e).__name__}: {e}"}


def _same(path_a, path_b):
    with open(path_a, "rb") as a, open(path_b, "rb") as b:
        return a.read() == b.read()


def main(argv):
    if len(argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    prefix, out_path = argv[1], argv[2]
    result = {"prefix": prefix}

    def write():
        with open(out_path, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")

    try:
        idx_mod, setup = import_megatron()
        result.update(setup)
        result["megatron_core_version"] = megatron_version()
        log(f"megatron-core {result['megatron_core_version']}")
        import numpy

        ds = idx_mod.IndexedDataset(prefix, multimodal=False, mmap=True)
        dtype = ds.index.dtype  # numpy scalar type, e.g. numpy.uint16
        num_sequences = len(ds)
        doc_idx = [int(x) for x in ds.document_indices]
        seqs = [numpy.array(ds[i], copy=True) for i in range(num_sequences)]
        result.update(
            num_sequences=num_sequences,
            num_documents=len(doc_idx) - 1,
            dtype=dtype.__name__,
            dtype_code=idx_mod.DType.code_from_dtype(dtype),
            sequence_lengths=[int(x) for x in ds.sequence_lengths],
            sequence_pointers=[int(x) for x in ds.index.sequence_pointers],
            document_indices=doc_idx,
            sequences=[s.tolist() for s in seqs],
        )
        # get() with offset/length and contiguous slicing must agree with ds[i].
        ok = all(numpy.array_equal(ds.get(i), s) for i, s in enumerate(seqs))
        ok = ok and all(
            numpy.array_equal(ds.get(i, offset=len(s) // 2, length=len(s) - len(s) // 2),
                              s[len(s) // 2:])
            for i, s in enumerate(seqs))
        if num_sequences:
            ok = ok and all(numpy.array_equal(a, b) for a, b in zip(ds[0:num_sequences], seqs))
        result["get_consistent"] = bool(ok)
        del ds
    except Exception as e:
        result["error"] = f"{type(e).__name__}: {e}"
        result["traceback"] = traceback.format_exc()
        result["raw_header"] = raw_header(prefix + ".idx")
        log(f"Megatron could not read {prefix}: {result['error']}")
        write()
        return 1

    # Rebuild with Megatron's writer: same dtype, same document boundaries.
    docs = [list(range(doc_idx[d], doc_idx[d + 1])) for d in range(len(doc_idx) - 1)]
    with tempfile.TemporaryDirectory(prefix="megatron_check_") as tmp:
        for method in ("add_document", "add_item"):
            p = os.path.join(tmp, method)
            builder = idx_mod.IndexedDatasetBuilder(p + ".bin", dtype=dtype)
            for seq_ids in docs:
                if method == "add_document":
                    parts = [seqs[i] for i in seq_ids]
                    tokens = numpy.concatenate(parts) if parts else numpy.zeros(0, dtype)
                    builder.add_document(tokens, [len(seqs[i]) for i in seq_ids])
                else:
                    for i in seq_ids:
                        builder.add_item(_NumpyItem(seqs[i]))
                    builder.end_document()
            builder.finalize(p + ".idx")
            key = "" if method == "add_document" else "add_item_"
            result[key + "idx_identical"] = _same(p + ".idx", prefix + ".idx")
            result[key + "bin_identical"] = _same(p + ".bin", prefix + ".bin")
    # Megatron's builder always starts document_indices at 0, so a file whose first
    # entry is not 0 cannot be byte-identical even if the reader accepted it.
    log("read OK: {} sequences, {} documents, dtype {}; rebuilt idx/bin identical: {}/{} "
        "(add_item: {}/{})".format(
            result["num_sequences"], result["num_documents"], result["dtype"],
            result["idx_identical"], result["bin_identical"],
            result["add_item_idx_identical"], result["add_item_bin_identical"]))
    write()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
