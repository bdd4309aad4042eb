"""ctsentinel: a Certificate Transparency monitor for names and IP addresses."""

__version__ = "0.1.0"
