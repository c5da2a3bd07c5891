"""What only the Redis backend has: URLs, scripts, cluster slots, outages, processes."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.crc import key_slot
from structlog.testing import capture_logs

from tests.test_broker import Trap
from worq import BackendUnavailable, Task, TaskFailure, get_broker, get_queue
from worq._ids import new_task_id
from worq.core import Broker
from worq.pool.thread import WorkerPool
from worq.queue.redis import _SCRIPTS, TaskQueue, _Request
from worq.testing import WAIT, RedisServer, eventually, free_port, thread_worker
from worq.typing import FailureNote, ScheduleState

ROOT = Path(__file__).parent.parent


def echo(value: Any) -> Any:
    return value


def fail() -> None:
    raise ValueError("no")


def roundtrip(url: str) -> None:
    """Run one task through a worker on ``url`` and check its result."""
    broker = get_broker(url)
    broker.expose(echo)
    with thread_worker(broker, timeout=0.2):
        res = get_queue(url).echo("over the wire")
        assert res.wait(WAIT), repr(res)
        assert res.value == "over the wire"
    broker.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server for one test, with a unix socket too."""
    instance = RedisServer(
        tmp_path,
        extra_args=("--unixsocket", str(tmp_path / "redis.sock"), "--unixsocketperm", "700"),
    )
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


def test_unix_socket_url(server: RedisServer) -> None:
    """unix:///path.sock?db=N reaches the server through its socket."""
    roundtrip(f"unix://{server.directory / 'redis.sock'}?db=3")
    client = redis.Redis.from_url(server.url)
    assert client.dbsize() == 0  # everything went to db 3
    client.close()


