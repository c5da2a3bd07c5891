"""The dashboard's app over HTTP (no browser): pages, JSON, actions, safety, cost."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from starlette.testclient import TestClient

from worq import TaskSpace, get_broker
from worq.const import PROCESSING
from worq.core import Broker
from worq.dashboard import app
from worq.dashboard._app import CSRF_HEADER
from worq.dashboard._data import REFRESH
from worq.pool.thread import WorkerPool
from worq.testing import WAIT, eventually

SRC = Path(__file__).resolve().parent.parent / "src"
ts = TaskSpace("dash")
PLANTED = "<script>alert('planted')</script>"


@ts.task
def price(sku: str) -> int:
    if sku.startswith("bad"):
        raise ValueError(f"unknown sku {sku}")
    return len(sku)


@ts.task
def total(a: int, b: int) -> int:
    return a + b


@pytest.fixture
def broker(url: str) -> Iterator[Broker]:
    made = get_broker(url)
    made.expose(ts)
    yield made
    made.close()


@pytest.fixture
def client(url: str) -> Iterator[TestClient]:
    with TestClient(app(url)) as made:
        yield made


def csrf(client: TestClient, page: str = "/failed") -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', client.get(page).text)
    assert found is not None
    return found.group(1)


def run_all(broker: Broker) -> None:
    pool = WorkerPool(broker, workers=2)
    pool.start(timeout=0.05)
    try:
        eventually(broker.size, 0)
        eventually(lambda: broker.counts()[PROCESSING], 0)
    finally:
        pool.stop()


def test_the_overview_shows_counts_pools_and_recent_runs(
    broker: Broker, client: TestClient
) -> None:
    q = broker.queue()
    sent = [q.dash.price("apple") for _ in range(3)]
    data = client.get("/api/overview").json()
    (queue,) = data["queues"]
    assert queue["name"] == "default"
    assert queue["counts"]["enqueued"] == 3
    assert len(queue["chart"]) == 60
    page = client.get("/")
    assert page.status_code == 200
    assert '<dd data-count="enqueued">3</dd>' in page.text
    pool = WorkerPool(broker, workers=2)
    pool.start(timeout=0.05)
    try:
        assert all(d.wait(WAIT) for d in sent)

        def live() -> tuple[int, int, int]:
            (now,) = client.get("/api/overview").json()["queues"]
            succeeded = sum(minute["succeeded"] for minute in now["chart"])  # a minute may turn
            return now["counts"]["enqueued"], len(now["pools"]), succeeded

        eventually(live, (0, 1, 3), timeout=WAIT)
    finally:
        pool.stop()


def test_a_task_page_shows_its_graph_and_escapes_what_it_shows(
    broker: Broker, client: TestClient
) -> None:
    q = broker.queue()
    good = q.dash.price("apple")
    bad = q.dash.price(f"bad{PLANTED}")
    both = q.dash.total(good, bad)
    page = client.get(f"/tasks/{both.id}")
    assert page.status_code == 200
    assert "dash.total" in page.text
    assert "pending" in page.text
    assert page.text.count('class="node ') == 3  # its two arguments, and itself
    run_all(broker)
    failed = client.get(f"/tasks/{bad.id}").text
    assert PLANTED not in failed  # shown as text, never as markup
    assert "&lt;script&gt;alert(&#39;planted&#39;)&lt;/script&gt;" in failed
    assert f'data-node="{both.id}"' in failed  # the dependant its failure was handed to
    listing = client.get("/failed").text
    assert PLANTED not in listing
    assert "unknown sku bad&lt;script&gt;" in listing
    assert client.get("/tasks/no-such-task").status_code == 404
    found = client.get(f"/tasks?id={good.id}", follow_redirects=False)
    assert (found.status_code, found.headers["location"]) == (303, f"/tasks/{good.id}")


def test_failed_tasks_are_retried_and_discarded_from_the_page(
    broker: Broker, client: TestClient
) -> None:
    q = broker.queue()
    first, second, third = (q.dash.price(f"bad-{n}") for n in range(3))
    run_all(broker)
    token = csrf(client)
    headers = {CSRF_HEADER: token}
    done = client.post("/api/failed/retry", json={"queue": "default", "ids": [first.id]},
                       headers=headers).json()  # fmt: skip
    assert done == {"done": {first.id: "retried"}, "retried": 1}
    discarded = client.post(
        "/api/failed/discard", json={"queue": "default", "match": {"error": "BAD-1"}},
        headers=headers,
    ).json()  # fmt: skip
    assert discarded == {"discarded": [second.id]}
    assert [t.id for t in broker.failed_tasks()] == [third.id]
    assert "bad-2" in client.get("/failed?task=dash.price&error=bad-2").text
    assert "No failed task matches" in client.get("/failed?error=nothing+like+it").text


def test_forged_and_malformed_actions_are_refused(broker: Broker, client: TestClient) -> None:
    body = {"queue": "default", "ids": ["x"]}
    assert client.post("/api/failed/retry", json=body).status_code == 403  # no token
    wrong = {CSRF_HEADER: "guess"}
    assert client.post("/api/failed/retry", json=body, headers=wrong).status_code == 403
    token = {CSRF_HEADER: csrf(client)}
    forged = client.post("/api/failed/retry", json=body,
                         headers={**token, "Origin": "https://evil.example"})  # fmt: skip
    assert forged.status_code == 403
    assert "cross-site" in forged.json()["error"]
    as_form = client.post("/api/failed/retry", data={"queue": "default"}, headers=token)
    assert as_form.status_code == 415
    assert client.post("/api/failed/explode", json=body, headers=token).status_code == 404
    bad = client.post("/api/failed/retry", json={"queue": "default", "ids": "x"}, headers=token)
    assert bad.status_code == 400
    assert client.get("/api/failed/retry").status_code == 405
    garbled = client.post("/api/failed/retry", content=b"{", headers={
        **token, "Content-Type": "application/json"})  # fmt: skip
    assert garbled.status_code == 400
    elsewhere = {"queue": "not-shown{}", "ids": ["x"]}
    assert client.post("/api/failed/retry", json=elsewhere, headers=token).status_code == 404
    assert client.get("/failed?queue=not-shown").status_code == 404
    assert client.get("/tasks/x?queue=bad{name}").status_code == 404
    page = client.get("/")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"


def test_authentication_when_asked_for(url: str) -> None:
    with TestClient(app(url, auth="ops:s3cret")) as client:
        assert client.get("/").status_code == 401
        assert client.get("/", auth=("ops", "wrong")).status_code == 401
        assert client.get("/", auth=("ops", "s3cret")).status_code == 200
        odd = {"Authorization": "Basic !!!"}
        assert client.get("/", headers=odd).status_code == 401
        token = base64.b64encode(b"ops:s3cret").decode()
        assert client.get("/api/overview", headers={"Authorization": f"Basic {token}"}).is_success


def test_open_pages_cost_a_few_redis_commands_a_second(clean_redis_url: str) -> None:
    """However many pages poll, the reads are shared: a handful of commands a second."""
    get_broker(clean_redis_url).queue().dash.price("apple")
    server = redis.Redis.from_url(clean_redis_url)
    with TestClient(app(clean_redis_url)) as client:
        client.get("/api/overview")

        def calls() -> int:
            stats = server.info("commandstats")
            return sum(int(v["calls"]) for k, v in stats.items() if "info" not in k)

        before, start = calls(), time.monotonic()
        polls = 0
        while time.monotonic() - start < 3 * REFRESH:  # ten pages polling, hard
            client.get("/api/overview")
            polls += 1
        elapsed = time.monotonic() - start
        per_second = (calls() - before) / elapsed
    server.close()
    assert polls > 30
    assert per_second < 10, per_second


def test_the_app_mounts_in_another(url: str) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    sent = get_broker(url).queue().dash.price("x")
    outer = Starlette(routes=[Mount("/ops/worq", app(url))])
    with TestClient(outer) as client:
        assert client.get("/ops/worq/api/overview").json()["queues"]
        page = client.get("/ops/worq/").text
        assert 'src="/ops/worq/static/dashboard.js"' in page
        assert 'data-live="/ops/worq/api/overview"' in page
        assert client.get("/ops/worq/static/dashboard.js").status_code == 200
        found = client.get(f"/ops/worq/tasks?id={sent.id}", follow_redirects=False)
        assert found.headers["location"] == f"/ops/worq/tasks/{sent.id}"
        assert client.get(found.headers["location"]).status_code == 200


def test_queues_shown_are_those_asked_for(url: str) -> None:
    get_broker(url, "alpha").queue().dash.price("x")
    get_broker(url, "beta").queue().dash.price("x")
    with TestClient(app(url, ["beta"])) as client:
        assert [q["name"] for q in client.get("/api/overview").json()["queues"]] == ["beta"]


def worq_command(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-P", "-m", "worq", "dashboard", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(SRC), **(env or {})},
    )  # fmt: skip


def test_worq_dashboard_serves_until_stopped(clean_redis_url: str) -> None:
    env = {"WORQ_TEST_AUTH": "ops:pw"}
    proc = worq_command(clean_redis_url, "--port", "0", "--auth-env", "WORQ_TEST_AUTH", env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"on (http://127\.0\.0\.1:\d+/)$", line.strip())
        assert found is not None, line
        site = found.group(1)
        with pytest.raises(urllib.error.HTTPError, match="401") as refused:
            urllib.request.urlopen(site, timeout=WAIT)
        refused.value.close()
        request = urllib.request.Request(site + "api/overview")
        request.add_header("Authorization", "Basic " + base64.b64encode(b"ops:pw").decode())
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            assert "queues" in json.loads(response.read())
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=WAIT)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=WAIT)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "--host 0.0.0.0 would show your queues"),
        (["--auth", "nocolon"], "--auth takes USER:PASSWORD"),
        (
            ["--auth-env", "WORQ_TEST_UNSET"],
            "WORQ_TEST_UNSET: that environment variable is not set",
        ),
    ],
)
def test_worq_dashboard_refuses_unsafe_or_bad_options(
    clean_redis_url: str, args: list[str], message: str
) -> None:
    proc = worq_command(clean_redis_url, *args)
    _, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 2
    assert message in err


def test_worq_dashboard_on_a_port_in_use_says_so(clean_redis_url: str) -> None:
    taken = socket.create_server(("127.0.0.1", 0))
    try:
        proc = worq_command(clean_redis_url, "--port", str(taken.getsockname()[1]))
        _, err = proc.communicate(timeout=WAIT)
    finally:
        taken.close()
    assert proc.returncode == 2
    assert "cannot serve the dashboard on 127.0.0.1:" in err
    assert "choose another --port" in err
