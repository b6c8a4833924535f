"""sluice: turns raw text shards into training data for large language models.

The package is the `sluice` command, which pip puts on the environment's
PATH; `python -m sluice ARGS` runs it too.
"""
