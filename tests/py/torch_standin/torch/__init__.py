"""Minimal stand-in for `torch`, used ONLY when real PyTorch is not installed.

megatron-core's indexed_dataset.py (and the small modules it imports) reference
`torch` at import time, but its numpy-based reading/writing code never calls
into torch. This module supplies exactly the names touched on those paths and
nothing else; anything beyond that should fail loudly with AttributeError.
"""

import sys
import types

# Marker so callers can tell this apart from real PyTorch.
SLUICE_STANDIN = True
__version__ = "0.0.0+sluice-standin"


class Tensor:
    """Needed because `IndexedDatasetBuilder.add_item(self, tensor: torch.Tensor, ...)`
    and `add_document` use `torch.Tensor` in annotations, which are evaluated when
    the class body runs. Never instantiated: megatron_check.py hands the builder
    objects that have a `.numpy()` method, which is all add_item calls."""


class _Dataset:
    """Needed because `class IndexedDataset(torch.utils.data.Dataset)` subclasses it.
    Real torch's Dataset is an empty base class (plus __add__), so an empty class
    is equivalent for our purposes."""


def _is_initialized():
    """`torch.distributed.is_initialized()` is called by
    megatron.core._rank_utils.safe_get_rank(), which log_single_rank() uses on every
    IndexedDataset load. No process group exists here, so: False."""
    return False


def _get_rank():
    """Only reached when is_initialized() is True, which it never is; present so the
    module mirrors the pair of functions _rank_utils / object_storage_utils name."""
    return 0


# Submodules accessed as attributes (torch.utils.data.Dataset, torch.distributed.*).
# Registered in sys.modules too, so `import torch.utils.data` style imports also work.
utils = types.ModuleType("torch.utils")
utils.data = types.ModuleType("torch.utils.data")
utils.data.Dataset = _Dataset
distributed = types.ModuleType("torch.distributed")
distributed.is_initialized = _is_initialized
distributed.get_rank = _get_rank
for _m in (utils, utils.data, distributed):
    sys.modules[_m.__name__] = _m
del _m
