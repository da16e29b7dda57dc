"""The Python client against the real server (see conftest.py).

The server runs with no language model reachable, so every final answer is
the lexicon's: these tests pin the contract (labels, provenance, phases,
errors, deadlines, auth, counters), not a model's opinion.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import threading
import time
from collections import Counter, defaultdict
from typing import Any, AsyncIterator, Dict, Iterator, List

import grpc
import pytest

import catalyst_sentiment as cs
from catalyst_sentiment import pb

BULLISH = "Acme soars after FDA approval of its cancer drug"
BEARISH = "Acme files for Chapter 11 bankruptcy after missing debt payment"
NEUTRAL = "Acme will hold its annual general meeting in Helsinki on Tuesday"

HEADLINES = [
    BULLISH,
    BEARISH,
    NEUTRAL,
    "Globex raises full-year guidance as operating profit rose 24%",
    "Initech cuts guidance after net sales decreased sharply",
    "Umbrella wins $2 billion defense contract",
    "Hooli shares plunge as regulators open fraud probe",
    "Vandelay Industries appoints new chief financial officer",
    "Stark beats earnings estimates and announces buyback",
    "Wayne Enterprises misses revenue estimates, stock falls",
]


@pytest.fixture
def client(addr: str):
    with cs.Client(addr) as c:
        yield c


def _code(excinfo: pytest.ExceptionInfo) -> grpc.StatusCode:
    return excinfo.value.code()


def _details(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.details() or ""


def _assert_lexicon_final(resp: pb.ClassifyResponse) -> None:
    assert resp.phase == pb.PHASE_FINAL
    assert resp.provenance.tier == pb.TIER_LEXICON


# --- Classify ---------------------------------------------------------------


def test_classify_bullish(client: cs.Client) -> None:
    resp = client.classify(BULLISH, ticker="ACME", id="t-bull-1", source="wire")
    assert resp.id == "t-bull-1"
    assert resp.label == pb.LABEL_BULLISH
    assert cs.label_name(resp.label) == "bullish"
    assert 0 < resp.score <= 1
    assert 0 <= resp.confidence <= 1
    assert resp.HasField("prescore")
    assert len(resp.prescore.hits) >= 1
    assert any(h.weight > 0 and h.phrase for h in resp.prescore.hits), resp.prescore
    assert resp.prescore.score > 0
    _assert_lexicon_final(resp)


def test_classify_bearish(client: cs.Client) -> None:
    resp = client.classify(BEARISH, ticker="ACME", id="t-bear-1")
    assert resp.id == "t-bear-1"
    assert resp.label == pb.LABEL_BEARISH
    assert cs.label_name(resp.label) == "bearish"
    assert -1 <= resp.score < 0
    assert len(resp.prescore.hits) >= 1
    assert any(h.weight < 0 for h in resp.prescore.hits), resp.prescore
    assert resp.prescore.score < 0
    _assert_lexicon_final(resp)


def test_final_lexicon_answer_says_why(client: cs.Client) -> None:
    # The contract (Provenance.degraded / prefiltered): with no language model
    # reachable, a final answer from the lexicon is there either because the
    # item was prefiltered (|prescore| below the threshold) or because no
    # model could judge it (degraded, with the reason). A strong headline is
    # never prefiltered, so here it must be degraded.
    resp = client.classify(BULLISH, id="t-why-1")
    prov = resp.provenance
    assert resp.phase == pb.PHASE_FINAL and prov.tier == pb.TIER_LEXICON
    assert abs(resp.prescore.score) >= 0.20
    assert not prov.prefiltered, prov
    assert prov.degraded, prov
    assert prov.reason, prov


def test_classify_accepts_news_item(client: cs.Client) -> None:
    item = cs.NewsItem(
        id="t-item-1",
        ticker="ACME",
        title=BULLISH,
        url="https://example.com/acme",
    )
    item.published_at.FromDatetime(dt.datetime(2024, 5, 1, 13, 30))
    resp = client.classify(item, id="t-item-2")
    # The keyword id overrides the item's, on a copy.
    assert resp.id == "t-item-2"
    assert item.id == "t-item-1"
    assert resp.label == pb.LABEL_BULLISH


def test_classify_published_at_datetime(client: cs.Client) -> None:
    when = dt.datetime(2024, 5, 1, 13, 30, tzinfo=dt.timezone.utc)
    resp = client.classify(BEARISH, id="t-pub-1", published_at=when)
    assert resp.id == "t-pub-1"
    assert resp.label == pb.LABEL_BEARISH


def test_classify_empty_title_is_invalid(client: cs.Client) -> None:
    with pytest.raises(grpc.RpcError) as excinfo:
        client.classify("", id="t-empty")
    assert _code(excinfo) == grpc.StatusCode.INVALID_ARGUMENT
    assert "item.title" in _details(excinfo)


def test_classify_title_over_limit_is_invalid(client: cs.Client) -> None:
    with pytest.raises(grpc.RpcError) as excinfo:
        client.classify("a" * 1001, id="t-long")
    assert _code(excinfo) == grpc.StatusCode.INVALID_ARGUMENT
    assert "1000" in _details(excinfo)
    assert "item.title" in _details(excinfo)


def test_classify_title_limit_counts_characters_not_bytes(client: cs.Client) -> None:
    # 1000 euro signs are 3000 bytes of UTF-8 but 1000 characters: allowed.
    resp = client.classify("€" * 1000, id="t-euro-1000")
    assert resp.id == "t-euro-1000"
    assert resp.phase == pb.PHASE_FINAL
    with pytest.raises(grpc.RpcError) as excinfo:
        client.classify("€" * 1001, id="t-euro-1001")
    assert _code(excinfo) == grpc.StatusCode.INVALID_ARGUMENT
    assert "1000" in _details(excinfo)


# --- ClassifyBatch ----------------------------------------------------------


def test_classify_batch_fifty_items_each_answered_once(client: cs.Client) -> None:
    ids = [f"b-{i}" for i in range(50)]
    items = [
        cs.NewsItem(id=i, ticker="ACME", title=f"{HEADLINES[n % len(HEADLINES)]} ({n})")
        for n, i in enumerate(ids)
    ]
    responses = list(client.classify_batch(items, timeout=30))
    assert len(responses) == 50
    counts = Counter(r.id for r in responses)
    assert counts == Counter(ids)
    for r in responses:
        assert r.WhichOneof("outcome") == "result", r
        assert r.result.id == r.id
        assert r.result.phase == pb.PHASE_FINAL
        assert r.result.label in (pb.LABEL_BEARISH, pb.LABEL_NEUTRAL, pb.LABEL_BULLISH)


def test_classify_batch_bad_items_get_error_entries(client: cs.Client) -> None:
    good: List[Dict[str, Any]] = [
        {"id": f"m-{i}", "ticker": "ACME", "title": HEADLINES[i % len(HEADLINES)]}
        for i in range(10)
    ]
    # A dict may carry published_at as a datetime.
    good[0]["published_at"] = dt.datetime(2024, 5, 1, 9, 0)
    entries: List[Any] = list(good)
    entries.insert(5, {"ticker": "ACME", "title": BULLISH})  # no id
    entries.insert(8, {"id": "m-no-title", "title": ""})
    entries.append(pb.ClassifyBatchRequest(item=cs.NewsItem(id="m-req", title=BEARISH)))

    responses = list(client.classify_batch(entries, timeout=30))

    errors = [r for r in responses if r.WhichOneof("outcome") == "error"]
    results = [r for r in responses if r.WhichOneof("outcome") == "result"]
    assert len(responses) == 13, responses
    assert len(errors) == 2, errors

    no_id = [e for e in errors if e.id == ""]
    assert len(no_id) == 1, errors
    assert no_id[0].error.code == 3  # INVALID_ARGUMENT
    assert no_id[0].error.field == "item.id"
    assert no_id[0].error.message

    no_title = [e for e in errors if e.id == "m-no-title"]
    assert len(no_title) == 1, errors
    assert no_title[0].error.code == 3
    assert no_title[0].error.field == "item.title"

    want = Counter([g["id"] for g in good] + ["m-req"])
    assert Counter(r.id for r in results) == want
    by_id = {r.id: r.result for r in results}
    assert by_id["m-req"].label == pb.LABEL_BEARISH
    assert by_id["m-0"].label == pb.LABEL_BULLISH


def test_classify_batch_preliminary_then_final(client: cs.Client) -> None:
    ids = [f"p-{i}" for i in range(6)]
    items = [
        {"id": i, "ticker": "ACME", "title": HEADLINES[n]} for n, i in enumerate(ids)
    ]
    phases: Dict[str, List[int]] = defaultdict(list)
    first: Dict[str, pb.ClassifyResponse] = {}
    for r in client.classify_batch(items, preliminary=True, timeout=30):
        assert r.WhichOneof("outcome") == "result", r
        phases[r.id].append(r.result.phase)
        first.setdefault(r.id, r.result)
    assert set(phases) == set(ids)
    for i in ids:
        assert phases[i] == [pb.PHASE_PRELIMINARY, pb.PHASE_FINAL], (i, phases[i])
        # The preliminary answer is the lexicon's.
        assert first[i].provenance.tier == pb.TIER_LEXICON


def test_classify_batch_stops_early_without_error(client: cs.Client) -> None:
    items = [cs.NewsItem(id=f"e-{i}", title=HEADLINES[i % 10]) for i in range(20)]
    stream = client.classify_batch(items, timeout=30)
    got = next(iter(stream))
    assert got.id.startswith("e-")
    stream.close()  # cancels the call; must not raise or hang
    # The channel is still usable afterwards.
    assert client.classify(BULLISH, id="e-after").id == "e-after"


def test_classify_batch_item_error_in_iterable_is_raised(client: cs.Client) -> None:
    def items():
        yield cs.NewsItem(id="x-1", title=BULLISH)
        raise RuntimeError("feed broke")

    with pytest.raises(RuntimeError, match="feed broke"):
        list(client.classify_batch(items(), timeout=30))


# --- asyncio ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_async_classify(addr: str) -> None:
    async with cs.AsyncClient(addr) as c:
        resp = await c.classify(BULLISH, ticker="ACME", id="a-1")
        assert resp.id == "a-1"
        assert resp.label == pb.LABEL_BULLISH
        _assert_lexicon_final(resp)
        bear = await c.classify(BEARISH, id="a-2")
        assert bear.label == pb.LABEL_BEARISH


@pytest.mark.asyncio
async def test_async_classify_batch(addr: str) -> None:
    async def feed() -> AsyncIterator[Dict[str, str]]:
        for n in range(20):
            await asyncio.sleep(0)
            yield {"id": f"ab-{n}", "title": HEADLINES[n % len(HEADLINES)]}

    async with cs.AsyncClient(addr) as c:
        seen = Counter()
        async for r in c.classify_batch(feed(), timeout=30):
            assert r.WhichOneof("outcome") == "result", r
            assert r.result.phase == pb.PHASE_FINAL
            seen[r.id] += 1
        assert seen == Counter(f"ab-{n}" for n in range(20))

        # A plain list works too, with preliminary answers.
        phases: Dict[str, List[int]] = defaultdict(list)
        items = [cs.NewsItem(id=f"ap-{n}", title=HEADLINES[n]) for n in range(3)]
        async for r in c.classify_batch(items, preliminary=True, timeout=30):
            phases[r.id].append(r.result.phase)
        assert dict(phases) == {
            f"ap-{n}": [pb.PHASE_PRELIMINARY, pb.PHASE_FINAL] for n in range(3)
        }


@pytest.mark.asyncio
async def test_async_invalid_argument(addr: str) -> None:
    async with cs.AsyncClient(addr) as c:
        with pytest.raises(grpc.aio.AioRpcError) as excinfo:
            await c.classify("")
        assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "item.title" in (excinfo.value.details() or "")


# --- deadlines --------------------------------------------------------------
#
# grpcio keeps deadlines to the millisecond, and the server answers a lexicon
# call on loopback in well under one: against it a 1e-6 s timeout is a race
# the server usually wins. A listener that never speaks HTTP/2 makes the
# deadline the only way a call can end, so these tests cannot pass by luck;
# were a deadline not applied, the call would hang (pytest would too).


@pytest.fixture
def silent_addr() -> Iterator[str]:
    """A TCP listener that accepts connections and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield "127.0.0.1:%d" % sock.getsockname()[1]


