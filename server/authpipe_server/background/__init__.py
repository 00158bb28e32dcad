"""Background work of a process: the schedulers' bounded, fair job pool (pool) and the set of
workers a process runs (workers)."""
