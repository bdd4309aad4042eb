"""The monitor: every selected log read by its own task, every entry proven before it counts.

settings.py     what the monitor is told ([logs] and [monitor] of the config, filled in by `run`)
gateway.py      the store on its one thread, and the routes commits queue deliveries to
verify.py       the verification rule (docs/monitor-design.md) as a state machine over heads and chunks
worker.py       one log: poll and check its head, download, prove, decode and commit chunk by chunk
decode_pool.py  decode + watch matching in worker processes; only what matters crosses back
pipeline.py     the run: log list, decode pool, notifier, one worker task per log, new settings on reload
leases.py       this process's leases (logs, ranges of a backlog): claimed, renewed, given back, lost
ranges.py       ranges of a long backlog: each proven on its own, worked by any process, in any order
backfill.py     backfill --watch: stored certificates matched, or the logs read again for one watch
progress.py     per-log progress lines on a terminal
status.py       each log's state as the store knows it (what `ctsentinel logs` shows)
"""
