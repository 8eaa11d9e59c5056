"""/docs and /redoc rendered in headless Chromium with every non-loopback request refused.

Debian's chromium (``make test`` installs it), driven by playwright's Python package:
playwright's own browser downloads are never used.
"""

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from momentum_gateway.openapi import HTTP_METHODS
from momentum_libs.devstack import Stack
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from .conftest import new_account

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
# ReDoc renders the whole document in one long task, and beside make test's other workers
# that task took more than playwright's default 5 s: the first wait failed with the page
# rendered a moment later. A bound on a hang, not a speed requirement.
RENDER_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    expect.set_options(timeout=RENDER_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class OfflinePage:
    """A page whose requests to any host but this machine are aborted (and remembered)."""

    def __init__(self, browser: Browser) -> None:
        self.context = browser.new_context()
        self.page: Page = self.context.new_page()
        self.refused: list[tuple[str, str]] = []  # (resource type, URL)
        self.context.route("**/*", self._only_loopback)

    def _only_loopback(self, route: Route) -> None:
        url = route.request.url
        if urlsplit(url).scheme in ("http", "https") and urlsplit(url).hostname not in LOOPBACK:
            self.refused.append((route.request.resource_type, url))
            route.abort()
        else:
            route.continue_()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def offline_page(browser: Browser) -> Iterator[OfflinePage]:
    page = OfflinePage(browser)
    try:
        yield page
    finally:
        page.close()


def operations(gateway: httpx.Client) -> set[tuple[str, str]]:
    paths = gateway.get("/openapi.json").json()["paths"]
    return {
        (method.upper(), path)
        for path, item in paths.items()
        for method in item
        if method in HTTP_METHODS
    }


def test_swagger_ui_lists_every_operation_and_calls_one_with_a_token(
    stack: Stack, gateway: httpx.Client, offline_page: OfflinePage
) -> None:
    expected = operations(gateway)
    account = new_account(gateway)
    page = offline_page.page

    page.goto(f"{stack.gateway_url}/docs")
    blocks = page.locator(".opblock")
    # Waits for the whole list, not its first block: Swagger UI may render it in steps.
    expect(blocks).to_have_count(len(expected))
    listed = {
        (
            block.locator(".opblock-summary-method").inner_text().strip().upper(),
            block.locator(".opblock-summary-path").get_attribute("data-path"),
        )
        for block in blocks.all()
    }
    assert listed == expected

    page.locator(".auth-wrapper .authorize").click()
    dialog = page.locator(".modal-ux")
    dialog.locator("input").fill(account.access_token)
    dialog.locator(".auth-btn-wrapper .authorize").click()
    dialog.locator(".btn-done").click()

    operation = page.locator("#operations-users-getMe")
    operation.locator(".opblock-summary").click()
    operation.locator(".try-out__btn").click()
    operation.locator(".execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status")
    expect(status).to_have_text("200")
    expect(
        operation.locator(".live-responses-table tbody .response-col_description")
    ).to_contain_text(account.email)
    assert offline_page.refused == []


def test_redoc_renders_every_operation(
    stack: Stack, gateway: httpx.Client, offline_page: OfflinePage
) -> None:
    expected = operations(gateway)
    page = offline_page.page

    page.goto(f"{stack.gateway_url}/redoc")
    sections = page.locator("[data-section-id^='operation/']")
    expect(sections.first).to_be_attached()
    expect(sections).to_have_count(len(expected))
    # ReDoc's sidebar always asks its CDN for the Redocly logo and hides the image when it
    # fails; nothing else may have been wanted from outside.
    assert [url for kind, url in offline_page.refused if kind != "image"] == []
