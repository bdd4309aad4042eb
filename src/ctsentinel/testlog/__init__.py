"""A real local CT log for tests and the demo: RFC 6962 and static-ct-api over one tree, with faults.

Serving side: storage (DIR: key, SQLite entries, hash tiles, tree heads), tree (tile-backed hashes and
proofs), chains/der/malform (what a submission becomes), view (what the log shows, lies included), faults,
http_rfc6962 and http_static (the endpoints), service and server (the running log), loglist.
Traffic side: ca, traffic, scenarios, populate. Uses ctsentinel.ct only, never the monitor's packages.
"""
