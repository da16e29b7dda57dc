"""Three sentimentd processes on one Redis in front of one model server with
four slots, reached by one client balancing over them: the model server
never sees more than its slots, and a batch whose replica is killed with
SIGKILL completes on the others, every item answered exactly once."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List

from conftest import RX6800_SYSFS, Server, _start_server, _stop, wait_local_warm
from upstream_fakes import FakeOllama

import pytest

import catalyst_sentiment as cs
from catalyst.sentiment.v1 import sentiment_pb2 as pb

SLOTS = 4


def _seen(addr: str) -> int:
    with cs.Client(addr) as c:
        return c.stats().prefilter.seen


def test_replicas_share_the_gpu_and_a_batch_survives_a_killed_replica(
    sentimentd_bin: str, tmp_path: Path, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeOllama(delay=0.04).start()
    servers: List[Server] = []
    try:
        for n in range(3):
            workdir = tmp_path / f"replica-{n}"
            workdir.mkdir()
            servers.append(
                _start_server(
                    sentimentd_bin,
                    workdir,
                    f"replica-{n}",
                    {
                        "REDIS_URL": redis_url,
                        "LLM_LOCAL_ENABLED": "1",
                        "LLM_ENDPOINT_URL": fake.url,
                        "LLM_MAX_CONCURRENT": str(SLOTS),
                        "SENTIMENT_GPU_READER": "sysfs",
                        "SENTIMENT_GPU_SYSFS_ROOT": str(RX6800_SYSFS),
                        "GPU_CLEANUP_INTERVAL_SEC": "0",
                    },
                )
            )
        for s in servers:
            wait_local_warm(s.addr)
        target = "ipv4:" + ",".join(s.addr for s in servers)

        with cs.Client(target, timeout=30) as client:
            # A burst of unary calls, balanced over the three replicas.
            def classify(i: int) -> pb.ClassifyResponse:
                return client.classify(
                    f"Acme wins order {i} and raises guidance",
                    id=f"u-{i}",
                    options={"skip_cache": True},
                )

            with ThreadPoolExecutor(12) as pool:
                unary = list(pool.map(classify, range(90)))
            assert all(r.provenance.tier == pb.TIER_LOCAL for r in unary), [
                r.provenance for r in unary if r.provenance.tier != pb.TIER_LOCAL
            ]
            before = {s.addr: _seen(s.addr) for s in servers}
            assert all(n > 0 for n in before.values()), f"calls per replica: {before}"
            assert fake.peak <= SLOTS, f"the model server saw {fake.peak} calls at once"

            # A batch; its replica is killed once 40 answers are in.
            items = [
                {"id": f"b-{i}", "ticker": "INIT", "title": f"Initech lands contract {i} and lifts its outlook"}
                for i in range(200)
            ]
            answers: List[pb.ClassifyBatchResponse] = []
            victim = None
            with caplog.at_level(logging.WARNING, logger="catalyst_sentiment.client"):
                for resp in client.classify_batch(items, timeout=90):
                    answers.append(resp)
                    if len(answers) == 40:
                        victim = max(servers, key=lambda s: _seen(s.addr) - before[s.addr])
                        victim.proc.kill()
                        victim.proc.wait()
            assert any("resuming on another replica" in r.getMessage() for r in caplog.records)
            assert victim is not None
            ids = [r.id for r in answers]
            assert len(ids) == len(set(ids)), "an item was answered twice"
            assert sorted(ids) == sorted(i["id"] for i in items), "an item was lost"
            assert all(r.HasField("result") for r in answers), [r for r in answers if not r.HasField("result")][:3]
            assert fake.peak <= SLOTS, f"the model server saw {fake.peak} calls at once"

            # The survivors still answer, and lease the slots in Redis.
            for s in servers:
                if s is victim:
                    continue
                with cs.Client(s.addr) as c:
                    assert c.classify("Acme beats estimates", options={"skip_cache": True}).label == pb.LABEL_BULLISH
                    q = c.gpu_status().queue
                    assert q.shared == "redis", q
    finally:
        for s in servers:
            _stop(s)
        fake.stop()
