"""A real local CT log for tests and the demo: RFC 6962 and static-ct-api over one tree, with faults.

Serving side: storage (DIR: key, SQLite entries, hash tiles, tree heads), tree (tile-backed hashes and
proofs), chains (what a submission becomes), view (what the log shows, lies included), faults,
http_rfc6962 and http_static (the endpoints), service and server (the running log), loglist.
Traffic side: ca and issue (the CAs and how they issue), tbs (the TBSCertificate editor both sides use),
names and traffic (ordinary issuances), scenarios, plant and malform (planted ones), populate.
Uses ctsentinel.ct (and certs) only, never the monitor's packages: a bug in the monitor cannot hide in the
log it is tested against.
"""
