"""OpenTelemetry traces across a client and a process pool, each in its own process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from worq.testing import WAIT

ROOT = Path(__file__).parent.parent


def test_a_run_is_a_child_of_the_span_that_sent_it(clean_redis_url: str, tmp_path: Path) -> None:
    """The client's send span is a child of its own span; each worker's run span is a
    child of the send span, in the same trace, with the task's attributes; a failed
    run's span is an error; a malformed traceparent is logged once and the task runs."""
    spans_file = tmp_path / "spans.jsonl"
    env = {**os.environ, "WORQ_TEST_SPANS": str(spans_file)}
    log = tmp_path / "pool.jsonl"
    with log.open("wb") as stderr:
        pool = subprocess.Popen(
            [sys.executable, "-m", "worq", "worker", "tests.tracing_app:init", clean_redis_url,
             "--pool", "process", "--workers", "1", "--timeout", "0.2", "--log-format", "json"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=stderr,
        )  # fmt: skip
    try:
        client = subprocess.run(
            [sys.executable, "-m", "tests.tracing_app", clean_redis_url],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=WAIT * 3,
        )  # fmt: skip
        assert client.returncode == 0, client.stderr
    finally:
        pool.send_signal(signal.SIGTERM)
        assert pool.wait(WAIT) == 0
    spans = [json.loads(line) for line in spans_file.read_text().splitlines()]
    by_name: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        by_name.setdefault(span["name"], []).append(span)
    (request,) = by_name["request"]
    sends = by_name["worq.send tracing.double"]
    runs = by_name["worq.run tracing.double"]
    assert len(sends) == 2
    assert len(runs) == 3  # the two sent, and the malformed one
    assert {s["parent_id"] for s in sends} == {request["span_id"]}
    assert {s["trace_id"] for s in sends} == {request["trace_id"]}
    assert {s["pid"] for s in sends} == {request["pid"]}
    children = [run for run in runs if run["parent_id"] is not None]
    assert sorted(run["parent_id"] for run in children) == sorted(s["span_id"] for s in sends)
    assert {run["trace_id"] for run in children} == {request["trace_id"]}
    assert all(run["pid"] != request["pid"] for run in runs)  # run in the worker process
    assert {run["attributes"]["worq.queue"] for run in runs} == {"default"}
    assert {run["attributes"]["worq.attempt"] for run in runs} == {1}
    failed = [run for run in children if run["status"] == "ERROR"]
    assert len(failed) == 1
    assert "does not fit" in failed[0]["description"]
    (orphan,) = [run for run in runs if run["parent_id"] is None]
    assert orphan["attributes"]["worq.task.id"] == "malformed"
    assert orphan["trace_id"] != request["trace_id"]
    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    invalid = [e for e in events if e["event"] == "trace.context_invalid"]
    assert len(invalid) == 1
    assert invalid[0]["task_id"] == "malformed"
