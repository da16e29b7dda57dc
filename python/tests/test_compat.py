"""catalyst_sentiment.compat: the bot's old helpers against the real server.

Each helper's return shape is checked against the one documented (keys and
types), on the shared lexicon-only server, on a server whose local model is
a fake Ollama (with a fake RX 6800 and a fake Discord), and on servers that
are stopped, silent, or whose cloud tier refuses connections.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import socket
import time
from types import SimpleNamespace
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest

from catalyst_sentiment import compat
from catalyst_sentiment import _compat_conn
from conftest import (
    RX6800_VRAM_TOTAL,
    RX6800_VRAM_USED,
    Server,
    wait_local_warm,
)
from upstream_fakes import MODEL_SIZE_VRAM, FakeDiscord, FakeOllama

GIB = 1024**3

PROMPT = """Analyze this financial news headline and decide whether it is Bullish, \
Bearish or Neutral for the stock.

Ticker: {ticker}
Headline: {headline}
Summary: {summary}

Answer with the sentiment word first, then a short reason."""

BATCH_KEYS = {
    "id": str,
    "sentiment": float,
    "score": float,
    "keywords": list,
    "label": str,
    "confidence": float,
    "rationale": str,
    "tier": str,
    "degraded": bool,
    "prefiltered": bool,
    "reason": str,
}
GPU_KEYS = {"allocated_gb", "reserved_gb", "free_gb", "total_gb", "utilization_pct"}
LIMITER_KEYS = {
    "requests_last_min",
    "requests_last_hour",
    "requests_last_day",
    "consecutive_failures",
}


@pytest.fixture
def use(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Point compat at a server: SENTIMENT_ADDR, and a fresh connection."""

    def point(addr: str) -> None:
        monkeypatch.setenv("SENTIMENT_ADDR", addr)
        monkeypatch.delenv("SENTIMENT_TOKEN", raising=False)
        monkeypatch.delenv("SENTIMENT_TLS_CA", raising=False)
        compat.reset_connection()

    yield point
    compat.reset_connection()


@pytest.fixture
def fresh_log_once() -> Iterator[None]:
    """Forget which once-per-process notes were written."""
    compat._logged_once.clear()
    yield
    compat._logged_once.clear()


def _check_batch_result(r: Dict[str, Any]) -> None:
    assert set(r) == set(BATCH_KEYS) | {"error"}, r
    for key, kind in BATCH_KEYS.items():
        assert isinstance(r[key], kind), (key, r)
    assert r["error"] is None or isinstance(r["error"], str)
    assert all(isinstance(k, str) for k in r["keywords"])
    assert r["label"] in ("bullish", "bearish", "neutral")
    assert r["tier"] in ("lexicon", "local", "gemini", "anthropic", "none")
    assert -1.0 <= r["sentiment"] <= 1.0 and -1.0 <= r["score"] <= 1.0
    assert 0.0 <= r["confidence"] <= 1.0


def _warnings(caplog: pytest.LogCaptureFixture, text: str) -> List[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "catalyst_sentiment.compat" and text in r.getMessage()
    ]


# --- the prompt ---------------------------------------------------------------


@pytest.mark.parametrize(
    "prompt, want",
    [
        (
            PROMPT.format(ticker="ACME", headline="Acme wins contract", summary="A big one.\nReally."),
            ("Acme wins contract", "ACME", "A big one. Really."),
        ),
        (
            "Classify the sentiment (bullish/bearish/neutral).\n**Headline:** Acme beats\n"
            "**Ticker:** $acme\n- Content: Record quarter",
            ("Acme beats", "ACME", "Record quarter"),
        ),
        (
            'What is the sentiment of this headline: "Globex (NASDAQ: GLBX) raises guidance"?',
            ("Globex (NASDAQ: GLBX) raises guidance", "GLBX", ""),
        ),
        (
            "Is this news bullish or bearish? Headline: $INIT cuts guidance",
            ("$INIT cuts guidance", "INIT", ""),
        ),
        (
            "Rate the sentiment.\nTicker: (not given)\nTitle:\nUmbrella wins award\nRespond now.",
            ("Umbrella wins award", "", ""),
        ),
        (
            "Bullish or bearish?\nStock: Acme Corp\nHeadline: Acme wins",
            ("Acme wins", "", ""),
        ),
        (
            "Bullish or bearish?\nStock: ACME (Acme Corp)\nHeadline: Acme wins",
            ("Acme wins", "ACME", ""),
        ),
    ],
)
def test_prompt_parsing(prompt: str, want: Tuple[str, str, str]) -> None:
    news = compat._parse_prompt(prompt)
    assert news is not None
    assert (news.title, news.ticker, news.summary) == want


