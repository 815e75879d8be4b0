"""Browser tests: Playwright driving Debian's chromium against the app on a live server.

Every test under tests/browser/ is marked `browser` (tests/conftest.py) and runs once per
./scripts/test, on the PostgreSQL pass (COUPONSVC_TEST_BROWSER=1 runs them on SQLite too,
=0 on neither). Without chromium or Playwright they fail under CI (CI=true, as .ci/run
sets) and are skipped with the reason otherwise.

Fixtures
- `live_server`: the test's `app` (the run's migrated database, emptied for the test, the
  same app as the `client` fixture, so data made through `client` is what the browser sees)
  served by werkzeug on 127.0.0.1 on a free port; `.url`, `.app`. PUBLIC_URL is its URL.
- `browser`: one headless chromium for the run. `launch_browser(*args)` starts another one
  with extra command-line switches (a fake camera), closed after the test.
- `page`: a page in a fresh context whose base URL is the live server, so
  `page.goto("/admin")` works. Its locale comes from the `locale` fixture ("en-US"; override
  with `@pytest.mark.parametrize("locale", LOCALES)`), its size from `viewport` (DESKTOP;
  parametrize with PHONE). `new_context(locale=..., viewport=..., **options)` opens more.
- Nothing leaves the machine: chromium sends every request for another host to a dead
  proxy, and a request for another host or an uncaught JavaScript error on a page fails the
  test at teardown (`browser_log(page)` holds what was seen; clear it when a test means it).
- `screenshot(page, name)` saves artifacts/screenshots/<name>.png (the whole page) and
  returns its path.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server

CHROMIUM = os.environ.get("COUPONSVC_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
LOCALES = ["zh-CN", "en-US"]

# Requests for any other host go to a port where nothing listens (chromium never proxies
# loopback addresses); --no-sandbox because the tests may run as root in a container.
LAUNCH_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]
DEAD_PROXY = {"server": "http://127.0.0.1:9", "bypass": "127.0.0.1,localhost"}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str):
    if in_ci():
        pytest.fail(f"browser tests cannot run under CI: {reason}", pytrace=False)
    pytest.skip(f"browser tests need chromium and Playwright: {reason} "
                "(./scripts/test installs chromium from apt when run as root)")


# --- the live server ------------------------------------------------------------------

@dataclass
class LiveServer:
    app: object
    url: str


@pytest.fixture
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_URL"] = url
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(app=app, url=url)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# --- chromium -------------------------------------------------------------------------

@pytest.fixture(scope="session")
def playwright_driver():
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        _unavailable(f"no {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[test]')")
    with sync_playwright() as driver:
        yield driver


def _launch(driver, args=()):
    return driver.chromium.launch(executable_path=CHROMIUM, headless=True,
                                  args=[*LAUNCH_ARGS, *args], proxy=DEAD_PROXY)


@pytest.fixture(scope="session")
def browser(playwright_driver):
    chromium = _launch(playwright_driver)
    yield chromium
    chromium.close()


@pytest.fixture
def launch_browser(playwright_driver):
    """Start a chromium of the test's own with extra switches: launch_browser("--use-fake-...")."""
    launched = []

    def launch(*args: str):
        chromium = _launch(playwright_driver, args)
        launched.append(chromium)
        return chromium

    yield launch
    for chromium in launched:
        chromium.close()


# --- contexts and pages ---------------------------------------------------------------

@dataclass
class BrowserLog:
    """What a context's pages did that a test should not let pass unseen."""

    external_requests: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def watch(self, context) -> None:
        context.on("request", self._request)
        context.on("page", self._page)
        for page in context.pages:
            self._page(page)

    def _request(self, request) -> None:
        host = urlsplit(request.url).hostname or ""
        if request.url.startswith(("http:", "https:", "ws:", "wss:")) and host not in LOCAL_HOSTS:
            self.external_requests.append(request.url)

    def _page(self, page) -> None:
        page.on("pageerror", lambda error: self.page_errors.append(f"{page.url}: {error}"))
        page.on("console", lambda message: self.console_errors.append(
            f"{page.url}: {message.text}") if message.type == "error" else None)

    def problems(self) -> list[str]:
        return ([f"request for another host: {url}" for url in self.external_requests]
                + [f"uncaught JavaScript error: {error}" for error in self.page_errors])


_LOGS: dict[int, BrowserLog] = {}


def browser_log(page_or_context) -> BrowserLog:
    """The BrowserLog of a page (or context) made by `page` or `new_context`."""
    context = getattr(page_or_context, "context", page_or_context)
    return _LOGS[id(context)]


@pytest.fixture
def locale() -> str:
    return "en-US"


@pytest.fixture
def viewport() -> dict:
    return DESKTOP


@pytest.fixture
def new_context(browser, live_server):
    contexts = []

    def open_context(locale: str = "en-US", viewport: dict | None = None, *, chromium=None,
                     **options):
        context = (chromium or browser).new_context(
            base_url=live_server.url, locale=locale, viewport=viewport or DESKTOP, **options)
        context.set_default_timeout(30_000)  # a loaded 2-core CI machine
        log = BrowserLog()
        log.watch(context)
        _LOGS[id(context)] = log
        contexts.append(context)
        return context

    yield open_context
    problems = []
    for context in contexts:
        problems += _LOGS.pop(id(context)).problems()
        context.close()
    if problems:
        pytest.fail("the browser saw:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def page(new_context, locale, viewport):
    return new_context(locale=locale, viewport=viewport).new_page()


# --- pages ---------------------------------------------------------------------------

def assert_fits(page) -> None:
    """Nothing runs off the side of the screen."""
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page.url}: the page is {overflow} px wider than the screen"


def submit_sign_in(page, words: dict, email: str, password: str) -> None:
    """Fill in and send the admin's sign-in form, found by its labels in the page's language
    (`words`: `email`, `password`, `sign_in`), whatever it answers."""
    page.goto("/admin/sign-in")
    page.get_by_label(words["email"], exact=True).fill(email)
    page.get_by_label(words["password"], exact=True).fill(password)
    page.get_by_role("button", name=words["sign_in"], exact=True).click()


def sign_in(page, words: dict, person) -> None:
    """Sign `person` in (their `email` and `password`) and wait for the admin's navigation."""
    submit_sign_in(page, words, person.email, person.password)
    page.get_by_role("navigation").wait_for()


# --- screenshots ----------------------------------------------------------------------

def screenshot(page, name: str, *, full_page: bool = True) -> Path:
    """Save the page as artifacts/screenshots/<name>.png; the path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / (re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") + ".png")
    page.screenshot(path=str(path), full_page=full_page)
    return path
