"""The run board a process-pool worker shares with its pool, and the pool reading it."""

from __future__ import annotations

import multiprocessing
import struct

import pytest
import redis

from tests import process_tasks
from worq import Task, TaskExpired, get_broker
from worq.models import Envelope, TaskOptions
from worq.pool._run_board import BOARD_SIZE, RunBoard
from worq.pool.process import WorkerPool
from worq.testing import WAIT, eventually

_spawn = multiprocessing.get_context("spawn")


def _envelope(task_id: str = "t1", refs: tuple[str, ...] = ()) -> Envelope:
    return Envelope(
        id=task_id, name="proc.add", queue="default", options=TaskOptions(retries=2),
        refs=refs, attempt=3, lease="lease-7",
    )  # fmt: skip


def test_a_posted_run_is_read_back_whole_once_settled_and_counted_when_it_ends() -> None:
    worker_side = RunBoard.allocate(_spawn, "default")
    pool_side = RunBoard(worker_side.shared, "default")
    assert (pool_side.read().done, pool_side.read().task_id) == (0, None)
    task = _envelope()
    assert worker_side.post(task)
    live = pool_side.read()
    assert (live.done, live.task_id, live.task) == (0, "t1", None)  # no unpickling while live
    assert pool_side.read(settled=True).task == task
    worker_side.finish()
    assert worker_side.post(_envelope("t2"))
    worker_side.finish()
    ended = pool_side.read(settled=True)
    assert (ended.done, ended.task_id, ended.task) == (2, None, None)
    pool_side.clear()
    assert pool_side.read().done == 0


def test_an_envelope_too_big_for_the_board_posts_only_its_id() -> None:
    """The worker then announces the run by message (the pool needs the envelope)."""
    board = RunBoard.allocate(_spawn, "default")
    refs = tuple(f"{n:032x}" for n in range(BOARD_SIZE // 32 + 1))
    assert not board.post(_envelope("big", refs))
    posted = board.read(settled=True)
    assert (posted.task_id, posted.task) == ("big", None)


def test_a_post_torn_by_the_workers_death_reads_as_no_task() -> None:
    """A worker that died mid-write left an odd sequence number: the task is not named
    (its lease lapses and a reaper settles it), and a live read does not hang on it."""
    board = RunBoard.allocate(_spawn, "default")
    assert board.post(_envelope())
    struct.pack_into("<Q", memoryview(board.shared).cast("B"), 0, 7)
    assert board.read(settled=True).task_id is None
    assert board.read().task_id is None


@pytest.mark.parametrize("time_limit", [None, 60.0])
def test_a_worker_dying_in_a_task_fails_it_from_the_board_or_its_announcement(
    clean_redis_url: str, time_limit: float | None
) -> None:
    """A run with no time limit is only on the board; one with a time limit is also
    announced by message. Either way the pool fails it at once when its worker dies,
    between runs it posted and ended (the board's count goes on across workers)."""
    url = clean_redis_url
    pool = WorkerPool(process_tasks.init(url), process_tasks.init, workers=1)
    pool.start(timeout=0.1, handle_sigterm=False)
    try:
        q = get_broker(url).queue()
        assert all(d.wait(WAIT) for d in [q.proc.add([1, 2]), q.proc.add([3])])
        doomed = Task(q.proc.die, time_limit=time_limit)("sigkill")
        assert doomed.wait(WAIT)
        with pytest.raises(TaskExpired, match=r"worker process \d+ died \(exit code -9\)"):
            doomed.value  # noqa: B018  # the attribute access is the test
        after = q.proc.add([4])
        assert after.wait(WAIT)
        assert after.value == 4
        eventually(lambda: pool._activity()[0], 3)
    finally:
        pool.stop()


def test_a_process_pools_record_names_the_task_its_worker_runs(clean_redis_url: str) -> None:
    """The pool's heartbeat reads its workers' boards: the running task and runs done."""
    url = clean_redis_url
    pool = WorkerPool(process_tasks.init(url), process_tasks.init, workers=1)
    pool.start(timeout=0.1, handle_sigterm=False)
    broker = get_broker(url)
    client = redis.Redis.from_url(url)
    try:
        q = broker.queue()
        assert q.proc.add([1]).wait(WAIT)
        held = q.proc.wait_for_key(url, "go", WAIT)
        eventually(lambda: [r.running for r in broker.live_pools()], [(held.id,)])
        assert [r.tasks_done for r in broker.live_pools()] == [1]
        client.rpush("go", "now")
        assert held.wait(WAIT)
        eventually(lambda: [(r.tasks_done, r.running) for r in broker.live_pools()], [(2, ())])
    finally:
        client.close()
        pool.stop()