@pytest.mark.parametrize(
    "prompt",
    [
        "Write a haiku about autumn.",
        "Headline: Acme wins contract\nTranslate this into French.",  # no sentiment asked
        "What is the market sentiment today?",  # no headline
        "",
    ],
)
def test_prompt_not_news_sentiment(prompt: str) -> None:
    assert compat._parse_prompt(prompt) is None


def test_prompt_long_headline_is_cut() -> None:
    news = compat._parse_prompt("Sentiment? Headline: " + "x" * 1500)
    assert news is not None and len(news.title) == 1000


def test_priority_names(fresh_log_once: None, caplog: pytest.LogCaptureFixture) -> None:
    pb = compat.pb
    assert compat._priority("low") == pb.PRIORITY_LOW
    assert compat._priority("NORMAL") == pb.PRIORITY_NORMAL
    assert compat._priority("high") == pb.PRIORITY_HIGH
    assert compat._priority(None) == pb.PRIORITY_NORMAL
    with caplog.at_level(logging.WARNING, logger="catalyst_sentiment.compat"):
        assert compat._priority("whenever") == pb.PRIORITY_NORMAL
        assert compat._priority("whenever") == pb.PRIORITY_NORMAL
    assert len(_warnings(caplog, "whenever")) == 1


# --- queries --------------------------------------------------------------------


def test_query_llm_local_model(use: Callable[[str], None], compat_addr: str, fake_ollama: FakeOllama) -> None:
    use(compat_addr)
    headline = "Acme raises full-year guidance after record orders (q1)"
    text = compat.query_llm(
        PROMPT.format(ticker="ACME", headline=headline, summary="Orders rose 40%."),
        system="You are a helpful analyst.",  # ignored
        model="llama3",  # ignored
        timeout=10,
    )
    assert isinstance(text, str)
    assert text == "Bullish - Fake model on ACME: good news for the stock."
    # The item reached the model as parsed from the prompt.
    chat = [c for c in fake_ollama.chats if headline in c]
    assert len(chat) == 1, fake_ollama.chats
    assert "Ticker: ACME" in chat[0]
    assert f"Headline: {headline}" in chat[0]
    assert "Summary: Orders rose 40%." in chat[0]


def test_query_hybrid_llm_and_cashtag(use: Callable[[str], None], compat_addr: str, fake_ollama: FakeOllama) -> None:
    use(compat_addr)
    text = compat.query_hybrid_llm(
        'Give the sentiment (Bullish/Bearish/Neutral) of this headline: "$HOOLI shares plunge '
        'as regulators open fraud probe (q2)"',
        article_length=4321,  # ignored
        priority="high",
    )
    assert text == "Bearish - Fake model on HOOLI: bad news for the stock."
    assert any("Ticker: HOOLI" in c and "fraud probe (q2)" in c for c in fake_ollama.chats)


def test_query_llm_degraded_answer_is_an_answer(use: Callable[[str], None], addr: str) -> None:
    # No model tier on the shared server: the lexicon answers, degraded.
    use(addr)
    text = compat.query_llm(
        PROMPT.format(ticker="ACME", headline="Acme files for Chapter 11 bankruptcy", summary="")
    )
    assert text is not None and text.startswith("Bearish - lexicon")
    assert "\n" not in text
    neutral = compat.query_llm(
        PROMPT.format(ticker="ACME", headline="Acme will hold its annual meeting on Tuesday", summary="")
    )
    assert neutral is not None and neutral.startswith("Neutral")


def test_query_refuses_other_prompts_once(
    use: Callable[[str], None], addr: str, fresh_log_once: None, caplog: pytest.LogCaptureFixture
) -> None:
    use(addr)
    with caplog.at_level(logging.WARNING, logger="catalyst_sentiment.compat"):
        assert compat.query_llm("Write a haiku about autumn.") is None
        assert compat.query_hybrid_llm("Summarize: Headline: Acme wins contract") is None
        assert asyncio.run(compat.query_llm_async("Tell me a joke")) is None
    refusals = _warnings(caplog, "not a general LLM proxy")
    assert len(refusals) == 1, caplog.records
    assert refusals[0].levelno == logging.WARNING


