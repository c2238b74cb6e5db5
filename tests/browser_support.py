"""Fixtures for the browser tests: the real service as a subprocess, headless Chromium,
and recorders installed in the page to watch values change.

Imported by tests/test_browser.py (`from tests.browser_support import ...`), so the
shared conftest stays untouched.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
TOKEN = "browser-test-admin-token"
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Service:
    """`python -m app serve` on a fixed port and data dir, so it can be killed and restarted."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    args: tuple[str, ...] = ()  # more `serve` flags
    admin_token: str | None = TOKEN  # None: the service generates one and prints a login link

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        log = open(self.data_dir.parent / f"service-{self.starts}.log", "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIMETABLER_")}
        if self.admin_token is not None:
            env["TIMETABLER_ADMIN_TOKEN"] = self.admin_token
        command = [sys.executable, "-m", "app", "serve", "--port", str(self.port), "--data-dir", str(self.data_dir), *self.args]
        # Own process group: stopping the service also stops its solver children.
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        wait_until(self.healthy, START_TIMEOUT, "the service's /api/health")

    def healthy(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"the service exited with {self.process.returncode}: {self.log_tail()}")
        try:
            return httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def log_tail(self) -> str:
        logs = sorted(self.data_dir.parent.glob("service-*.log"))
        return logs[-1].read_text(errors="replace")[-2000:] if logs else ""

    def api(self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.admin_token or TOKEN}", **(headers or {})}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=10, **kwargs)


def _service(tmp: Path) -> Iterator[Service]:
    service = Service(tmp / "data")
    service.data_dir.mkdir()
    service.start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    yield from _service(tmp_path_factory.mktemp("service"))


@pytest.fixture()
def own_service(tmp_path: Path) -> Iterator[Service]:
    """A service of the test's own, for tests that stop and restart it."""
    yield from _service(tmp_path)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        # CI installs Chromium first, so there a missing browser is a failure, not a skip.
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is not installed")
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@pytest.fixture()
def page_at(browser: object) -> Iterator[Callable[..., object]]:
    """`page_at(service, width=1280)`: a fresh page, logging in with `token` through the form."""
    contexts = []

    def open_page(service: Service, width: int = 1280, token: str = TOKEN) -> object:
        context = browser.new_context(viewport={"width": width, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.goto(service.url)
        page.locator("#token").fill(token)
        page.keyboard.press("Enter")
        return page

    yield open_page
    for context in contexts:
        context.close()


# Records every value an attribute or text takes, from now on, into window[name].
RECORDER_JS = """([name, selector, attribute]) => {
  const el = document.querySelector(selector);
  const read = () => attribute ? el.getAttribute(attribute) : el.textContent;
  window[name] = [read()];
  new MutationObserver(() => window[name].push(read())).observe(el, attribute
    ? { attributes: true, attributeFilter: [attribute] }
    : { childList: true, characterData: true, subtree: true });
}"""


def record(page: object, name: str, selector: str, attribute: str | None = None) -> None:
    page.evaluate(RECORDER_JS, [name, selector, attribute])


def screenshot(page: object, name: str) -> None:
    """Into test-artifacts/ only: a test run never rewrites tracked files."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
