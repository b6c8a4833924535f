"""Shim for `megatron.core.utils` (stand-in use only).

Why: indexed_dataset.py does `from megatron.core.utils import log_single_rank`,
but the real utils.py imports parallel_state, dist_checkpointing, transformer
configs, etc. upstream itself defines log_single_rank in the dependency-light
megatron/core/_rank_utils.py and merely re-exports it from utils.py, so we do the
same: this re-exports the genuine upstream function.
"""

from megatron.core._rank_utils import log_single_rank  # noqa: F401