def test_client_default_deadline_is_applied(silent_addr: str) -> None:
    with cs.Client(silent_addr, timeout=1e-6) as c:
        with pytest.raises(grpc.RpcError) as excinfo:
            c.classify(BULLISH, id="d-1")
        assert _code(excinfo) == grpc.StatusCode.DEADLINE_EXCEEDED
        with pytest.raises(grpc.RpcError) as excinfo:
            c.stats()
        assert _code(excinfo) == grpc.StatusCode.DEADLINE_EXCEEDED
        with pytest.raises(grpc.RpcError) as excinfo:
            c.gpu_status()
        assert _code(excinfo) == grpc.StatusCode.DEADLINE_EXCEEDED
        with pytest.raises(grpc.RpcError) as excinfo:
            list(c.classify_batch([cs.NewsItem(id="d-2", title=BULLISH)]))
        assert _code(excinfo) == grpc.StatusCode.DEADLINE_EXCEEDED


def test_call_timeout_overrides_default(silent_addr: str) -> None:
    with cs.Client(silent_addr, timeout=60) as c:
        start = time.monotonic()
        with pytest.raises(grpc.RpcError) as excinfo:
            c.classify(BULLISH, id="d-3", timeout=0.05)
        assert _code(excinfo) == grpc.StatusCode.DEADLINE_EXCEEDED
        # Which deadline applied, 0.05 s or the client's 60 s: not a timing
        # claim, the margin is 600x.
        assert time.monotonic() - start < 30