def test_query_bad_arguments_raise(use: Callable[[str], None], addr: str) -> None:
    use(addr)
    with pytest.raises(ValueError):
        compat.query_llm("Sentiment? Headline: x", timeout=0)
    with pytest.raises(TypeError):
        compat.query_llm("Sentiment? Headline: x", max_retries="3")  # type: ignore[arg-type]


# --- inside a running event loop ---------------------------------------------------


@pytest.mark.asyncio
async def test_sync_and_async_inside_running_loop(use: Callable[[str], None], addr: str) -> None:
    use(addr)
    prompt = PROMPT.format(ticker="ACME", headline="Acme soars after FDA approval", summary="")
    sync_text = compat.query_llm(prompt)  # a sync call from a coroutine
    async_text = await compat.query_llm_async(prompt, priority="low")
    assert sync_text is not None and sync_text.startswith("Bullish")
    assert async_text == sync_text
    both = await asyncio.gather(
        compat.query_llm_async(prompt), compat.query_llm_async(prompt, priority="high")
    )
    assert both == [sync_text, sync_text]


def test_sync_inside_asyncio_run(use: Callable[[str], None], addr: str) -> None:
    use(addr)
    prompt = PROMPT.format(ticker="ACME", headline="Acme beats earnings estimates", summary="")

    async def bot() -> Tuple[Any, Any, Any]:
        return (
            compat.query_llm(prompt),
            compat.classify_batch_with_llm([{"id": "in-loop", "title": "Acme beats estimates"}]),
            await compat.query_llm_async(prompt),
        )

    # Twice: the second loop gets a channel of its own.
    for _ in range(2):
        sync_text, batch, async_text = asyncio.run(bot())
        assert sync_text is not None and sync_text.startswith("Bullish")
        assert async_text == sync_text
        assert batch[0]["id"] == "in-loop" and batch[0]["error"] is None


# --- batches ----------------------------------------------------------------------


def test_classify_batch_shapes_and_order(
    use: Callable[[str], None], compat_addr: str, fake_ollama: FakeOllama
) -> None:
    use(compat_addr)
    items: List[Any] = [
        {"id": "n-1", "ticker": "ACME", "title": "Acme wins $2 billion defense contract (b1)",
         "summary": "The largest in its history."},
        SimpleNamespace(news_id=42, symbol="INIT", headline="Initech cuts guidance after sales fell (b1)",
                        description="Weak demand."),
        {"headline": "Globex beats earnings estimates (b1)", "content": "EPS $1.10."},  # no id
        {"id": "n-4", "title": ""},  # rejected by the server
        {"id": "n-1", "title": "Stark announces buyback (b1)"},  # a repeated id
        "Wayne Enterprises appoints new chief financial officer (b1)",
        {"url": "https://example.com/news/7", "title": "Hooli misses revenue estimates (b1)"},
    ]
    results = compat.classify_batch_with_llm(items, min_prescale_score=0.0)

    assert isinstance(results, list) and len(results) == len(items)
    for r in results:
        _check_batch_result(r)
    ids = [r["id"] for r in results]
    assert ids[0] == "n-1" and ids[1] == "42" and ids[3] == "n-4" and ids[4] == "n-1"
    assert ids[6] == "https://example.com/news/7"
    assert ids[2] and ids[5] and len(set(ids[2::3])) == len(ids[2::3])

    # Judged by the local model, in input order.
    by_pos = {n: r for n, r in enumerate(results)}
    for n, label in ((0, "bullish"), (1, "bearish"), (2, "bullish"), (4, "bullish"), (6, "bearish")):
        r = by_pos[n]
        assert (r["label"], r["tier"], r["degraded"], r["error"]) == (label, "local", False, None), r
    assert by_pos[1]["sentiment"] == pytest.approx(-0.7)
    assert by_pos[0]["sentiment"] == pytest.approx(0.8)
    # score and keywords are the lexicon's prescore.
    assert by_pos[0]["score"] > 0 and by_pos[1]["score"] < 0
    assert by_pos[1]["keywords"], by_pos[1]

    rejected = by_pos[3]
    assert rejected["error"] and "item.title" in rejected["error"]
    assert (rejected["label"], rejected["sentiment"], rejected["degraded"], rejected["tier"]) == (
        "neutral", 0.0, True, "none")

    # The fields found by name reached the model.
    chats = "\n".join(fake_ollama.chats)
    assert "Ticker: INIT" in chats and "Summary: Weak demand." in chats
    assert "Summary: EPS $1.10." in chats


