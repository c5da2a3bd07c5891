"""The dashboard in a real browser: Debian's Chromium, headless, driven by Selenium.

Nothing is downloaded: the browser and its driver are the system's
(``make test`` installs Debian's chromium and chromium-driver when missing).
Set ``WORQ_SCREENSHOTS=1`` to write the screenshots into ``docs/images/``
(``make screenshots``); otherwise they go to the test's temporary directory.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import uvicorn
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from worq import TaskSpace, get_broker
from worq.core import Broker
from worq.dashboard import app
from worq.pool.thread import WorkerPool
from worq.testing import WAIT, free_port

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
DOCS_IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"
PLANTED = "<script>alert('planted')</script>"
T = TypeVar("T")

ts = TaskSpace("shop")
broken: set[str] = set()
"""SKUs whose price fails while here (a fix deployed: removed)."""


@ts.task
def price(sku: str) -> int:
    if sku in broken:
        raise ValueError(f"no price for {sku}")
    return len(sku)


@ts.task
def total(a: int, b: int) -> int:
    return a + b


@pytest.fixture(scope="module")
def chrome() -> Iterator[WebDriver]:
    needed = "Debian's chromium and chromium-driver are needed: make test installs them"
    assert shutil.which(CHROMIUM), needed
    assert shutil.which(CHROMEDRIVER), needed
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch a driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1000"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


@pytest.fixture
def broker(clean_redis_url: str) -> Iterator[Broker]:
    made = get_broker(clean_redis_url)
    made.expose(ts)
    yield made
    broken.clear()
    made.close()


@pytest.fixture
def site(clean_redis_url: str) -> Iterator[str]:
    """The dashboard of the test's Redis, served by uvicorn on a free port."""
    port = free_port()
    config = uvicorn.Config(app(clean_redis_url), host="127.0.0.1", port=port, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    until(lambda: server.started, "the dashboard did not start")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(WAIT)


def until(condition: Callable[[], T], what: str) -> T:
    """Wait for ``condition`` to be truthy, looking again every 50 ms until a deadline;
    a page element not there yet (a WebDriverException) counts as not yet."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            result = condition()
        except WebDriverException:
            result = None
        if result:
            return result
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def text(driver: WebDriver, css: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def no_alert(driver: WebDriver) -> bool:
    try:
        driver.switch_to.alert.dismiss()
    except NoAlertPresentException:
        return True
    return False


def screenshot(driver: WebDriver, name: str, tmp_path: Path) -> None:
    folder = DOCS_IMAGES if os.environ.get("WORQ_SCREENSHOTS") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    assert driver.save_screenshot(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000


def test_the_pending_count_rises_and_falls_live(
    chrome: WebDriver, broker: Broker, site: str, tmp_path: Path
) -> None:
    chrome.get(site + "/")
    enqueued = '[data-queue="default"] [data-count="enqueued"]'
    until(lambda: text(chrome, enqueued) == "0", "the overview did not load")
    q = broker.queue()
    sent = [q.shop.price(f"sku-{n}") for n in range(25)]
    until(lambda: text(chrome, enqueued) == "25", "the pending count did not rise")
    pool = WorkerPool(broker, workers=2)
    pool.start(timeout=0.05)
    try:
        until(lambda: text(chrome, enqueued) == "0", "the pending count did not fall")
        assert all(d.wait(WAIT) for d in sent)
        pools = '[data-queue="default"] [data-pools] td'
        until(lambda: text(chrome, pools).startswith(pool_id_prefix()), "no pool shown")
        bars = '[data-queue="default"] [data-chart] rect.ok'
        until(lambda: chrome.find_elements(By.CSS_SELECTOR, bars), "no bar in the chart")
        screenshot(chrome, "dashboard-overview.png", tmp_path)
    finally:
        pool.stop()


def pool_id_prefix() -> str:
    import socket

    return f"{socket.gethostname()}:{os.getpid()}:"


def test_a_task_found_by_id_shows_its_graph(
    chrome: WebDriver, broker: Broker, site: str, tmp_path: Path
) -> None:
    q = broker.queue()
    apple, pear = q.shop.price("apple"), q.shop.price("pear")
    basket = q.shop.total(apple, pear)
    receipt = q.shop.total(basket, 0)
    chrome.get(site + "/")
    box = chrome.find_element(By.ID, "search")
    box.send_keys(basket.id)
    box.submit()
    until(lambda: text(chrome, "#task-id") == basket.id, "the task page did not open")
    assert text(chrome, "#status") == "pending"
    assert text(chrome, "#name") == "shop.total"
    nodes = chrome.find_elements(By.CSS_SELECTOR, "#graph [data-node]")
    assert [n.get_attribute("data-node") for n in nodes] == [
        apple.id, pear.id, basket.id, receipt.id
    ]  # fmt: skip
    assert all("enqueued" in str(n.get_attribute("class")) for n in nodes[:2])
    screenshot(chrome, "dashboard-task.png", tmp_path)
    chrome.find_element(By.CSS_SELECTOR, f'#graph [data-node="{apple.id}"]').click()
    until(lambda: text(chrome, "#task-id") == apple.id, "the graph's link did not open")


def test_a_failed_task_retried_from_the_page_succeeds(
    chrome: WebDriver, broker: Broker, site: str
) -> None:
    broken.update({"plum", "fig", "kiwi"})
    q = broker.queue()
    plum, fig, kiwi = q.shop.price("plum"), q.shop.price("fig"), q.shop.price("kiwi")
    pool = WorkerPool(broker, workers=2)
    pool.start(timeout=0.05)
    try:
        until(lambda: len(broker.failed_tasks()) == 3, "the tasks did not fail")
        broken.clear()
        chrome.get(site + "/failed")
        chrome.find_element(
            By.CSS_SELECTOR, f'button[data-scope="one"][data-id="{plum.id}"]'
        ).click()
        until(lambda: text(chrome, "#result") == "retried 1 of 1", "no retry reported")
        for task_id in (fig.id, kiwi.id):
            chrome.find_element(By.CSS_SELECTOR, f'input[data-select][value="{task_id}"]').click()
        chrome.find_element(
            By.CSS_SELECTOR, 'button[data-act="retry"][data-scope="selected"]'
        ).click()
        until(lambda: chrome.switch_to.alert, "no confirmation asked").accept()
        until(lambda: text(chrome, "#result") == "retried 2 of 2", "bulk retry not reported")

        def plum_status() -> str:
            chrome.get(f"{site}/tasks/{plum.id}")
            return text(chrome, "#status")

        until(lambda: plum_status() == "completed", "the retried task did not succeed")
        assert text(chrome, "#outcome") == "4"
        assert text(chrome, "#name") == "shop.price"
        assert text(chrome, "#worker").startswith(pool_id_prefix().rsplit(":", 2)[0])
        assert text(chrome, "#finished") >= text(chrome, "#started") > "2026"
        assert text(chrome, "#attempts") == "2"
        assert [d.wait(WAIT) for d in (plum, fig, kiwi)] == [True] * 3
        assert plum.value == 4
    finally:
        pool.stop()


def test_planted_markup_is_shown_as_text(chrome: WebDriver, broker: Broker, site: str) -> None:
    planted = f"evil{PLANTED}"
    broken.add(planted)
    d = broker.queue().shop.price(planted)
    pool = WorkerPool(broker, workers=1)
    pool.start(timeout=0.05)
    try:
        until(lambda: len(broker.failed_tasks()) == 1, "the task did not fail")
    finally:
        pool.stop()
    for page in (f"/tasks/{d.id}", "/failed"):
        chrome.get(site + page)
        assert no_alert(chrome), f"a planted script ran on {page}"
        scripts = chrome.find_elements(By.TAG_NAME, "script")
        assert [s.get_attribute("src") for s in scripts] == [site + "/static/dashboard.js"]
    assert PLANTED in text(chrome, "td.error")
    chrome.get(f"{site}/tasks/{d.id}")
    assert PLANTED in text(chrome, "#arguments")
    assert PLANTED in text(chrome, "#error")
