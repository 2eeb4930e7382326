"""Chromium for the workbench's browser tests (Playwright drives Debian's chromium; no browser download)."""

from __future__ import annotations

import os
import shutil

import pytest


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: .ci/run installs Debian's chromium")
        pytest.skip("Chromium is not installed here (apt-get install chromium)")
    return path


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-gpu"]
        )
        yield browser
        browser.close()


def log_in_with_key(page, token: str) -> None:
    """The login page's second form (operators' keys), folded away under the people's form."""
    page.click("summary")
    page.fill("#api_key", token)
    page.click("#key-login button[type=submit]")


def log_in_as(page, username: str, password: str) -> None:
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#person-login button[type=submit]")