def test_classify_batch_threshold(use: Callable[[str], None], compat_addr: str) -> None:
    use(compat_addr)
    items = [{"id": f"t-{n}", "title": t} for n, t in enumerate([
        "Acme soars after FDA approval of its cancer drug (t1)",
        "Initech cuts guidance after net sales decreased sharply (t1)",
    ])]
    # Both prescores are under 1.0, but the GPU is idle: the adaptive
    # prefilter (the service's default) sends them to the local model anyway.
    below = compat.classify_batch_with_llm(items, min_prescale_score=1.0)
    assert [(r["tier"], r["prefiltered"], r["label"]) for r in below] == [
        ("local", False, "bullish"), ("local", False, "bearish")]
    assert all(abs(r["score"]) < 1.0 for r in below)
    judged = compat.classify_batch_with_llm(
        [dict(i, id=i["id"] + "b") for i in items], min_prescale_score=0.2
    )
    assert [(r["tier"], r["prefiltered"]) for r in judged] == [("local", False)] * 2
    assert compat.classify_batch_with_llm([]) == []


def test_classify_batch_ignored_arguments_noted_once(
    use: Callable[[str], None], addr: str, fresh_log_once: None, caplog: pytest.LogCaptureFixture
) -> None:
    use(addr)
    with caplog.at_level(logging.INFO, logger="catalyst_sentiment.compat"):
        for _ in range(2):
            out = compat.classify_batch_with_llm(
                [{"id": "ign-1", "title": "Acme beats estimates"}],
                keyword_weights={"beats": 0.5},
                batch_size=10,
                batch_delay=0.5,
            )
            assert out[0]["error"] is None
    for name in ("keyword_weights", "batch_size", "batch_delay"):
        assert len(_warnings(caplog, f"{name} is ignored")) == 1, name


# --- the GPU ----------------------------------------------------------------------


def test_gpu_with_local_model(use: Callable[[str], None], compat_addr: str) -> None:
    use(compat_addr)
    assert compat.prime_ollama_gpu() is True
    stats = compat.get_gpu_memory_stats()
    assert set(stats) == GPU_KEYS
    assert all(isinstance(v, float) for v in stats.values())
    assert stats["total_gb"] == pytest.approx(RX6800_VRAM_TOTAL / GIB)
    assert stats["allocated_gb"] == pytest.approx(RX6800_VRAM_USED / GIB)
    assert stats["free_gb"] == pytest.approx((RX6800_VRAM_TOTAL - RX6800_VRAM_USED) / GIB)
    assert stats["reserved_gb"] == pytest.approx(MODEL_SIZE_VRAM / GIB)
    assert stats["utilization_pct"] == pytest.approx(RX6800_VRAM_USED / RX6800_VRAM_TOTAL * 100)


def test_gpu_without_gpu_manager(
    use: Callable[[str], None], addr: str, caplog: pytest.LogCaptureFixture
) -> None:
    use(addr)
    assert compat.prime_ollama_gpu() is False
    stats = compat.get_gpu_memory_stats()
    assert stats == dict.fromkeys(GPU_KEYS, 0.0)
    assert all(isinstance(v, float) for v in stats.values())
    with caplog.at_level(logging.DEBUG, logger="catalyst_sentiment.compat"):
        assert compat.cleanup_gpu_memory() is None
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert compat.cleanup_gpu_memory(force=True) is None
    refused = _warnings(caplog, "no GPU manager")
    assert len(refused) == 1 and "FAILED_PRECONDITION" in refused[0].getMessage()


