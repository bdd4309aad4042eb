"""The CA report's HTML in a real headless Chromium (Debian's, driven by Playwright): its charts drawn and
visible, the flagged months in red, nothing fetched and nothing run. The screenshot goes to the test's
temporary folder."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ctsentinel.cli import main
from ctsentinel.testlog.server import BackgroundLog
from oversight_world import fina_watch, populated_log, serve_copy

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip


@pytest.fixture(scope="module")
def report_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`ca report --html` of Fina RDC 2020 after `run --once` over the fina-1.1.1.1 log on 127.0.0.1."""
    base = tmp_path_factory.mktemp("report-html")
    populated_log(base / "source")
    started: list[BackgroundLog] = []

    def factory(directory: Path, **kwargs: Any) -> BackgroundLog:
        started.append(BackgroundLog(directory, merge_delay=0.05, **kwargs).start())
        return started[-1]

    ca_watch = fina_watch(base / "source")
    world = serve_copy(base / "source", base / "work", factory, ca_watch)
    try:
        assert world.run_once() == 0
        page = base / "fina.html"
        assert (
            main(["-c", str(world.config), "ca", "report", f"sha256:{world.fina_spki}", "--html", str(page)])
            == 0
        )
    finally:
        for log in started:
            log.stop()
    yield page


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    assert shutil.which(CHROMIUM) or Path(CHROMIUM).exists(), "Debian's chromium (.ci/run installs it)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


def test_the_report_renders_with_its_charts_visible(report_page: Path, browser: Any, tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    asked: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(report_page.as_uri())
    page.wait_for_load_state("load")
    assert asked == [report_page.as_uri()]  # the page itself and nothing else
    assert problems == []
    charts = page.locator("svg")
    assert charts.count() >= 3
    for i in range(charts.count()):
        chart = charts.nth(i)
        assert chart.is_visible()
        box = chart.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 50
    # The months with flagged issuances stand out in red, and each bar says what it is on hover.
    red = page.locator('svg rect[fill="#c62828"]')
    assert red.count() > 0 and red.first.is_visible()
    assert "flagged" in (red.first.locator("title").text_content() or "")
    headline = page.locator(".headline").inner_text()
    assert " flagged" in headline and "revoked" in headline
    shot = tmp_path / "fina-report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    context.close()
