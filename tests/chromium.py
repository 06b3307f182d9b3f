"""Debian's headless Chromium driven by Playwright (``scripts/chromium.sh`` installs it;
Playwright never downloads a browser here)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Page:
    """A loaded page and everything it complained about or tried to fetch."""

    page: Any
    console: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions, and fetches of anything."""
        noisy = [f"{kind}: {text}" for kind, text in self.console if kind in ("error", "warning")]
        return noisy + self.errors + [f"request: {url}" for url in self.requests]


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def load(browser: Browser, path: Path, width: int = 1280, height: int = 900) -> Page:
    """``path`` opened in a new page, with its console and requests recorded."""
    url = path.resolve().as_uri()
    page = browser.new_page(viewport={"width": width, "height": height})
    seen = Page(page)
    page.on("console", lambda m: seen.console.append((m.type, m.text)))
    page.on("pageerror", lambda e: seen.errors.append(str(e)))
    page.on("request", lambda r: r.url != url and seen.requests.append(r.url))
    page.goto(url, wait_until="load")
    return seen