def test_cleanup_gpu_memory_forced(
    use: Callable[[str], None],
    gpu_admin_addr: Tuple[str, FakeOllama],
    caplog: pytest.LogCaptureFixture,
) -> None:
    addr_, fake = gpu_admin_addr
    use(addr_)
    with caplog.at_level(logging.INFO, logger="catalyst_sentiment.compat"):
        assert compat.cleanup_gpu_memory(force=True) is None
        assert len(_warnings(caplog, "GPU cleanup started")) == 1, caplog.records
        # Asked again: refused while it runs (ABORTED), then, within a minute
        # of the first, RESOURCE_EXHAUSTED with a RetryInfo detail. Either
        # way a warning and None, never an exception.
        deadline = time.monotonic() + 15
        while not _warnings(caplog, "RESOURCE_EXHAUSTED"):
            assert compat.cleanup_gpu_memory(force=True) is None
            assert time.monotonic() < deadline, caplog.records
            time.sleep(0.05)
    too_soon = _warnings(caplog, "RESOURCE_EXHAUSTED")[0].getMessage()
    assert "less than a minute ago; retry in" in too_soon, too_soon
    assert len(_warnings(caplog, "GPU cleanup started")) == 1
    # The manager unloaded the model, then warmed it again.
    deadline = time.monotonic() + 15
    while fake.unloads < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake.unloads >= 1
    wait_local_warm(addr_)
    assert compat.prime_ollama_gpu() is True


# --- stats ------------------------------------------------------------------------


def test_rate_limiter_and_error_stats(use: Callable[[str], None], cloud_down_addr: str) -> None:
    use(cloud_down_addr)
    text = compat.query_llm(
        PROMPT.format(ticker="ACME", headline="Acme soars after FDA approval (s1)", summary="")
    )
    # Gemini is down: the lexicon's answer, still an answer.
    assert text is not None and text.startswith("Bullish - lexicon")

    gemini = compat.get_rate_limiter("gemini").get_stats()
    assert set(gemini) == LIMITER_KEYS
    assert all(isinstance(v, int) for v in gemini.values())
    assert gemini["requests_last_min"] >= 1
    assert gemini["requests_last_hour"] >= gemini["requests_last_min"]
    assert gemini["requests_last_day"] >= gemini["requests_last_hour"]
    assert gemini["consecutive_failures"] >= 1

    for name in ("anthropic", "claude", "local", "ollama", "Gemini"):
        stats = compat.get_rate_limiter(name).get_stats()
        assert set(stats) == LIMITER_KEYS and all(isinstance(v, int) for v in stats.values())
    assert compat.get_rate_limiter("claude").get_stats()["requests_last_min"] == 0
    with pytest.raises(ValueError, match="unknown provider"):
        compat.get_rate_limiter("openai")

    errors = compat.get_error_handler().get_error_stats()
    assert set(errors) == {"total_errors", "recent_errors_1h", "error_types"}
    assert isinstance(errors["total_errors"], int) and isinstance(errors["recent_errors_1h"], int)
    assert isinstance(errors["error_types"], dict)
    assert errors["recent_errors_1h"] >= 1
    assert errors["error_types"].get("connection", 0) >= 1
    assert sum(errors["error_types"].values()) == errors["recent_errors_1h"]
    assert errors["total_errors"] >= errors["recent_errors_1h"]


# --- alerts -----------------------------------------------------------------------


class _StubSpy:
    """Stands in for a client's stub and keeps every request sent."""

    def __init__(self, stub: Any, sent: List[bytes]) -> None:
        self._stub, self._sent = stub, sent

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._stub, name)

        def call(request: Any, *args: Any, **kwargs: Any) -> Any:
            self._sent.append(request.SerializeToString())
            return method(request, *args, **kwargs)

        return call


