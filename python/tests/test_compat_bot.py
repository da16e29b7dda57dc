"""The bot's code, as it calls its old LLM helpers, run against the service.

Everything between the two "bot code" lines is written the way the trading
bot's modules call these helpers; migrating it changed only the import line.
The tests below it drive that code against a server whose local model is a
fake Ollama, on a fake GPU, alerting to a fake Discord (conftest.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

from catalyst_sentiment import compat
from upstream_fakes import FakeDiscord

# ---- bot code ------------------------------------------------------------------
from catalyst_sentiment.compat import (  # was: from llm_utils import (...)
    classify_batch_with_llm,
    cleanup_gpu_memory,
    get_error_handler,
    get_gpu_memory_stats,
    get_rate_limiter,
    prime_ollama_gpu,
    query_hybrid_llm,
    query_llm,
    query_llm_async,
    send_progressive_alert,
)

logger = logging.getLogger("catalyst.news")

DISCORD_ALERT_WEBHOOK = "https://discord.com/api/webhooks/1234/bot-config-webhook-token"
GPU_CLEANUP_THRESHOLD_PCT = 90.0
KEYWORD_WEIGHTS = {"fda approval": 0.8, "bankruptcy": -0.9, "guidance cut": -0.6}

SENTIMENT_PROMPT = """Analyze this financial news headline for {ticker} and classify its likely
short-term impact on the stock price as Bullish, Bearish, or Neutral.

Ticker: {ticker}
Headline: {headline}
Summary: {summary}

Reply with the sentiment (Bullish, Bearish or Neutral) first, then a one-sentence reason."""


def _parse_llm_sentiment(text: Optional[str]) -> Tuple[str, str]:
    """The first of Bullish/Bearish/Neutral in the model's reply, and the rest."""
    if not text:
        return "neutral", "no response"
    lowered = text.lower()
    found = {w: lowered.find(w) for w in ("bullish", "bearish", "neutral") if w in lowered}
    if not found:
        return "neutral", text.strip()
    word = min(found, key=lambda w: found[w])
    reason = text[found[word] + len(word):].strip(" -:.\n") or text.strip()
    return word, reason


def _build_prompt(news: Dict[str, Any]) -> str:
    return SENTIMENT_PROMPT.format(
        ticker=news.get("ticker", "N/A"),
        headline=news["title"],
        summary=news.get("summary", "") or "(none)",
    )


def analyze_news_sentiment(news: Dict[str, Any], priority: str = "normal") -> Dict[str, Any]:
    prompt = _build_prompt(news)
    response = query_hybrid_llm(prompt, article_length=len(news.get("summary", "")), priority=priority)
    if response is None:
        logger.warning("LLM unavailable for %s; falling back to neutral", news.get("ticker"))
        return {"sentiment": "neutral", "reason": "LLM unavailable", "llm_used": False}
    sentiment, reason = _parse_llm_sentiment(response)
    return {"sentiment": sentiment, "reason": reason, "llm_used": True}


def quick_check(headline: str, ticker: str) -> str:
    text = query_llm(
        _build_prompt({"ticker": ticker, "title": headline}),
        system="You are a stock market analyst.",
        model="mistral",
        timeout=15,
        max_retries=2,
    )
    return _parse_llm_sentiment(text)[0]


async def analyze_many(news_list: List[Dict[str, Any]]) -> List[str]:
    replies = await asyncio.gather(
        *(query_llm_async(_build_prompt(n), priority="high") for n in news_list)
    )
    return [_parse_llm_sentiment(r)[0] for r in replies]


