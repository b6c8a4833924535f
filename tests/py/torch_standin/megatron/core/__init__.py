"""Light replacement for the `megatron.core` package __init__ (stand-in use only).

Why: the real megatron/core/__init__.py eagerly imports parallel_state,
tensor_parallel, distributed, ... which need far more of torch (nn.Module,
ProcessGroup, autograd, cuda) than a small stand-in can honestly provide.
indexed_dataset.py needs none of that.

How: this directory sits earlier on sys.path than site-packages. `megatron` has no
__init__.py upstream (it is a namespace package), so Python merges both `megatron/`
dirs and finds this regular `megatron.core` package first. We then append the real
megatron/core directory to __path__, so every submodule (datasets.indexed_dataset,
datasets.object_storage_utils, msc_utils, _rank_utils, ...) is the UNMODIFIED
upstream file, except `megatron.core.utils`, which resolves to the shim next to
this file because our directory comes first in __path__.
"""

import os as _os

import megatron as _megatron

_here = _os.path.dirname(_os.path.abspath(__file__))
for _entry in list(_megatron.__path__):
    _candidate = _os.path.join(_entry, "core")
    if _os.path.abspath(_candidate) != _here and _os.path.isfile(
        _os.path.join(_candidate, "datasets", "indexed_dataset.py")
    ):
        __path__.append(_candidate)
        break
else:
    raise ImportError("sluice stand-in: real megatron-core (megatron/core) not found on sys.path")