def test_send_progressive_alert(
    use: Callable[[str], None], compat_addr: str, fake_discord: FakeDiscord
) -> None:
    use(compat_addr)
    sent: List[bytes] = []
    client = _compat_conn.client()
    client._stub = _StubSpy(client._stub, sent)

    # The bot's URL: the configured webhook's id, the bot's own token.
    bot_url = "https://discord.com/api/webhooks/1234/the-bots-own-webhook-token"
    headline = "Acme wins FDA approval for its cancer drug (alert 1)"
    alert_data = {
        "ticker": "ACME",
        "headline": headline,
        "summary": "Approval covers adults.",
        "price": "12.50",
        "price_change_pct": 8.4,
        "news_id": "alert-1",
        "url": "https://example.com/acme/1",
    }
    got = compat.send_progressive_alert(alert_data, bot_url)
    assert got is not None
    assert set(got) == {"id", "channel_id", "duplicate"}
    assert isinstance(got["id"], str) and got["id"].isdigit()
    assert got["channel_id"] == "alerts" and got["duplicate"] is False

    # One post, to the configured webhook; the bot's URL never left here.
    posts = fake_discord.posts(headline)
    assert len(posts) == 1, fake_discord.requests
    assert posts[0][0] == "/api/v10/webhooks/1234/tok-alerts?wait=true"
    assert sent
    for raw in sent:
        assert b"the-bots-own-webhook-token" not in raw and b"discord.com" not in raw

    # The post is edited with the model's verdict.
    deadline = time.monotonic() + 15
    while not fake_discord.edits(got["id"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake_discord.edits(got["id"]), fake_discord.requests

    # A repeat is not posted again.
    again = compat.send_progressive_alert(alert_data, bot_url)
    assert again == {"id": got["id"], "channel_id": "alerts", "duplicate": True}
    assert len(fake_discord.posts(headline)) == 1

    # The other webhook names the other channel.
    other = compat.send_progressive_alert(
        SimpleNamespace(symbol="INIT", title="Initech cuts guidance (alert 2)", last_price=3.1, change=-4.0),
        "https://discordapp.com/api/v10/webhooks/5678/another-token",
    )
    assert other is not None and other["channel_id"] == "news" and other["duplicate"] is False
    assert [p for p, _ in fake_discord.posts("Initech cuts guidance (alert 2)")] == [
        "/api/v10/webhooks/5678/tok-news?wait=true"]


def test_send_progressive_alert_unknown_webhook(
    use: Callable[[str], None],
    compat_addr: str,
    fake_discord: FakeDiscord,
    caplog: pytest.LogCaptureFixture,
) -> None:
    use(compat_addr)
    before = len(fake_discord.requests)
    data = {"ticker": "ACME", "title": "Acme unknown webhook test"}
    with caplog.at_level(logging.ERROR, logger="catalyst_sentiment.compat"):
        assert compat.send_progressive_alert(
            data, "https://discord.com/api/webhooks/999/secret-token-xyz") is None
        assert compat.send_progressive_alert(
            data, "https://example.com/hooks/secret-token-xyz") is None
    assert len(_warnings(caplog, "webhook 999")) == 1
    assert len(_warnings(caplog, "holds no webhook id")) == 1
    # The token is a secret: never in the log.
    assert not any("secret-token-xyz" in r.getMessage() for r in caplog.records)
    assert len(fake_discord.requests) == before


def test_client_alert_channels(compat_addr: str) -> None:
    import catalyst_sentiment as cs

    with cs.Client(compat_addr) as c:
        channels = {ch.name: ch for ch in c.list_alert_channels().channels}
    assert set(channels) == {"alerts", "news"}
    assert channels["alerts"].webhook_id == "1234" and channels["alerts"].default
    assert channels["news"].webhook_id == "5678" and not channels["news"].default


# --- the service away -------------------------------------------------------------


def test_service_stopped(
    use: Callable[[str], None], stoppable_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(stoppable_server.addr)
    prompt = PROMPT.format(ticker="ACME", headline="Acme soars after FDA approval", summary="")
    assert compat.query_llm(prompt) is not None  # the channel is up and used
    stoppable_server.stop()

    timeout = 3.0
    start = time.monotonic()
    assert compat.query_llm(prompt, timeout=timeout) is None
    assert time.monotonic() - start < timeout + 2
    start = time.monotonic()
    assert compat.query_hybrid_llm(prompt, timeout=timeout) is None
    assert asyncio.run(compat.query_llm_async(prompt, timeout=timeout)) is None
    assert time.monotonic() - start < 2 * (timeout + 2)

    # The rest without retries, to keep the test short: what is checked is
    # the answer's shape, not the retrying.
    monkeypatch.setattr(compat, "DEFAULT_RETRIES", 0)
    results = compat.classify_batch_with_llm(
        [{"id": "down-1", "title": "Acme soars"}, {"title": "Initech cuts guidance"}], timeout=timeout
    )
    assert [r["id"] for r in results][0] == "down-1" and len(results) == 2
    for r in results:
        _check_batch_result(r)
        assert (r["label"], r["degraded"], r["tier"]) == ("neutral", True, "none")
        assert r["error"] and "UNAVAILABLE" in r["error"]

    assert compat.prime_ollama_gpu() is False
    assert compat.get_gpu_memory_stats() == dict.fromkeys(GPU_KEYS, 0.0)
    assert compat.cleanup_gpu_memory(force=True) is None
    assert compat.get_rate_limiter("gemini").get_stats() == dict.fromkeys(LIMITER_KEYS, 0)
    assert compat.get_error_handler().get_error_stats() == {
        "total_errors": 0, "recent_errors_1h": 0, "error_types": {}}
    assert compat.send_progressive_alert(
        {"title": "Acme soars"}, "https://discord.com/api/webhooks/1234/tok") is None


@pytest.fixture
def silent_addr() -> Iterator[str]:
    """A TCP listener that accepts connections and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield "127.0.0.1:%d" % sock.getsockname()[1]


def test_service_silent_times_out(use: Callable[[str], None], silent_addr: str) -> None:
    use(silent_addr)
    start = time.monotonic()
    assert compat.query_llm("Sentiment? Headline: Acme soars", timeout=1) is None
    results = compat.classify_batch_with_llm(["Acme soars"], timeout=1)
    assert results[0]["error"] and "DEADLINE_EXCEEDED" in results[0]["error"]
    assert time.monotonic() - start < 2 * (1 + 2)


# --- fork -------------------------------------------------------------------------

FORK_PROMPT = PROMPT.format(ticker="ACME", headline="Acme beats earnings estimates", summary="")


def _child_query(conn: Any) -> None:
    inherited = _compat_conn._inherited[:]
    text = compat.query_llm(FORK_PROMPT, timeout=10)
    fresh = _compat_conn.client() not in inherited
    conn.send((text, fresh, len(inherited)))
    conn.close()


def test_fork_child_gets_its_own_channel(use: Callable[[str], None], addr: str) -> None:
    use(addr)
    parent_text = compat.query_llm(FORK_PROMPT)
    assert parent_text is not None
    parent_client = _compat_conn.client()

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer through the pipe, never return to pytest
        code = 1
        try:
            os.close(read_fd)
            text = compat.query_llm(FORK_PROMPT, timeout=10)
            fresh = _compat_conn.client() is not parent_client
            os.write(write_fd, repr((text, fresh)).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    deadline = time.monotonic() + 30
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.02)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung")
    with os.fdopen(read_fd, "rb") as f:
        out = f.read().decode()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, out
    assert out == repr((parent_text, True))
    # The parent's channel still works.
    assert compat.query_llm(FORK_PROMPT) == parent_text


def test_fork_multiprocessing(use: Callable[[str], None], addr: str) -> None:
    use(addr)
    parent_text = compat.query_llm(FORK_PROMPT)
    ctx = multiprocessing.get_context("fork")
    parent_end, child_end = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_query, args=(child_end,))
    proc.start()
    child_end.close()
    try:
        assert parent_end.poll(30), "the child did not answer"
        text, fresh, inherited = parent_end.recv()
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
    assert (text, fresh) == (parent_text, True)
    assert inherited >= 1
    assert proc.exitcode == 0


# --- the connection's settings -----------------------------------------------------


def test_token_and_unreadable_ca(
    monkeypatch: pytest.MonkeyPatch,
    auth_addr: str,
    tmp_path: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from conftest import AUTH_TOKENS

    prompt = "Sentiment? Headline: Acme soars after FDA approval"
    monkeypatch.setenv("SENTIMENT_ADDR", auth_addr)
    monkeypatch.delenv("SENTIMENT_TLS_CA", raising=False)
    monkeypatch.delenv("SENTIMENT_TOKEN", raising=False)
    try:
        compat.reset_connection()
        assert compat.query_llm(prompt) is None  # UNAUTHENTICATED: logged, None
        monkeypatch.setenv("SENTIMENT_TOKEN", AUTH_TOKENS[0])
        compat.reset_connection()
        text = compat.query_llm(prompt)
        assert text is not None and text.startswith("Bullish")

        monkeypatch.setenv("SENTIMENT_TLS_CA", str(tmp_path / "missing-ca.pem"))
        compat.reset_connection()
        with caplog.at_level(logging.ERROR, logger="catalyst_sentiment.compat"):
            assert compat.query_llm(prompt) is None
            assert compat.classify_batch_with_llm(["Acme soars"])[0]["error"]
        assert _warnings(caplog, "SENTIMENT_TLS_CA")
    finally:
        compat.reset_connection()