def process_news_batch(news_list: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    results = classify_batch_with_llm(
        news_list,
        keyword_weights=KEYWORD_WEIGHTS,
        min_prescale_score=0.20,
        batch_size=5,
        batch_delay=2.0,
    )
    for news, result in zip(news_list, results):
        news["llm_sentiment"] = result["sentiment"]
        news["prescore"] = result["score"]
        news["matched_keywords"] = ", ".join(result["keywords"])
        if result["sentiment"] > 0.3:
            news["direction"] = "up"
        elif result["sentiment"] < -0.3:
            news["direction"] = "down"
        else:
            news["direction"] = "flat"
    return news_list


def startup() -> bool:
    if not prime_ollama_gpu():
        logger.warning("local LLM not primed; cloud models will be used")
        return False
    return True


def health_report() -> str:
    gpu = get_gpu_memory_stats()
    lines = [
        "GPU: %.2f/%.2f GB used (%.0f%%), %.2f GB reserved, %.2f GB free"
        % (gpu["allocated_gb"], gpu["total_gb"], gpu["utilization_pct"], gpu["reserved_gb"], gpu["free_gb"])
    ]
    if gpu["utilization_pct"] > GPU_CLEANUP_THRESHOLD_PCT:
        cleanup_gpu_memory(force=True)
    else:
        cleanup_gpu_memory()
    for provider in ("gemini", "claude", "ollama"):
        s = get_rate_limiter(provider).get_stats()
        lines.append(
            "%s: %d/min %d/hour %d/day, %d consecutive failures"
            % (provider, s["requests_last_min"], s["requests_last_hour"], s["requests_last_day"],
               s["consecutive_failures"])
        )
    e = get_error_handler().get_error_stats()
    types = ", ".join(f"{k}={v}" for k, v in sorted(e["error_types"].items())) or "none"
    lines.append("errors: %d total, %d in the last hour (%s)" % (e["total_errors"], e["recent_errors_1h"], types))
    return "\n".join(lines)


def post_alert(news: Dict[str, Any], price: float, change_pct: float) -> bool:
    alert_data = {
        "ticker": news["ticker"],
        "title": news["title"],
        "summary": news.get("summary", ""),
        "price": price,
        "change_pct": change_pct,
        "news_id": news["id"],
        "url": news.get("url", ""),
    }
    result = send_progressive_alert(alert_data, DISCORD_ALERT_WEBHOOK)
    if not result:
        logger.error("alert for %s failed", news["ticker"])
        return False
    news["alert_message_id"] = result["id"]
    news["alert_channel"] = result["channel_id"]
    return True


# ---- end of bot code -------------------------------------------------------------


@pytest.fixture(autouse=True)
def service(monkeypatch: pytest.MonkeyPatch, compat_addr: str) -> Iterator[str]:
    """The bot's environment names the service."""
    monkeypatch.setenv("SENTIMENT_ADDR", compat_addr)
    monkeypatch.delenv("SENTIMENT_TOKEN", raising=False)
    monkeypatch.delenv("SENTIMENT_TLS_CA", raising=False)
    compat.reset_connection()
    yield compat_addr
    compat.reset_connection()


def test_parser_reads_the_answers() -> None:
    assert _parse_llm_sentiment("Bullish - Raised full-year guidance.") == (
        "bullish", "Raised full-year guidance")
    assert _parse_llm_sentiment("Bearish - Not bullish at all.")[0] == "bearish"
    assert _parse_llm_sentiment(None) == ("neutral", "no response")


def test_analyze_news_sentiment() -> None:
    bull = analyze_news_sentiment(
        {"ticker": "ACME", "title": "Acme wins $2 billion defense contract (bot 1)",
         "summary": "The largest in its history."},
        priority="high",
    )
    assert bull == {"sentiment": "bullish", "reason": "Fake model on ACME: good news for the stock",
                    "llm_used": True}
    bear = analyze_news_sentiment({"ticker": "INIT", "title": "Initech cuts guidance (bot 1)"})
    assert bear["sentiment"] == "bearish" and bear["llm_used"]
    assert quick_check("Hooli shares plunge as regulators open fraud probe (bot 1)", "HOOLI") == "bearish"


def test_analyze_many_async() -> None:
    news = [
        {"ticker": "ACME", "title": "Acme beats earnings estimates (bot 2)"},
        {"ticker": "WAYNE", "title": "Wayne misses revenue estimates (bot 2)"},
    ]
    assert asyncio.run(analyze_many(news)) == ["bullish", "bearish"]


def test_process_news_batch() -> None:
    news_list: List[Dict[str, Any]] = [
        {"id": "bot-b1", "ticker": "ACME", "title": "Acme soars after FDA approval of its cancer drug (bot 3)"},
        {"id": "bot-b2", "ticker": "INIT", "title": "Initech files for Chapter 11 bankruptcy (bot 3)"},
        {"id": "bot-b3", "ticker": "VAND", "title": "Vandelay will hold its annual meeting on Tuesday (bot 3)"},
    ]
    out = process_news_batch(news_list)
    assert out is news_list
    assert [n["direction"] for n in out] == ["up", "down", "flat"]
    assert "fda approval" in out[0]["matched_keywords"]
    assert out[1]["prescore"] < 0
    assert out[2]["llm_sentiment"] == 0.0 and out[2]["matched_keywords"] == ""


def test_startup_and_health_report() -> None:
    assert startup() is True
    report = health_report()
    lines = report.splitlines()
    assert lines[0].startswith("GPU: 5.25/15.98 GB used (33%)"), report
    assert [line.split(":")[0] for line in lines[1:4]] == ["gemini", "claude", "ollama"]
    assert lines[4].startswith("errors: "), report


def test_post_alert(fake_discord: FakeDiscord) -> None:
    news = {"id": "bot-alert-1", "ticker": "ACME", "title": "Acme raises full-year guidance (bot 4)",
            "url": "https://example.com/acme/bot-4"}
    assert post_alert(news, 12.5, 8.4) is True
    assert news["alert_channel"] == "alerts"
    posts = fake_discord.posts("Acme raises full-year guidance (bot 4)")
    assert len(posts) == 1
    assert news["alert_message_id"].isdigit()