@pytest.mark.asyncio
async def test_async_default_deadline_is_applied(silent_addr: str) -> None:
    async with cs.AsyncClient(silent_addr, timeout=1e-6) as c:
        with pytest.raises(grpc.aio.AioRpcError) as excinfo:
            await c.classify(BULLISH, id="d-4")
        assert excinfo.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        with pytest.raises(grpc.aio.AioRpcError) as excinfo:
            [r async for r in c.classify_batch([cs.NewsItem(id="d-5", title=BULLISH)])]
        assert excinfo.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_batch_stream_ends_at_its_deadline(client: cs.Client) -> None:
    # The bot's feed stays open; the stream's deadline still ends it, after
    # the items already sent have been answered.
    release = threading.Event()

    def feed() -> Iterator[pb.NewsItem]:
        yield cs.NewsItem(id="dl-1", title=BULLISH)
        yield cs.NewsItem(id="dl-2", title=BEARISH)
        release.wait(20)  # a safety stop: the deadline must come first

    got: List[str] = []
    try:
        with pytest.raises(grpc.RpcError) as excinfo:
            for r in client.classify_batch(feed(), timeout=1.0):
                got.append(r.id)
    finally:
        release.set()
    assert sorted(got) == ["dl-1", "dl-2"]
    code, details = _code(excinfo), _details(excinfo)
    # grpc-go's server transport resets a stream whose deadline has passed
    # (RST_STREAM CANCEL) on its own timer; when that reset beats the client's
    # own deadline timer by a millisecond, grpcio reports CANCELLED. Either
    # way the stream was ended by its deadline, which is what is asserted.
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED or (
        code == grpc.StatusCode.CANCELLED and "RST_STREAM" in details
    ), (code, details)


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan"), None, "5"])
def test_unbounded_or_bad_timeout_is_refused(bad: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        cs.Client("127.0.0.1:1", timeout=bad)


def test_bad_call_timeout_is_refused(client: cs.Client) -> None:
    with pytest.raises(ValueError):
        client.classify(BULLISH, timeout=0)


# --- auth -------------------------------------------------------------------


def test_auth_without_token_is_unauthenticated(auth_addr: str) -> None:
    with cs.Client(auth_addr) as c:
        with pytest.raises(grpc.RpcError) as excinfo:
            c.classify(BULLISH, id="u-1")
        assert _code(excinfo) == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as excinfo:
            c.stats()
        assert _code(excinfo) == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as excinfo:
            list(c.classify_batch([cs.NewsItem(id="u-2", title=BULLISH)]))
        assert _code(excinfo) == grpc.StatusCode.UNAUTHENTICATED


def test_auth_wrong_token_is_unauthenticated(auth_addr: str) -> None:
    with cs.Client(auth_addr, token="tok-c-0123456789abcdef") as c:
        with pytest.raises(grpc.RpcError) as excinfo:
            c.classify(BULLISH, id="u-3")
        assert _code(excinfo) == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("token", ["tok-a-0123456789abcdef", "tok-b-0123456789abcdef"])
def test_auth_listed_token_works(auth_addr: str, token: str) -> None:
    with cs.Client(auth_addr, token=token) as c:
        resp = c.classify(BULLISH, id="u-4")
        assert resp.id == "u-4"
        assert resp.label == pb.LABEL_BULLISH
        batch = list(c.classify_batch([cs.NewsItem(id="u-5", title=BEARISH)]))
        assert [r.id for r in batch] == ["u-5"]
        assert batch[0].result.label == pb.LABEL_BEARISH
        assert c.stats().requests.classify_calls >= 1


@pytest.mark.asyncio
async def test_auth_async_token(auth_addr: str) -> None:
    async with cs.AsyncClient(auth_addr, token="tok-a-0123456789abcdef") as c:
        assert (await c.classify(BULLISH, id="u-6")).label == pb.LABEL_BULLISH
    async with cs.AsyncClient(auth_addr) as c:
        with pytest.raises(grpc.aio.AioRpcError) as excinfo:
            await c.classify(BULLISH, id="u-7")
        assert excinfo.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_auth_health_is_open(auth_addr: str) -> None:
    # grpcio-health-checking is not installed: call the method with raw bytes.
    # An empty HealthCheckRequest is b""; status SERVING (1) is b"\x08\x01".
    with grpc.insecure_channel(auth_addr) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        assert check(b"", timeout=5) == b"\x08\x01"


# --- GPUStatus and Stats -----------------------------------------------------


def test_gpu_status_without_reader(client: cs.Client) -> None:
    status = client.gpu_status()
    assert status.reader == "none"
    assert status.reader_error != ""
    assert len(status.devices) == 0
    assert status.pressure == pb.PRESSURE_LEVEL_UNSPECIFIED


def test_stats_counts_calls(client: cs.Client) -> None:
    before = client.stats().requests
    n = 4
    for i in range(n):
        client.classify(HEADLINES[i], id=f"s-{i}")
    with pytest.raises(grpc.RpcError):
        client.classify("", id="s-invalid")
    list(
        client.classify_batch(
            [cs.NewsItem(id="s-b1", title=BULLISH), cs.NewsItem(id="s-b2", title=BEARISH)]
        )
    )
    after = client.stats().requests
    assert after.classify_calls - before.classify_calls >= n
    assert after.invalid - before.invalid >= 1
    assert after.batch_streams - before.batch_streams >= 1
    assert after.batch_items - before.batch_items >= 2


# --- client-side helpers (no server) ----------------------------------------


def test_label_name() -> None:
    assert cs.label_name(cs.LABEL_BEARISH) == "bearish"
    assert cs.label_name(cs.LABEL_NEUTRAL) == "neutral"
    assert cs.label_name(cs.LABEL_BULLISH) == "bullish"
    assert cs.label_name(cs.LABEL_UNSPECIFIED) == "unspecified"
    assert cs.label_name(42) == "unspecified"


def test_reexports_are_the_generated_types() -> None:
    assert cs.ClassifyResponse is pb.ClassifyResponse
    assert cs.Label is pb.Label
    assert cs.TIER_LEXICON == pb.TIER_LEXICON == 1
    assert cs.PHASE_PRELIMINARY == 1 and cs.PHASE_FINAL == 2
    assert hasattr(cs.pb_grpc, "SentimentServiceStub")


def test_batch_dict_with_unknown_field_is_refused(client: cs.Client) -> None:
    with pytest.raises(ValueError, match="headline"):
        list(client.classify_batch([{"id": "z", "headline": BULLISH}]))


def test_token_not_in_repr() -> None:
    c = cs.Client("127.0.0.1:1", token="sekret")
    try:
        assert "sekret" not in repr(c)
    finally:
        c.close()


@pytest.mark.parametrize("timeout", [0.3, 1.0, 3.0])
def test_hung_model_answers_inside_the_deadline(hung_addr: str, timeout: float) -> None:
    """The local model never answers: the caller still gets the lexicon's
    answer, degraded, before its own deadline, never DEADLINE_EXCEEDED."""
    with cs.Client(hung_addr) as c:
        start = time.monotonic()
        resp = c.classify(BULLISH, id="hung", timeout=timeout)
        took = time.monotonic() - start
    assert took < timeout
    assert resp.provenance.degraded
    assert resp.label == pb.LABEL_BULLISH
    assert "local: " in resp.provenance.reason


def test_hung_model_require_llm_is_unavailable_in_time(hung_addr: str) -> None:
    with cs.Client(hung_addr) as c:
        start = time.monotonic()
        with pytest.raises(grpc.RpcError) as err:
            c.classify(BULLISH, options={"require_llm": True}, timeout=1.0)
        took = time.monotonic() - start
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert took < 1.0


def test_hung_model_batch_items_answer_inside_the_deadline(hung_addr: str) -> None:
    with cs.Client(hung_addr) as c:
        results = list(
            c.classify_batch(
                [{"id": str(i), "title": h} for i, h in enumerate(HEADLINES)], timeout=2.0
            )
        )
    assert sorted(r.id for r in results) == sorted(str(i) for i in range(len(HEADLINES)))
    # Each is the lexicon's: prefiltered (too weak to ask a model) or
    # degraded after the hung model's share of the deadline.
    assert all(r.result.provenance.degraded or r.result.provenance.prefiltered for r in results)
    assert any(r.result.provenance.degraded for r in results)
