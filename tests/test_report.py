"""The HTML report: self-contained, loads cleanly in headless Chromium, and every number it
draws agrees with the incident table on the same page (and with what the seed wrote)."""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from handlers.audit.query import IncidentQuery, select
from handlers.audit.report import report_html
from handlers.audit.summary import open_tickets
from tests.chromium import Page, chromium, load
from tests.world import World, p90

#: What the page shows, read in the browser: chart marks per panel, headline numbers, and the
#: incident table (each row's data attributes plus its cells by column title).
READ_PAGE = """() => {
  const charts = {};
  document.querySelectorAll("[data-chart]").forEach((panel) => {
    charts[panel.dataset.chart] = Array.from(panel.querySelectorAll("rect[data-key]")).map(
      (mark) => [mark.dataset.key, Number(mark.dataset.value)]);
  });
  const kpis = {};
  document.querySelectorAll("[data-kpi]").forEach((kpi) => {
    kpis[kpi.dataset.kpi] = kpi.querySelector("b").textContent;
  });
  const heads = Array.from(document.querySelectorAll("#incidents th")).map((th) => th.textContent);
  const rows = Array.from(document.querySelectorAll("#incidents tbody tr")).map((tr) => {
    const cells = {};
    Array.from(tr.cells).forEach((td, n) => { cells[heads[n]] = td.textContent; });
    return {...tr.dataset, cells};
  });
  const legend = Array.from(document.querySelectorAll(".legend li")).map((li) => li.textContent);
  const perRule = Array.from(document.querySelectorAll("table.per-rule tbody tr")).map(
    (tr) => ({...tr.dataset}));
  return {charts, kpis, rows, legend, perRule};
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as running:
        yield running


@pytest.fixture(scope="module")
def report(world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    storage = world.storage
    query = IncidentQuery.from_params({"since": "30d"}, world.now)
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(
        report_html(select(storage, query), open_tickets(storage), query, world.now),
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def shown(browser: Browser, report: Path) -> Iterator[Page]:
    page = load(browser, report)
    yield page
    page.page.close()


def test_the_page_is_self_contained(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    sources = re.findall(r"""\b(?:src|href|action)\s*=\s*["']([^"']*)""", html, re.IGNORECASE)
    assert sources == ["data:,"]  # the empty favicon, so that the browser asks for none
    assert not re.search(r"<(?:script|img|iframe|object|embed)\b[^>]*\bsrc", html, re.I)
    assert not re.search(r"url\(|@import", html, re.IGNORECASE)
    assert "default-src 'none'" in html  # and the browser refuses anything else
    outside = re.sub(r'xmlns="http://www\.w3\.org/2000/svg"', "", html)
    assert not re.search(r"https?://", outside)


def test_chromium_loads_it_cleanly_and_takes_a_screenshot(shown: Page, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    shown.page.screenshot(path=str(shot), full_page=True)
    assert shown.problems == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    marks = shown.page.locator("svg rect[data-key]").count()
    assert marks > 100


def _top(counts: Counter[str], chart: list[tuple[str, int]], size: int = 10) -> None:
    """``chart`` is the ``size`` largest of ``counts``, with their counts."""
    assert dict(chart) == {key: counts[key] for key, _ in chart}
    assert len(chart) == min(size, len(counts))
    smallest = min(value for _, value in chart)
    assert all(counts[key] <= smallest for key in counts.keys() - dict(chart).keys())


def test_every_number_in_the_page_matches_its_table(shown: Page, world: World) -> None:
    page: dict[str, Any] = shown.page.evaluate(READ_PAGE)
    rows, charts, kpis = page["rows"], page["charts"], page["kpis"]
    assert {r["cells"]["incident"] for r in rows} == {i.IncidentId for i in world.incidents}
    assert kpis["incidents"] == str(len(rows))
    assert kpis["vms"] == str(len({r["vm"] for r in rows}))
    assert kpis["escalated"] == str(sum(r["status"] == "escalated" for r in rows))
    assert kpis["dry-run"] == str(sum(r["cells"]["dry run"] == "yes" for r in rows))

    named = [name for name in page["legend"] if name != "other"]
    per_day = Counter(
        f"{r['day']}|{r['category'] if r['category'] in named else 'other'}" for r in rows
    )
    assert dict(charts["per-day"]) == dict(per_day)

    _top(Counter(r["rule"] for r in rows), charts["rules"])
    _top(Counter(r["vm"] for r in rows), charts["vms"])
    assert dict(charts["outcomes"]) == dict(Counter(r["outcome"] for r in rows))

    retries = Counter(r["retry"] for r in rows if r["retry"])
    assert {k: v for k, v in charts["retries"] if v} == dict(retries)
    rate = retries["succeeded"] / (retries["succeeded"] + retries["failed"])
    assert kpis["retry-success"] == f"{rate:.0%}"


def test_retry_success_and_time_to_resolution_per_rule_match_the_table(shown: Page) -> None:
    page: dict[str, Any] = shown.page.evaluate(READ_PAGE)
    retries: dict[str, Counter[str]] = {}
    times: dict[str, list[float]] = {}
    for row in page["rows"]:
        if row["retry"] in ("succeeded", "failed"):
            retries.setdefault(row["rule"], Counter())[row["retry"]] += 1
        if row["ttr"]:
            times.setdefault(row["rule"], []).append(float(row["ttr"]))
    shown_rules = {r["rule"]: r for r in page["perRule"]}
    assert times and set(shown_rules) == set(retries) | set(times)
    for rule, counts in retries.items():
        assert (shown_rules[rule]["succeeded"], shown_rules[rule]["failed"]) == (
            str(counts["succeeded"]),
            str(counts["failed"]),
        )
    for rule, seconds in times.items():
        shown_rule = shown_rules[rule]
        assert shown_rule["resolved"] == str(len(seconds))
        # The rows carry whole seconds; the median of two of them may fall on a half.
        assert abs(float(shown_rule["median"]) - statistics.median(seconds)) <= 1
        assert float(shown_rule["p90"]) == p90(seconds)


def test_the_filter_box_and_the_bars_filter_the_table(shown: Page) -> None:
    page = shown.page
    rows: list[dict[str, Any]] = page.evaluate(READ_PAGE)["rows"]
    page.fill("#find", "vm-web-04")
    assert page.text_content("#shown") == str(sum(r["vm"] == "vm-web-04" for r in rows))
    assert page.locator("#incidents tbody tr:not([hidden])").count() == int(
        page.text_content("#shown") or -1
    )
    page.click('[data-chart="rules"] rect[data-key="copy-to-vault-timed-out"]')
    assert page.input_value("#find") == "copy-to-vault-timed-out"
    wanted = sum(r["rule"] == "copy-to-vault-timed-out" for r in rows)
    assert page.text_content("#shown") == str(wanted)
    page.fill("#find", "")
    assert page.text_content("#shown") == str(len(rows))
    assert shown.problems == []


def test_an_empty_report_says_so(browser: Browser, tmp_path: Path) -> None:
    path = tmp_path / "empty.html"
    path.write_text(report_html([], [], IncidentQuery(), datetime.now(UTC)), encoding="utf-8")
    page = load(browser, path)
    assert page.page.text_content("[data-kpi=incidents] b") == "0"
    assert "No incidents match." in (page.page.text_content("body") or "")
    assert page.problems == []
