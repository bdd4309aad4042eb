"""The monitor: every selected log read by its own task, every entry proven before it counts.

verify.py       the verification rule (docs/monitor-design.md) as a state machine over heads and chunks
worker.py       one log: poll and check its head, download, prove, decode and commit chunk by chunk
decode_pool.py  decode + watch matching in worker processes; only what matters crosses back
pipeline.py     the run: log list, store, pool, notifier, one worker task per log, signals
progress.py     per-log progress lines on a terminal
status.py       each log's state as the store knows it (what `ctsentinel logs` shows)
"""
