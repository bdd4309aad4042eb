"""From a log entry or certificate to a CertRecord, pure and lenient."""
