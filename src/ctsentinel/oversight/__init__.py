"""The root program's view of what CAs issue: revocation (CRL, OCSP) and lint.

revocation: the answer a CRL or an OCSP responder gives (status, reason, time, freshness) and its error;
crl and ocsp: verify what an issuer's CRL or responder says about one serial, and where a certificate
says to ask; lint: pkilint's CA/B Forum TLS checks on one certificate. Nothing here fetches: the bytes
come from the caller, so every check is a pure function of its inputs and a time.
"""
