"""The pages in a real headless Chromium (Debian's, driven by Playwright): the incident as a security team
would look at it, logging in to acknowledge an alert, and hostile certificate text that must stay text.
Screenshots go to the test's temporary folder."""

from __future__ import annotations

import json
import shutil
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from web_world import TOKEN, WATCH, Server, serving

CHROMIUM = "/usr/bin/chromium"
FINA = "CN=Fina RDC 2020,O=Financijska agencija,C=HR"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip


@pytest.fixture(scope="module")
def server(web_config: Path) -> Iterator[Server]:
    with serving(web_config) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    assert shutil.which(CHROMIUM) or Path(CHROMIUM).exists(), (
        "Debian's chromium is needed (.ci/run installs it)"
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, tmp_path: Path) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    problems: list[str] = []
    opened.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    opened.problems = problems
    opened.shots = tmp_path
    yield opened
    context.close()
    assert problems == []  # no script ran: no dialog, no error


def api(server: Server, path: str) -> Any:
    with urllib.request.urlopen(server.url.rstrip("/") + path, timeout=30) as response:
        return json.load(response)


def test_search_shows_the_fina_issuances_and_opens_one(page: Any, server: Server) -> None:
    page.goto(server.url)
    page.fill("form.big-search input[name=q]", "1.1.1.1")
    page.click("form.big-search button")
    page.wait_for_selector("table.results")
    rows = page.locator("table.results tbody tr")
    issuers = [rows.nth(i).locator("td").nth(1).inner_text() for i in range(rows.count())]
    incident = [
        rows.nth(i).locator("td").nth(3).inner_text()
        for i in range(rows.count())
        if issuers[i] == FINA and rows.nth(i).locator("td").nth(3).inner_text() < "2026"
    ]
    assert len(incident) == 12  # the twelve of 2024-2025 (the thirteenth is the fixture's, from today)
    assert all(not_before.startswith(("2024-", "2025-")) for not_before in incident)
    page.screenshot(path=str(page.shots / "search.png"), full_page=True)
    first_fina = next(i for i, issuer in enumerate(issuers) if issuer == FINA)
    rows.nth(first_fina).locator("td").first.locator("a").click()
    page.wait_for_selector("table.fields")
    assert page.locator("h1").inner_text() in ("Certificate", "Precertificate")
    assert "1.1.1.1" in page.locator("ul.names").nth(1).inner_text()
    assert page.locator("pre.pem").inner_text().startswith("-----BEGIN CERTIFICATE-----")
    assert FINA in page.locator("table.fields").inner_text()
    page.screenshot(path=str(page.shots / "certificate.png"), full_page=True)


def test_log_in_and_acknowledge_an_alert(page: Any, server: Server) -> None:
    alert_id = api(server, f"/api/v1/alerts?watch={WATCH}&state=open")[0]["id"]
    page.goto(server.url + "alerts")
    assert page.locator(f"#alert-{alert_id} td.act form").count() == 0  # nothing to act with before login
    page.click("header .who a")
    page.fill("input[name=name]", "carol")
    page.fill("input[name=token]", TOKEN)
    page.click("form.login button")
    page.wait_for_url("**/alerts")
    row = page.locator(f"#alert-{alert_id}")
    row.locator("input[name=note]").fill("Fina contacted, certificate revoked")
    row.locator("button[value=acknowledge]").click()
    page.wait_for_load_state()
    row = page.locator(f"#alert-{alert_id}")
    assert row.locator(".badge.state").inner_text().lower() == "acknowledged"
    assert "carol" in row.inner_text() and "Fina contacted" in row.inner_text()
    page.screenshot(path=str(page.shots / "alerts.png"), full_page=True)
    assert api(server, f"/api/v1/alerts/{alert_id}")["alert"]["state"] == "acknowledged"


def test_timeline_shows_fina_as_a_new_unauthorized_issuer(page: Any, server: Server) -> None:
    page.goto(server.url + f"watches/{urllib.parse.quote(WATCH)}")
    chart = page.locator("svg.chart")
    assert chart.count() == 1 and chart.is_visible()
    alarming = page.locator("ul.legend li.alarming")
    assert (
        alarming.count() == 1 and FINA in alarming.inner_text() and "NOT AUTHORIZED" in alarming.inner_text()
    )
    assert page.locator("ul.legend li.calm").count() >= 1
    loud = set(chart.locator("rect.alarming").evaluate_all("els => els.map(e => e.getAttribute('fill'))"))
    calm = set(
        chart.locator("rect:not(.alarming)").evaluate_all("els => els.map(e => e.getAttribute('fill'))")
    )
    assert loud and calm and not loud & calm
    titles = chart.locator("rect.alarming title").evaluate_all("els => els.map(e => e.textContent)")
    assert sum(int(t.split(": ")[1].split()[0]) for t in titles) == 13
    page.screenshot(path=str(page.shots / "timeline.png"), full_page=True)


def test_a_hostile_common_name_is_shown_as_text(page: Any, server: Server) -> None:
    results = api(server, "/api/v1/search?q=hostile.example&limit=1000")["results"]
    scripted = [r for r in results if any("<script>" in name for name in r["dns_names"])]
    assert scripted
    page.goto(server.url + "certificates/" + scripted[0]["sha256"])
    subject = page.locator("table.fields tr").first.locator("td").inner_text()
    # RFC 4514 escapes the brackets, and backslashes are shown doubled (as on the terminal): text either way.
    assert "<script" in subject and "alert(document.domain)" in subject
    names = page.locator("ul.names").first.inner_text()
    assert "<script>alert(document.domain)</script>.hostile.example" in names
    assert '<img src=x onerror="alert(1)">.hostile.example' in names
    assert page.locator("main script").count() == 0 and page.locator("main img").count() == 0
    page.goto(server.url + "search?q=hostile.example&limit=1000")
    assert "<script>alert(document.domain)</script>" in page.locator("table.results").inner_text()
    assert page.locator("main script").count() == 0
    page.goto(server.url + "alerts?watch=hostile")
    page.screenshot(path=str(page.shots / "hostile.png"), full_page=True)
    # The CSP itself: an inline script injected by hand is refused by the browser.
    page.goto(server.url)
    page.set_content("<p>x</p>")  # about:blank, no CSP: sanity that evaluation works
    page.goto(server.url)
    blocked = page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.ran = 1';"
        " document.body.appendChild(s); return window.ran === undefined; }"
    )
    assert blocked
