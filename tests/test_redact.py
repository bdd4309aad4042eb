"""URLs in messages: scheme, host and port only, whatever follows the host (a token, a query, a user)."""

from __future__ import annotations

import pytest

from ctsentinel.redact import redact_url, redact_urls


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T0/B0/XOXB", "https://hooks.slack.com/…"),
        ("http://user:pass@127.0.0.1:8080/hook?key=1#f", "http://127.0.0.1:8080/…"),
        ("http://[2001:db8::1]:9/", "http://[2001:db8::1]:9/"),
        ("https://example.org", "https://example.org/"),
        ("https://example.org/?", "https://example.org/"),
        ("https://example.org/?k", "https://example.org/…"),
        ("http://h:99999/x", "http://…"),
        ("not a url", "…"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_urls_in_text_keeps_the_punctuation_around_them() -> None:
    text = "webhook https://a.example/T/B/X?t=1: HTTP 500; then (http://u:p@b.example:81/p). done"
    assert redact_urls(text) == "webhook https://a.example/…: HTTP 500; then (http://b.example:81/…). done"
    assert redact_urls(redact_urls(text)) == redact_urls(text)
    assert redact_urls("no url here") == "no url here"