def test_acl_user_and_masked_password(server: RedisServer) -> None:
    """An ACL user works; a wrong password is BackendUnavailable without the password."""
    admin = redis.Redis.from_url(server.url)
    admin.acl_setuser(
        "worker", enabled=True, passwords=["+s3cret"], keys=["worq:*"], commands=["+@all"]
    )
    admin.close()
    roundtrip(f"redis://worker:s3cret@127.0.0.1:{server.port}/0")
    with pytest.raises(BackendUnavailable) as raised:
        get_queue(f"redis://worker:wrong-pw@127.0.0.1:{server.port}/0").echo(1)
    message = str(raised.value)
    assert f"cannot reach Redis at redis://worker:***@127.0.0.1:{server.port}/0" in message
    assert "wrong-pw" not in message


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for localhost, made with the openssl command."""
    ca_key, ca, key, csr, cert = (
        directory / n for n in ("ca.key", "ca.pem", "s.key", "s.csr", "s.pem")
    )
    ext = directory / "san.cnf"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for command in [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
         "-days", "1", "-subj", "/CN=worq test CA"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
         "-subj", "/CN=localhost"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
         "-days", "1", "-extfile", ext],
    ]:  # fmt: skip
        subprocess.run(["openssl", *map(str, command)], check=True, capture_output=True)
    return ca, cert, key


def test_tls_with_ca_certs(tmp_path: Path) -> None:
    """rediss:// verifies the server against ?ssl_ca_certs=; an unknown CA is refused."""
    ca, cert, key = make_certificates(tmp_path)
    tls_port = free_port()
    tls = RedisServer(
        tmp_path,
        extra_args=(
            "--tls-port", str(tls_port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
            "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no",
        ),
    )  # fmt: skip
    tls.start()
    try:
        roundtrip(f"rediss://localhost:{tls_port}/0?ssl_ca_certs={ca}")
        with pytest.raises(BackendUnavailable, match="certificate verify failed"):
            get_queue(f"rediss://localhost:{tls_port}/0").echo(1)
    finally:
        tls.stop()


@pytest.mark.parametrize(
    ("bad_url", "fragment"),
    [
        ("redis://u:secret@localhost:notaport/0", "malformed Redis URL 'redis://u:***@localhost"),
        ("redis://localhost:6379/0?bogus_option=1", "malformed Redis URL"),
        ("redis://localhost:6379/0?db=x", "malformed Redis URL"),
    ],
)
def test_malformed_urls(bad_url: str, fragment: str) -> None:
    """A malformed Redis URL is a ValueError naming it, password masked."""
    with pytest.raises(ValueError, match="^" + fragment.replace("*", r"\*")) as raised:
        get_broker(bad_url)
    assert "secret" not in str(raised.value)


def test_unreachable_server_names_it() -> None:
    """A call to a server nobody listens on raises BackendUnavailable naming the URL."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    q = get_queue(url)
    with pytest.raises(
        BackendUnavailable, match=f"cannot reach Redis at {url} \\(queue 'default'\\)"
    ):
        q.echo(1)


def test_scripts_reload_after_script_flush(url_redis: str) -> None:
    """After the server forgets the scripts (restart, SCRIPT FLUSH) they are reloaded."""
    client = redis.Redis.from_url(url_redis)
    broker = get_broker(url_redis)
    broker.expose(echo)
    with thread_worker(broker, timeout=0.2):
        q = get_queue(url_redis)
        assert q.echo(1).wait(WAIT)
        client.script_flush()
        res = q.echo(2)
        assert res.wait(WAIT)
        assert res.value == 2
    client.close()


@pytest.fixture
def url_redis(clean_redis_url: str) -> str:
    """The session Redis server, emptied."""
    return clean_redis_url


def run_flows(url: str) -> None:
    """Run fan-in, failure, ignore_result and status flows to the end on a worker of ``url``.

    The worker must expose ``echo``, ``fail``, ``sum`` and ``RECORDED.append``.
    """
    q = get_queue(url)
    nums = [q.echo(n) for n in range(4)]
    total = q.sum(nums)
    failed = q.fail()
    passed = Task(q.echo, on_error=Task.PASS)([failed])
    RECORDED.clear()
    Task(q.append, ignore_result=True)(0)
    Task(q.append, ignore_result=True)(q.echo("feeds a fire-and-forget task"))
    assert total.status in {"pending", "enqueued", "processing", "completed"}
    for res in [*nums, total, failed, passed]:
        assert res.wait(WAIT), repr(res)
    assert total.value == 6
    assert passed.value == [TaskFailure("fail", "default", failed.id, "ValueError: no")]
    assert passed.status == "success"
    eventually(lambda: sorted(map(str, RECORDED)), ["0", "feeds a fire-and-forget task"])


RECORDED: list[object] = []


def flow_broker(url: str) -> Broker:
    """A broker exposing what :func:`run_flows` calls."""
    broker = get_broker(url)
    for fn in (echo, fail, sum, RECORDED.append):
        broker.expose(fn)
    return broker


def test_every_script_call_stays_in_one_slot(
    url_redis: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All KEYS of every script call hash to one Redis Cluster slot."""
    calls: list[tuple[str, list[str]]] = []
    original = TaskQueue._send_chunk

    def recording(self: TaskQueue, chunk: Any) -> Any:
        calls.extend((call.script, list(call.keys)) for call in chunk)
        return original(self, chunk)

    monkeypatch.setattr(TaskQueue, "_send_chunk", recording)
    broker = flow_broker(url_redis)
    with thread_worker(broker, timeout=0.2):
        run_flows(url_redis)
        flaky = Task(get_queue(url_redis).fail, retries=1, retry_backoff=0)()
        assert flaky.wait(WAIT)
        broker.taskqueue.discard_pending()
        broker.taskqueue.size()
        broker.reap()
        broker.taskqueue.reclaim_task("x")
        broker.taskqueue.renew_lease("x", 1)
        broker.taskqueue.register_schedules([("s", ScheduleState(b"{}", 0, 1))])
        broker.taskqueue.schedule_states(1)
        broker.taskqueue.fire_schedule("s", 1, 2, None, skip_running=True)
        broker.taskqueue.announce_pool("p", b"{}", 1)
        broker.taskqueue.live_pools()
        broker.taskqueue.next_in_line()
        broker.taskqueue.file_failure("f", b"{}\n", 1, FailureNote("failed", "e", 1, 1))
        broker.taskqueue.failed_tasks(1)
        broker.taskqueue.discard_failed(None)
        broker.taskqueue.retry_failed(None)
        broker.taskqueue.add_stats({(1, "succeeded"): 1, (2, "failed"): 1}, 1)
        broker.taskqueue.stats(1, 2)
        broker.taskqueue.inspect("x")
    assert {script for script, _ in calls} == set(_SCRIPTS)
    for script, keys in calls:
        assert len({key_slot(key.encode()) for key in keys}) == 1, (script, keys)


def test_no_key_without_ttl_once_results_are_taken(url_redis: str) -> None:
    """After every result was popped, each worq key left has a TTL, but the lease counter."""
    pool = WorkerPool(flow_broker(url_redis))
    pool.start(timeout=0.2)
    try:
        run_flows(url_redis)
    finally:
        pool.stop()
    client = redis.Redis.from_url(url_redis)
    leaked = {key: client.pttl(key) for key in client.scan_iter("worq:*")}
    client.close()
    permanent = {key for key, ttl in leaked.items() if ttl < 0}
    assert permanent == {b"worq:{default}:leases"}  # one small counter per queue


def test_idle_pool_blocks_once_per_timeout(url_redis: str) -> None:
    """An idle pool costs at most one blocking command per timeout per worker."""
    client = redis.Redis.from_url(url_redis)
    pool = WorkerPool(get_broker(url_redis), workers=2)
    client.config_resetstat()
    pool.start(timeout=0.25)
    threading.Event().wait(1.0)  # the idle time under test
    pool.stop()
    stats = client.info("commandstats")
    client.close()
    blocking = stats.get("cmdstat_blmove", {}).get("calls", 0)
    assert 2 <= blocking <= 2 * (1.0 / 0.25 + 2), stats


def test_pool_survives_redis_restart(tmp_path: Path) -> None:
    """A running pool logs backend.unavailable while Redis is down and resumes after."""
    server = RedisServer(tmp_path)
    server.start()
    broker = get_broker(server.url)
    broker.expose(echo)
    pool = WorkerPool(broker)
    try:
        with capture_logs() as logs:
            pool.start(timeout=0.2)
            q = get_queue(server.url)
            assert q.echo(1).wait(WAIT)
            server.stop()
            eventually(lambda: any(e["event"] == "backend.unavailable" for e in logs), True)
            with pytest.raises(BackendUnavailable):
                q.echo(2)
            server.start()
            res = q.echo(3)
            assert res.wait(WAIT), repr(res)
            assert res.value == 3
        assert any(e["event"] == "backend.available" for e in logs)
    finally:
        pool.stop()
        server.stop()


def test_garbage_id_pushed_into_queue_is_rejected(url_redis: str) -> None:
    """Bytes pushed straight into the queue list are reported and skipped; nothing is stored."""
    broker = get_broker(url_redis)
    broker.expose(echo)
    client = redis.Redis.from_url(url_redis)
    with capture_logs() as logs, thread_worker(broker, timeout=0.2):
        client.lpush("worq:{default}:queue", "junk-id")
        assert get_queue(url_redis).echo(1).wait(WAIT)
        eventually(lambda: any(e.get("task_id") == "junk-id" for e in logs), True)
    assert client.exists("worq:{default}:result:junk-id") == 0
    client.close()
    rejected = next(e for e in logs if e["event"] == "task.rejected")
    assert "names no stored task" in rejected["error"]


def test_pickle_planted_in_task_hash_is_never_unpickled(url_redis: str) -> None:
    """A pickle written over a queued task's message is rejected, never run."""
    q = get_queue(url_redis)
    res = q.echo(1)
    client = redis.Redis.from_url(url_redis)
    client.hset(f"worq:{{default}}:task:{res.id}", "msg", pickle.dumps(Trap()))
    client.close()
    broker = get_broker(url_redis)
    broker.expose(echo)
    with thread_worker(broker, timeout=0.2):
        assert res.wait(WAIT)
    with pytest.raises(TaskFailure, match="pickle data"):
        res.value  # noqa: B018  # the attribute access is the test
    assert not Trap.sprung


def test_ping_and_key_listing(url_redis: str) -> None:
    """ping() answers; log_all_worq() lists the queue's keys with their TTLs."""
    tq = TaskQueue(url_redis, "listing")
    assert tq.ping()
    tq.enqueue_task("a", b"A", keep_result=True, track=True)
    tq.enqueue_task("b", b"B", keep_result=True, track=True)
    taken = tq.get(0)
    assert taken is not None
    tq.set_result("a", b"R", 60, taken.lease)
    assert {e["key"] for e in tq.log_all_worq()} == {
        "worq:{listing}:queue",
        "worq:{listing}:task:b",
        "worq:{listing}:leases",
    }
    everything = {e["key"]: e for e in tq.log_all_worq(show_expiring=True)}
    assert everything["worq:{listing}:result:a"]["ttl_ms"] > 0
    tq.close()


def test_client_and_pool_in_different_processes(url_redis: str) -> None:
    """A client here and a thread pool in another process share work through Redis."""
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.worker_process", url_redis],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "ready"
        q = get_queue(url_redis)
        remote_pid = q.proc.pid()
        total = q.proc.add([q.proc.add([1, 2]), 3])
        assert remote_pid.wait(WAIT)
        assert total.wait(WAIT)
        assert remote_pid.value == worker.pid
        assert total.value == 6
    finally:
        worker.terminate()
        assert worker.wait(WAIT) == 0
        if worker.stdout is not None:
            worker.stdout.close()


def test_outcome_stored_once_redis_returns(tmp_path: Path) -> None:
    """A task finishing while Redis is down has its result stored when Redis is back."""
    server = RedisServer(tmp_path, appendonly=True)
    server.start()
    release, started = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait(WAIT)
        return "kept"

    broker = get_broker(server.url)
    broker.expose(slow)
    pool = WorkerPool(broker)
    pool.start(timeout=0.2)
    try:
        with capture_logs() as logs:
            res = get_queue(server.url).slow()
            assert started.wait(WAIT)
            server.stop()
            release.set()
            eventually(lambda: any(e["event"] == "backend.unavailable" for e in logs), True)
            server.start()
            assert res.wait(WAIT), repr(res)
        assert res.value == "kept"
    finally:
        pool.stop()
        server.stop()


def test_blocking_waits_are_not_cut_by_a_socket_timeout(url_redis: str) -> None:
    """Workers block longer than redis-py's default socket timeout without an error."""
    tq = TaskQueue(url_redis)
    assert tq.redis.connection_pool.connection_kwargs["socket_timeout"] is None
    tq.close()
    custom = TaskQueue(url_redis + "?socket_timeout=30")
    assert custom.redis.connection_pool.connection_kwargs["socket_timeout"] == 30
    custom.close()


def test_id_stranded_in_claimed_list_goes_back_to_the_queue(url_redis: str) -> None:
    """A worker dying between BLMOVE and its get script does not strand the task."""
    tq = TaskQueue(url_redis, initial_result_timeout=0.1)
    tq.enqueue_task("a", b"A", keep_result=True, track=True)
    tq.redis.lmove(tq.keys.queue, tq.keys.claimed, "RIGHT", "LEFT")  # then the worker dies
    assert tq.get(0) is None
    assert tq.reclaim(10) == []  # first sighting
    eventually(lambda: (tq.reclaim(10), tq.size())[1], 1)
    taken = tq.get(0)
    assert taken is not None
    assert taken.task_id == "a"
    assert tq.redis.exists(tq.keys.claimed, tq.keys.claimed_since) == 0
    tq.close()


def test_a_result_feeding_many_dependants_is_stored_once(url_redis: str) -> None:
    """One 2 MB result handed to 20 pending tasks takes one shared copy, not 20."""
    tq = TaskQueue(url_redis)
    client = redis.Redis.from_url(url_redis)
    try:
        tq.enqueue_task("big", b"B", keep_result=True, track=True)
        for n in range(20):
            assert tq.defer_task(f"d{n}", b"D", ["big"], keep_result=True).value == "stored"
        before = int(client.info("memory")["used_memory"])
        taken = tq.get(0)
        assert taken is not None
        result = b"x" * (2 * 1024 * 1024)
        assert tq.set_result("big", result, 60, taken.lease)
        grown = int(client.info("memory")["used_memory"]) - before
        # The result list, one shared copy, and the server's buffers for the
        # call itself; a copy per dependant would be 20 * 2 MB more.
        assert grown < 8 * len(result), grown
        late = tq.defer_task("late", b"L", ["big"], keep_result=True)  # takes the same copy
        assert late.value == "stored"
        for _ in range(21):  # the 20, and the late one
            run = tq.get(0)
            assert run is not None
            assert tq.get_arguments(run.task_id) == {"big": result}
            assert tq.set_result(run.task_id, b"done", 60, run.lease)
        assert client.exists("worq:{default}:shared:big") == 0  # the last holder let go
        assert tq.pop_result("big", 0) == result
    finally:
        client.close()
        tq.close()


def _in_forked_child(work: Any) -> str:
    """``work()``'s text, computed in a forked child of this process."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the text back to the parent, then out
        try:
            os.write(write, str(work()).encode())
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    text = os.read(read, 4096).decode()
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0
    return text


def test_a_forked_child_draws_task_ids_of_its_own() -> None:
    """Ids come from a generator seeded once per process: a forked child reseeds it,
    so that it never draws the ids its parent draws next."""
    child = _in_forked_child(lambda: [new_task_id(7) for _ in range(3)])
    parent = str([new_task_id(7) for _ in range(3)])
    assert child != parent
    assert len({new_task_id(7) for _ in range(10_000)}) == 10_000


def test_a_forked_child_opens_connections_of_its_own(redis_url: str) -> None:
    """The queue's held connections are the parent's after a fork: a child's round
    trips go on a connection it opened (another client id), never on the parent's."""
    tq = TaskQueue(redis_url)
    try:
        held = tq._route.node()[1]
        parent = held.run([("CLIENT", "ID")])[0]
        assert held.run([("CLIENT", "ID")])[0] == parent  # kept for reuse
        child = _in_forked_child(lambda: held.run([("CLIENT", "ID")])[0])
        assert int(child) != parent
        assert held.run([("CLIENT", "ID")])[0] == parent
    finally:
        tq.close()


def test_request_tokens_are_unique_and_a_forked_child_draws_its_own() -> None:
    """Counter-made request tokens never repeat, in this process or in a forked child."""
    tokens = [_Request().token for _ in range(1000)]
    assert len(set(tokens)) == len(tokens)
    child = _in_forked_child(lambda: _Request().token)
    assert child
    assert child not in tokens
    assert child[:20] != tokens[0][:20]  # not the parent's prefix with another count
