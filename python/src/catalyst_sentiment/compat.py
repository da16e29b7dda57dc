"""The bot's old LLM helpers, same names, same signatures, same return shapes,
backed by the sentiment service. Migrating is one import line::

    from catalyst_sentiment.compat import (
        query_llm, query_llm_async, query_hybrid_llm, classify_batch_with_llm,
        prime_ollama_gpu, get_gpu_memory_stats, cleanup_gpu_memory,
        get_rate_limiter, get_error_handler, send_progressive_alert,
    )

What each returns, and what is accepted but ignored, is written on each
function and in python/README.md ("Migrating the bot"). The rules they share:

* **The connection** comes from the environment: ``SENTIMENT_ADDR``
  (``host:port``, default ``localhost:50051``), ``SENTIMENT_TOKEN`` (sent as
  ``authorization: Bearer``), ``SENTIMENT_TLS_CA`` (a PEM file: TLS, checked
  against that CA). One channel per process, made on first use, made again in
  a child after ``fork()``; the async twin uses one grpc.aio channel per event
  loop. :func:`reset_connection` drops them, so that the next call reads the
  environment again.
* **Failures are not exceptions.** Where the old helper returned ``None`` (no
  answer within the timeout, the service unreachable) these return ``None``
  and log a warning; a degraded answer (every model down, the lexicon
  answering) is still an answer. Calls that fail with ``UNAVAILABLE`` (the
  service restarting, the connection not up yet) are retried with a short
  backoff, inside the call's timeout.
* **Sync functions work inside a running event loop**: they use the blocking
  gRPC channel and never touch asyncio, so calling one from an ``async def``
  (under ``asyncio.run``) is safe. Like the old helpers, they hold up the loop
  for the length of the call; ``await query_llm_async(...)`` does not.
* **Logs** go to the ``catalyst_sentiment.compat`` logger. Notes about
  ignored arguments and refused prompts are written once per process.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, TypeVar
from urllib.parse import urlsplit

import grpc
from google.protobuf import any_pb2, duration_pb2

from catalyst.sentiment.v1 import sentiment_pb2 as pb

from . import _compat_conn as _conn
from .client import Client

__all__ = [
    "ANSWER_WORDS",
    "DEFAULT_QUERY_TIMEOUT",
    "ErrorHandler",
    "RateLimiter",
    "classify_batch_with_llm",
    "cleanup_gpu_memory",
    "get_error_handler",
    "get_gpu_memory_stats",
    "get_rate_limiter",
    "prime_ollama_gpu",
    "query_hybrid_llm",
    "query_llm",
    "query_llm_async",
    "reset_connection",
    "send_progressive_alert",
]

log = logging.getLogger("catalyst_sentiment.compat")

#: Seconds a query waits for its answer when the caller gives no timeout. The
#: service answers inside it, with the lexicon if no model could.
DEFAULT_QUERY_TIMEOUT = 30.0
#: Seconds for the small admin calls (GPU status, stats, channels, cleanup).
ADMIN_TIMEOUT = 5.0
#: Seconds for an alert: it returns once the preliminary post exists.
ALERT_TIMEOUT = 15.0
#: A batch's deadline when none is given: this much, plus BATCH_PER_ITEM
#: seconds per item, at most BATCH_MAX. It bounds the whole stream; the
#: service answers every item inside it.
BATCH_BASE_TIMEOUT = 30.0
BATCH_PER_ITEM = 1.0
BATCH_MAX_TIMEOUT = 600.0
#: Retries of UNAVAILABLE for calls that take no max_retries.
DEFAULT_RETRIES = 3
_BACKOFF_BASE = 0.2
_BACKOFF_MAX = 2.0

#: The first word of a query's answer, by label.
ANSWER_WORDS = {
    pb.LABEL_BULLISH: "Bullish",
    pb.LABEL_BEARISH: "Bearish",
    pb.LABEL_NEUTRAL: "Neutral",
}

_LABELS = {pb.LABEL_BULLISH: "bullish", pb.LABEL_BEARISH: "bearish"}
_TIERS = {
    pb.TIER_LEXICON: "lexicon",
    pb.TIER_LOCAL: "local",
    pb.TIER_GEMINI: "gemini",
    pb.TIER_ANTHROPIC: "anthropic",
}
_PRIORITIES = {
    "low": pb.PRIORITY_LOW,
    "normal": pb.PRIORITY_NORMAL,
    "medium": pb.PRIORITY_NORMAL,
    "high": pb.PRIORITY_HIGH,
}
_PROVIDERS = {
    "gemini": pb.TIER_GEMINI,
    "google": pb.TIER_GEMINI,
    "anthropic": pb.TIER_ANTHROPIC,
    "claude": pb.TIER_ANTHROPIC,
    "local": pb.TIER_LOCAL,
    "ollama": pb.TIER_LOCAL,
}

# The contract's limits (NewsItem): longer text is cut, longer ids replaced.
_MAX_TITLE = 1000
_MAX_SUMMARY = 10000
_MAX_ID = 128
_MAX_TICKER = 16
_MAX_SOURCE = 256
_MAX_URL = 2048

_T = TypeVar("_T")

#: What a prompt or an item writes where it has no ticker.
_NO_TICKER = frozenset(
    {"", "n/a", "na", "none", "unknown", "-", "null", "not given", "not available"}
)


# --- logging once -------------------------------------------------------------

_logged_once: set = set()
_logged_once_lock = threading.Lock()


def _log_once(key: str, level: int, msg: str, *args: Any) -> None:
    with _logged_once_lock:
        if key in _logged_once:
            return
        _logged_once.add(key)
    log.log(level, msg, *args)


def reset_connection() -> None:
    """Close this process's channel to the service and forget it: the next
    call connects again, reading ``SENTIMENT_ADDR``, ``SENTIMENT_TOKEN`` and
    ``SENTIMENT_TLS_CA`` afresh. Not needed after ``fork()``, which is
    handled by itself."""
    _conn.reset()


# --- calls, retries, failures ---------------------------------------------------


def _check_seconds(value: Any, what: str, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, not {value!r}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{what} must be a positive number of seconds, not {value!r}")
    return float(value)


def _check_retries(value: Any) -> int:
    if value is None:
        return DEFAULT_RETRIES
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"max_retries must be an int, not {value!r}")
    return max(0, value)


def _backoff(attempt: int) -> float:
    return min(_BACKOFF_MAX, _BACKOFF_BASE * (2**attempt))


def _rpc_text(exc: grpc.RpcError) -> str:
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else None
    name = code.name if code is not None else "UNKNOWN"
    return f"{name}: {details}" if details else name


def _call(
    fn: Callable[[Client, float], _T], timeout: float, retries: int
) -> _T:
    """fn(client, seconds_left) with UNAVAILABLE retried ``retries`` times,
    never past ``timeout``. Raises the last grpc.RpcError, or ConfigError."""
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        client = _conn.client()
        left = deadline - time.monotonic()
        try:
            return fn(client, max(left, 0.001))
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE or attempt >= retries:
                raise
            pause = _backoff(attempt)
            if time.monotonic() + pause >= deadline:
                raise
            time.sleep(pause)
            attempt += 1


async def _call_async(fn: Callable[[Any, float], Any], timeout: float, retries: int) -> Any:
    """The asyncio twin of _call, on the running loop's channel."""
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        client = _conn.async_client()
        left = deadline - time.monotonic()
        try:
            return await fn(client, max(left, 0.001))
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE or attempt >= retries:
                raise
            pause = _backoff(attempt)
            if time.monotonic() + pause >= deadline:
                raise
            await asyncio.sleep(pause)
            attempt += 1


# --- text helpers ---------------------------------------------------------------


def _clean(value: Any, limit: int) -> str:
    """A str the contract takes: valid UTF-8, at most ``limit`` characters."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    # Lone surrogates cannot be encoded; the service wants valid UTF-8.
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text[:limit]


def _ticker(value: Any, *, upper_only: bool = False) -> str:
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if value is None:
        return ""
    text = str(value).strip().lstrip("$").strip()
    if text.strip("()[] .").lower() in _NO_TICKER:
        return ""
    token = text.split()[0] if text.split() else ""
    token = token.strip(",;()[]")
    if not token or token.lower() in _NO_TICKER:
        return ""
    if upper_only and not token.isupper():
        return ""
    if len(token) > _MAX_TICKER or not re.fullmatch(r"[A-Za-z0-9.\-:]+", token):
        return ""
    return token.upper()


def _label_name(label: int) -> str:
    return _LABELS.get(int(label), "neutral")


def _answer_text(resp: pb.ClassifyResponse) -> str:
    word = ANSWER_WORDS.get(int(resp.label), "Neutral")
    rationale = " ".join(resp.rationale.split())
    return f"{word} - {rationale}" if rationale else word


def _priority(value: Any) -> int:
    if value is None:
        return pb.PRIORITY_NORMAL
    if isinstance(value, int) and not isinstance(value, bool):
        if value in (pb.PRIORITY_LOW, pb.PRIORITY_NORMAL, pb.PRIORITY_HIGH):
            return value
    elif isinstance(value, str):
        key = value.strip().lower()
        if key in _PRIORITIES:
            return _PRIORITIES[key]
        if key in ("urgent", "critical"):
            return pb.PRIORITY_HIGH
    _log_once(
        f"priority:{value!r}",
        logging.WARNING,
        "priority %r is not one of 'low', 'normal', 'high'; using 'normal'",
        value,
    )
    return pb.PRIORITY_NORMAL


# --- the bot's prompts ------------------------------------------------------------

#: What marks a prompt as a news sentiment prompt.
_INTENT = re.compile(r"\b(sentiment|bullish|bearish)\b", re.IGNORECASE)
#: A "Key: value" line, also as a list item or in markdown bold.
_FIELD_LINE = re.compile(
    r"^\s*(?:[-*#>]+\s+)?[*_]{0,2}(?P<key>[A-Za-z][A-Za-z ]{0,30}?)[*_]{0,2}\s*:"
    r"[*_]{0,2}\s*(?P<value>.*?)\s*$"
)
_FIELD_KEYS = {
    "headline": "title",
    "title": "title",
    "news": "title",
    "news headline": "title",
    "news title": "title",
    "ticker": "ticker",
    "symbol": "ticker",
    "stock": "ticker",
    "ticker symbol": "ticker",
    "stock symbol": "ticker",
    "stock ticker": "ticker",
    "company ticker": "ticker",
    "summary": "summary",
    "content": "summary",
    "description": "summary",
    "article": "summary",
    "article text": "summary",
    "article summary": "summary",
    "news summary": "summary",
    "body": "summary",
    "text": "summary",
    "details": "summary",
}
#: "... headline: Acme soars" inside a sentence.
_INLINE_HEADLINE = re.compile(
    r"\b(?:headline|title)\b[^:\n]{0,40}:\s*(?P<value>\S.*)$",
    re.IGNORECASE | re.MULTILINE,
)
#: '... headline "Acme soars"' without a colon.
_QUOTED_HEADLINE = re.compile(
    r"\bheadline\b[^\n\"\u201c]{0,40}[\"\u201c](?P<value>[^\"\u201d\n]+)[\"\u201d]",
    re.IGNORECASE,
)
_EXCHANGE_TICKER = re.compile(
    r"\((?:NASDAQ|NYSE(?:\s+American)?|NYSEAMERICAN|AMEX|OTC(?:QB|QX|\s+Markets)?|"
    r"TSXV?|CSE|LSE|ASX)\s*:\s*(?P<ticker>[A-Z][A-Z0-9.\-]{0,9})\)"
)
_CASHTAG = re.compile(r"(?<![\w$])\$(?P<ticker>[A-Z][A-Z0-9]{0,5}(?:\.[A-Z]{1,2})?)\b")
_QUOTES = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019", "`": "`"}


@dataclass
class _NewsPrompt:
    title: str
    ticker: str = ""
    summary: str = ""


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and _QUOTES.get(text[0]) == text[-1]:
        return text[1:-1].strip()
    return text


def _parse_prompt(prompt: Any) -> Optional[_NewsPrompt]:
    """The news item in one of the bot's sentiment prompts, or None when the
    prompt is not one. See README.md for the forms read."""
    if not isinstance(prompt, str) or not _INTENT.search(prompt):
        return None
    parts: Dict[str, List[str]] = {}
    labels: Dict[str, str] = {}
    current: Optional[str] = None
    for line in prompt.splitlines():
        m = _FIELD_LINE.match(line)
        label = " ".join(m.group("key").lower().split()) if m else ""
        key = _FIELD_KEYS.get(label)
        if m is not None and key is not None:
            if key in parts and any(p.strip() for p in parts[key]):
                current = None  # the first one given wins
                continue
            parts[key] = [m.group("value")]
            labels[key] = label
            current = key
            continue
        if m is not None:
            current = None  # another labelled part begins
            continue
        stripped = line.strip()
        if current is None:
            continue
        if not stripped:
            if any(p.strip() for p in parts[current]):
                current = None
            continue
        parts[current].append(stripped)
        if current != "summary":
            current = None  # a headline or ticker is one line

    title = ""
    if "title" in parts:
        title = _unquote(" ".join(p.strip() for p in parts["title"] if p.strip()))
    if not title:
        m = _QUOTED_HEADLINE.search(prompt) or _INLINE_HEADLINE.search(prompt)
        if m is not None:
            title = _unquote(m.group("value"))
    if not title:
        return None

    ticker = ""
    if "ticker" in parts:
        # "Stock:" may name the company rather than its symbol: only an
        # upper-case symbol is taken from it.
        raw = " ".join(parts["ticker"])
        ticker = _ticker(raw, upper_only=labels["ticker"] == "stock")
    if not ticker:
        for pattern, text in (
            (_EXCHANGE_TICKER, title),
            (_CASHTAG, title),
            (_CASHTAG, prompt),
        ):
            m = pattern.search(text)
            if m is not None:
                ticker = _ticker(m.group("ticker"))
                if ticker:
                    break
    summary = ""
    if "summary" in parts:
        summary = _unquote(" ".join(p.strip() for p in parts["summary"] if p.strip()))
    return _NewsPrompt(
        title=_clean(title, _MAX_TITLE),
        ticker=ticker,
        summary=_clean(summary, _MAX_SUMMARY),
    )


def _refuse(caller: str) -> None:
    _log_once(
        "refused-prompt",
        logging.WARNING,
        "%s: the prompt is not a news sentiment prompt (it needs a "
        "'Headline: ...' line, or a quoted headline, and the word sentiment, "
        "bullish or bearish); the sentiment service judges financial news and "
        "is not a general LLM proxy, so this and other such prompts return "
        "None (logged once)",
        caller,
    )


def _classify_call(news: _NewsPrompt, priority: int) -> Callable[[Any, float], Any]:
    options = pb.ClassifyOptions(priority=priority)

    def call(client: Any, left: float) -> Any:
        return client.classify(
            news.title,
            ticker=news.ticker,
            summary=news.summary,
            options=options,
            timeout=left,
        )

    return call


def _query(
    caller: str, prompt: str, priority: Any, timeout: Any, max_retries: Any
) -> Optional[str]:
    seconds = _check_seconds(timeout, "timeout", DEFAULT_QUERY_TIMEOUT)
    retries = _check_retries(max_retries)
    news = _parse_prompt(prompt)
    if news is None:
        _refuse(caller)
        return None
    try:
        resp = _call(_classify_call(news, _priority(priority)), seconds, retries)
    except grpc.RpcError as exc:
        log.warning("%s: no answer from the sentiment service (%s)", caller, _rpc_text(exc))
        return None
    except _conn.ConfigError as exc:
        log.error("%s: %s", caller, exc)
        return None
    return _answer_text(resp)


def query_llm(
    prompt: str,
    *,
    system: Optional[str] = None,
    model: Optional[str] = None,
    timeout: Optional[float] = None,
    max_retries: int = 3,
) -> Optional[str]:
    """Judge the news item in one of the bot's sentiment prompts.

    Returns ``"Bullish - <rationale>"``, ``"Bearish - <rationale>"`` or
    ``"Neutral - <rationale>"`` (the label word first, then `` - `` and the
    rationale on the same line), or ``None`` when no answer came within
    ``timeout`` seconds (default 30), the service could not be reached, or the
    prompt is not a news sentiment prompt (logged once per process).

    ``max_retries`` is how often a call refused with UNAVAILABLE is retried
    within the timeout. ``system`` and ``model`` are accepted and ignored: the
    service picks the model tier by tier and uses its own prompt.
    """
    del system, model  # the service's own prompt and tier policy apply
    return _query("query_llm", prompt, pb.PRIORITY_NORMAL, timeout, max_retries)


def query_hybrid_llm(
    prompt: str,
    article_length: Optional[int] = None,
    priority: str = "normal",
    *,
    timeout: Optional[float] = None,
) -> Optional[str]:
    """:func:`query_llm` with a priority (``"low"``, ``"normal"``,
    ``"high"``); the service's router chooses the tier (local model, then
    Gemini, then Claude), as the old hybrid helper did. ``article_length``
    is accepted and ignored: the service measures the text itself."""
    del article_length
    return _query("query_hybrid_llm", prompt, priority, timeout, DEFAULT_RETRIES)


async def query_llm_async(
    prompt: str,
    *,
    system: Optional[str] = None,
    priority: str = "normal",
    timeout: Optional[float] = None,
) -> Optional[str]:
    """The asyncio :func:`query_llm`: same answer, on the running loop's
    grpc.aio channel, without blocking the loop."""
    del system
    caller = "query_llm_async"
    seconds = _check_seconds(timeout, "timeout", DEFAULT_QUERY_TIMEOUT)
    news = _parse_prompt(prompt)
    if news is None:
        _refuse(caller)
        return None
    call = _classify_call(news, _priority(priority))

    async def acall(client: Any, left: float) -> Any:
        return await call(client, left)

    try:
        resp = await _call_async(acall, seconds, DEFAULT_RETRIES)
    except grpc.RpcError as exc:
        log.warning("%s: no answer from the sentiment service (%s)", caller, _rpc_text(exc))
        return None
    except _conn.ConfigError as exc:
        log.error("%s: %s", caller, exc)
        return None
    return _answer_text(resp)


# --- batches ----------------------------------------------------------------------

_TITLE_FIELDS = ("title", "headline")
_SUMMARY_FIELDS = ("summary", "description", "content")
_TICKER_FIELDS = ("ticker", "symbol", "tickers", "symbols")
_ID_FIELDS = ("id", "news_id", "url")
_URL_FIELDS = ("url", "link")
_SOURCE_FIELDS = ("source", "publisher")


def _field(obj: Any, names: Sequence[str]) -> Any:
    """The first of ``names`` that ``obj`` has with a value: a dict key or an
    attribute."""
    for name in names:
        if isinstance(obj, Mapping):
            value = obj.get(name)
        else:
            try:
                value = getattr(obj, name, None)
            except Exception:  # a property that fails is no value
                value = None
        if value is not None and value != "" and not callable(value):
            return value
    return None


def _news_item(obj: Any, item_id: str) -> pb.NewsItem:
    if isinstance(obj, str):
        return pb.NewsItem(id=item_id, title=_clean(obj, _MAX_TITLE))
    url = _clean(_field(obj, _URL_FIELDS), _MAX_URL + 1)
    return pb.NewsItem(
        id=item_id,
        title=_clean(_field(obj, _TITLE_FIELDS), _MAX_TITLE),
        summary=_clean(_field(obj, _SUMMARY_FIELDS), _MAX_SUMMARY),
        ticker=_ticker(_field(obj, _TICKER_FIELDS)),
        source=_clean(_field(obj, _SOURCE_FIELDS), _MAX_SOURCE),
        url=url if len(url) <= _MAX_URL else "",
    )


def _result(item_id: str, resp: pb.ClassifyResponse) -> Dict[str, Any]:
    prov = resp.provenance
    return {
        "id": item_id,
        "sentiment": float(resp.score),
        "score": float(resp.prescore.score),
        "keywords": [h.phrase for h in resp.prescore.hits],
        "label": _label_name(resp.label),
        "confidence": float(resp.confidence),
        "rationale": resp.rationale,
        "tier": _TIERS.get(prov.tier, "lexicon"),
        "degraded": bool(prov.degraded),
        "prefiltered": bool(prov.prefiltered),
        "reason": prov.reason,
        "error": None,
    }


def _error_result(item_id: str, error: str) -> Dict[str, Any]:
    return {
        "id": item_id,
        "sentiment": 0.0,
        "score": 0.0,
        "keywords": [],
        "label": "neutral",
        "confidence": 0.0,
        "rationale": "",
        "tier": "none",
        "degraded": True,
        "prefiltered": False,
        "reason": error,
        "error": error,
    }


def _min_prescore(value: Any) -> Optional[float]:
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"min_prescale_score must be a number, not {value!r}") from None
    if math.isnan(v):
        raise ValueError("min_prescale_score must be a number from 0 to 1, not NaN")
    if not 0.0 <= v <= 1.0:
        clamped = min(1.0, max(0.0, v))
        _log_once(
            f"min_prescale_score:{v}",
            logging.WARNING,
            "classify_batch_with_llm: min_prescale_score=%r is outside 0..1; using %r",
            value,
            clamped,
        )
        v = clamped
    return v


def _note_ignored(name: str, why: str) -> None:
    _log_once(f"ignored:{name}", logging.INFO, "classify_batch_with_llm: %s is ignored: %s", name, why)


def classify_batch_with_llm(
    items: Iterable[Any],
    keyword_weights: Optional[Mapping[str, float]] = None,
    min_prescale_score: Optional[float] = 0.20,
    batch_size: int = 5,
    batch_delay: float = 2.0,
    *,
    priority: str = "normal",
    timeout: Optional[float] = None,
) -> List[Dict[str, Any]]:
    """Judge many news items on one ``ClassifyBatch`` stream.

    ``items`` are the bot's news dicts or objects (a plain headline string
    works too). Fields are found by name, as a dict key or an attribute:
    title ``title``/``headline``; summary ``summary``/``description``/
    ``content``; ticker ``ticker``/``symbol``; id ``id``/``news_id``/``url``
    (an item without one gets a generated id). Titles over 1000 characters
    and summaries over 10000 are cut.

    Returns one dict per item, **in input order**::

        {"id": str,            # the item's id, or the generated one
         "sentiment": float,   # the answer's score, -1 (bearish) .. 1 (bullish)
         "score": float,       # the lexicon prescore, -1 .. 1: what
                               # min_prescale_score is compared with
         "keywords": [str],    # the prescore's financial keyword phrases
         "label": "bullish" | "bearish" | "neutral",
         "confidence": float,  # 0 .. 1
         "rationale": str,
         "tier": "lexicon" | "local" | "gemini" | "anthropic" | "none",
         "degraded": bool,     # no model could judge it: the lexicon did
         "prefiltered": bool,  # answered from the lexicon, no model asked
         "reason": str,        # why degraded, or the error
         "error": None | str}

    An item the service rejects (no title, say), and every item when the
    service cannot be reached or the stream ends early, gets a neutral result
    (``sentiment`` and ``score`` 0.0, ``tier`` ``"none"``, ``degraded``
    True) with ``error`` saying why, never an exception.

    ``min_prescale_score`` is sent per item as the prefilter threshold
    (``ClassifyOptions.min_prescore``; None: the service's). With the
    service's default adaptive prefilter an item under it still reaches the
    local model while the GPU has room, and is answered from the lexicon
    (``prefiltered`` True) only when the GPU is busy; a service run with
    ``SENTIMENT_PREFILTER=fixed`` skips it always, as the old code did. ``keyword_weights``
    (the service's lexicon has its own), ``batch_size`` and ``batch_delay``
    (the service paces the GPU) are accepted and ignored, with a note in the
    log once. ``timeout`` bounds the whole batch (default 30 s plus 1 s per
    item, at most 600 s).
    """
    entries = list(items)
    if keyword_weights is not None:
        _note_ignored("keyword_weights", "the service's lexicon has its own financial keyword weights")
    if batch_size != 5:
        _note_ignored("batch_size", "the service paces the GPU itself; the whole batch goes on one stream")
    if batch_delay != 2.0:
        _note_ignored("batch_delay", "the service paces the GPU itself")
    threshold = _min_prescore(min_prescale_score)
    seconds = _check_seconds(
        timeout,
        "timeout",
        min(BATCH_MAX_TIMEOUT, BATCH_BASE_TIMEOUT + BATCH_PER_ITEM * len(entries)),
    )
    if not entries:
        return []

    options = pb.ClassifyOptions(priority=_priority(priority))
    if threshold is not None:
        options.min_prescore = threshold

    # Wire ids are unique on the stream: the item's own when it has a usable
    # one, else generated. Results are matched back by them.
    token = uuid.uuid4().hex[:12]
    ids: List[str] = []
    wire: List[pb.ClassifyBatchRequest] = []
    seen: set = set()
    for n, obj in enumerate(entries):
        raw = None if isinstance(obj, str) else _field(obj, _ID_FIELDS)
        item_id = str(raw) if raw is not None else f"compat-{token}-{n}"
        wire_id = item_id
        if len(wire_id) > _MAX_ID or wire_id in seen or wire_id != _clean(wire_id, _MAX_ID):
            wire_id = f"compat-{token}-{n}"
        seen.add(wire_id)
        ids.append(item_id)
        wire.append(pb.ClassifyBatchRequest(item=_news_item(obj, wire_id), options=options))
    index = {req.item.id: n for n, req in enumerate(wire)}

    results: List[Optional[Dict[str, Any]]] = [None] * len(entries)
    deadline = time.monotonic() + seconds
    attempt = 0
    failure = ""
    while True:
        pending = [req for n, req in enumerate(wire) if results[n] is None]
        if not pending:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            failure = failure or "DEADLINE_EXCEEDED: the batch's timeout passed"
            break
        try:
            client = _conn.client()
            for resp in client.classify_batch(pending, timeout=left):
                n = index.get(resp.id)
                if n is None or results[n] is not None:
                    continue
                if resp.WhichOneof("outcome") == "result":
                    results[n] = _result(ids[n], resp.result)
                else:
                    err = resp.error
                    code = grpc.StatusCode.UNKNOWN
                    for c in grpc.StatusCode:
                        if c.value[0] == err.code:
                            code = c
                            break
                    # The message usually names the field already.
                    named = not err.field or err.message.startswith(err.field)
                    where = "" if named else f"{err.field}: "
                    results[n] = _error_result(ids[n], f"{code.name}: {where}{err.message}")
            break
        except grpc.RpcError as exc:
            failure = _rpc_text(exc)
            if exc.code() != grpc.StatusCode.UNAVAILABLE or attempt >= DEFAULT_RETRIES:
                break
            pause = _backoff(attempt)
            if time.monotonic() + pause >= deadline:
                break
            time.sleep(pause)
            attempt += 1
        except _conn.ConfigError as exc:
            failure = str(exc)
            log.error("classify_batch_with_llm: %s", exc)
            break

    missing = [n for n, r in enumerate(results) if r is None]
    if missing:
        why = failure or "the service ended the stream without answering"
        log.warning(
            "classify_batch_with_llm: %d of %d items got no answer from the "
            "sentiment service (%s); they are neutral, degraded, with the error",
            len(missing),
            len(entries),
            why,
        )
        for n in missing:
            results[n] = _error_result(ids[n], why)
    return [r for r in results if r is not None]


# --- the GPU ---------------------------------------------------------------------

_GIB = float(1 << 30)
_GPU_KEYS = ("allocated_gb", "reserved_gb", "free_gb", "total_gb", "utilization_pct")


def _gpu_status(caller: str) -> Optional[pb.GPUStatusResponse]:
    try:
        return _call(
            lambda c, left: c.gpu_status(timeout=left), ADMIN_TIMEOUT, DEFAULT_RETRIES
        )
    except grpc.RpcError as exc:
        log.warning("%s: GPU status unavailable (%s)", caller, _rpc_text(exc))
    except _conn.ConfigError as exc:
        log.error("%s: %s", caller, exc)
    return None


def prime_ollama_gpu() -> bool:
    """True when the local model is warm and the local tier is taking work
    (GPUStatus ``model.warm`` and ``local_admitting``); False otherwise, or
    when the service cannot be reached. It loads nothing itself: the
    service's GPU manager preloads the model and keeps it warm."""
    st = _gpu_status("prime_ollama_gpu")
    if st is None:
        return False
    warm = bool(st.model.warm and st.local_admitting)
    if not warm:
        why = st.model.error or st.gate_reason or "the local model is not warm"
        log.info("prime_ollama_gpu: local model not ready (%s)", why)
    return warm


def _watched_device(st: pb.GPUStatusResponse) -> Optional[pb.GPUDevice]:
    if not st.devices:
        return None
    card = st.pressure_card
    if card:
        for dev in st.devices:
            if dev.name == card or card in dev.source:
                return dev
    return st.devices[0]


def get_gpu_memory_stats() -> Dict[str, float]:
    """VRAM of the card the service watches (or its first), in GiB (2**30
    bytes, as the old ``torch.cuda.memory_*() / 1024**3``)::

        {"allocated_gb": used VRAM,
         "reserved_gb": VRAM the local model holds (Ollama's size_vram),
                        or the used VRAM when the model holds none,
         "free_gb": free VRAM,
         "total_gb": the card's VRAM,
         "utilization_pct": used / total * 100}

    All floats; all 0.0 when there is no reading (no GPU reader on the
    service, or the service unreachable)."""
    stats = dict.fromkeys(_GPU_KEYS, 0.0)
    st = _gpu_status("get_gpu_memory_stats")
    if st is None:
        return stats
    dev = _watched_device(st)
    if dev is None or dev.vram_total_bytes == 0:
        return stats
    total = float(dev.vram_total_bytes)
    used = float(dev.vram_used_bytes)
    free = float(dev.vram_free_bytes) if dev.vram_free_bytes else max(total - used, 0.0)
    model = float(st.model.vram_bytes) if st.model.loaded else 0.0
    stats.update(
        allocated_gb=used / _GIB,
        reserved_gb=(model or used) / _GIB,
        free_gb=free / _GIB,
        total_gb=total / _GIB,
        utilization_pct=used / total * 100.0,
    )
    return stats


def _retry_delay(exc: grpc.RpcError) -> Optional[float]:
    """Seconds from a google.rpc.RetryInfo detail of a failed call, if any."""
    trailing = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    for key, value in trailing or ():
        if key != "grpc-status-details-bin" or not isinstance(value, bytes):
            continue
        # google.rpc.Status: field 3 holds the details, each an Any.
        for number, payload in _fields(value):
            if number != 3:
                continue
            detail = any_pb2.Any.FromString(payload)
            if not detail.type_url.endswith("/google.rpc.RetryInfo"):
                continue
            # google.rpc.RetryInfo: field 1 is the delay, a Duration.
            for n, dur in _fields(detail.value):
                if n == 1:
                    d = duration_pb2.Duration.FromString(dur)
                    return d.seconds + d.nanos / 1e9
    return None


def _fields(data: bytes) -> Iterable[Any]:
    """(field number, bytes) of each length-delimited field in a protobuf
    message; other fields are skipped."""
    pos = 0

    def varint() -> int:
        nonlocal pos
        shift = result = 0
        while True:
            b = data[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    try:
        while pos < len(data):
            tag = varint()
            number, kind = tag >> 3, tag & 7
            if kind == 0:
                varint()
            elif kind == 1:
                pos += 8
            elif kind == 5:
                pos += 4
            elif kind == 2:
                size = varint()
                yield number, data[pos : pos + size]
                pos += size
            else:
                return
    except IndexError:
        return


def cleanup_gpu_memory(force: bool = False) -> None:
    """With ``force``, ask the service's GPU manager to unload and reload the
    local model now (``CleanupGPU``); without it, nothing: the service cleans
    up on its own schedule, as the old rate-limited helper mostly did.

    Returns None, as the old helper did; what happened is logged (info when
    the cleanup started, a warning when the service refused: no GPU manager,
    one already running, or one asked for less than a minute ago)."""
    if not force:
        log.debug("cleanup_gpu_memory: nothing to do; the service's GPU manager cleans up on its own")
        return None
    try:
        resp = _call(
            lambda c, left: c.cleanup_gpu("cleanup_gpu_memory(force=True)", timeout=left),
            ADMIN_TIMEOUT,
            DEFAULT_RETRIES,
        )
    except grpc.RpcError as exc:
        code = exc.code()
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            delay = _retry_delay(exc)
            log.warning(
                "cleanup_gpu_memory: refused, a cleanup was asked for less than a minute ago%s (%s)",
                f"; retry in {delay:.0f} s" if delay is not None else "",
                _rpc_text(exc),
            )
        elif code == grpc.StatusCode.ABORTED:
            log.warning("cleanup_gpu_memory: a cleanup is already running (%s)", _rpc_text(exc))
        elif code == grpc.StatusCode.FAILED_PRECONDITION:
            log.warning("cleanup_gpu_memory: the service has no GPU manager (%s)", _rpc_text(exc))
        else:
            log.warning("cleanup_gpu_memory: failed (%s)", _rpc_text(exc))
        return None
    except _conn.ConfigError as exc:
        log.error("cleanup_gpu_memory: %s", exc)
        return None
    log.info("cleanup_gpu_memory: GPU cleanup started (phase %s)", resp.phase or "unknown")
    return None


# --- stats ------------------------------------------------------------------------


def _stats(caller: str) -> Optional[pb.StatsResponse]:
    try:
        return _call(lambda c, left: c.stats(timeout=left), ADMIN_TIMEOUT, DEFAULT_RETRIES)
    except grpc.RpcError as exc:
        log.warning("%s: stats unavailable (%s)", caller, _rpc_text(exc))
    except _conn.ConfigError as exc:
        log.error("%s: %s", caller, exc)
    return None


class RateLimiter:
    """What :func:`get_rate_limiter` returns: a view of one provider's quota
    on the service. The service does the limiting; this only reports."""

    def __init__(self, provider: str, tier: int) -> None:
        self.provider = provider
        self._tier = tier

    def get_stats(self) -> Dict[str, int]:
        """``{"requests_last_min", "requests_last_hour", "requests_last_day",
        "consecutive_failures"}``, ints: the used counts of the provider's
        ``minute``, ``hour`` and ``day`` quota windows on the service (0 for a
        window the provider has none of, such as the local model's), and the
        failures in a row its breaker counts. All 0 when the service cannot
        be reached."""
        out = {
            "requests_last_min": 0,
            "requests_last_hour": 0,
            "requests_last_day": 0,
            "consecutive_failures": 0,
        }
        st = _stats(f"get_rate_limiter({self.provider!r}).get_stats")
        if st is None:
            return out
        for tier in st.tiers:
            if tier.tier != self._tier:
                continue
            windows = {q.window: int(q.used) for q in tier.quotas}
            out["requests_last_min"] = windows.get("minute", 0)
            out["requests_last_hour"] = windows.get("hour", 0)
            out["requests_last_day"] = windows.get("day", 0)
            out["consecutive_failures"] = int(tier.consecutive_failures)
        return out

    def __repr__(self) -> str:
        return f"RateLimiter({self.provider!r})"


class ErrorHandler:
    """What :func:`get_error_handler` returns: the service's error counts."""

    def get_error_stats(self) -> Dict[str, Any]:
        """``{"total_errors": int, "recent_errors_1h": int, "error_types":
        {type: int}}``:

        * ``recent_errors_1h``: failed model calls in the last hour, over all
          tiers (Stats ``tiers[].errors_last_hour``);
        * ``error_types``: the same, by type ("timeout", "http_500",
          "connection", ...), summed over the tiers;
        * ``total_errors``: ``recent_errors_1h`` plus the requests that ended
          in an error since the service started (Stats ``requests.failed``).
          The service keeps no all-time count of model-call errors, so older
          ones are not in it; degraded answers are not errors (they were
          answered).

        All zero, and ``error_types`` empty, when the service cannot be
        reached."""
        out: Dict[str, Any] = {"total_errors": 0, "recent_errors_1h": 0, "error_types": {}}
        st = _stats("get_error_handler().get_error_stats")
        if st is None:
            return out
        types: Dict[str, int] = {}
        for tier in st.tiers:
            for kind, count in tier.errors_last_hour.items():
                types[kind] = types.get(kind, 0) + int(count)
        recent = sum(types.values())
        out["recent_errors_1h"] = recent
        out["total_errors"] = recent + int(st.requests.failed)
        out["error_types"] = dict(sorted(types.items()))
        return out

    def __repr__(self) -> str:
        return "ErrorHandler()"


_limiters: Dict[str, RateLimiter] = {}
_handler = ErrorHandler()


def get_rate_limiter(provider: str) -> RateLimiter:
    """The rate limiter of ``provider``: ``"gemini"``, ``"anthropic"`` (or
    ``"claude"``), ``"local"`` (or ``"ollama"``). Raises ValueError for any
    other name."""
    key = str(provider).strip().lower()
    tier = _PROVIDERS.get(key)
    if tier is None:
        raise ValueError(
            f"unknown provider {provider!r}: use 'gemini', 'anthropic' ('claude') or 'local' ('ollama')"
        )
    limiter = _limiters.get(key)
    if limiter is None:
        limiter = _limiters.setdefault(key, RateLimiter(key, tier))
    return limiter


def get_error_handler() -> ErrorHandler:
    """The error handler: see :meth:`ErrorHandler.get_error_stats`."""
    return _handler


# --- alerts -----------------------------------------------------------------------

_WEBHOOK_PATH = re.compile(r"/webhooks/(?P<id>\d{1,20})(?:/|$)")
_PRICE_FIELDS = ("last_price", "price", "current_price")
_CHANGE_FIELDS = ("change_pct", "price_change_pct", "change_percent", "percent_change", "change")
_ALERT_ID_FIELDS = ("id", "news_id")


def _number(value: Any) -> float:
    if value is None or isinstance(value, bool):
        return 0.0
    if isinstance(value, str):
        value = value.strip().replace(",", "").rstrip("%").lstrip("+$")
    try:
        v = float(value)
    except (TypeError, ValueError):
        return 0.0
    return v if math.isfinite(v) else 0.0


def _webhook_id(url: Any) -> Optional[str]:
    if not isinstance(url, str):
        return None
    try:
        path = urlsplit(url.strip()).path
    except ValueError:
        return None
    m = _WEBHOOK_PATH.search(path)
    return m.group("id") if m else None


def send_progressive_alert(
    alert_data: Any, webhook_url: str, *, timeout: Optional[float] = None
) -> Optional[Dict[str, Any]]:
    """Post the alert through the service (``Alert``): at once with the
    lexicon's leaning, edited with the model's verdict when it comes.

    ``webhook_url`` only names the channel: its webhook id (the number in
    ``https://discord.com/api/webhooks/{id}/{token}``) is looked up among
    the service's channels (``ListAlertChannels``); the URL itself is never
    sent. ``alert_data`` is the bot's dict (or object): ``ticker``/``symbol``,
    ``title``/``headline``, ``summary``/``description``/``content``,
    ``last_price``/``price``, ``change_pct``/``price_change_pct``/``change``
    (percent), ``id``/``news_id``, ``url``, ``source``.

    Returns ``{"id": message_id, "channel_id": channel, "duplicate": bool}``:
    the Discord message id, the service's channel name (not Discord's channel
    snowflake, which the service does not report), and whether the item had
    already alerted there (then ``id`` is that first message's). Returns None,
    with an error logged, when no channel of the service posts to that webhook,
    the post failed, or the service could not be reached.
    """
    caller = "send_progressive_alert"
    seconds = _check_seconds(timeout, "timeout", ALERT_TIMEOUT)
    webhook_id = _webhook_id(webhook_url)
    if webhook_id is None:
        log.error("%s: the webhook URL holds no webhook id (.../webhooks/{id}/{token})", caller)
        return None
    deadline = time.monotonic() + seconds
    try:
        channels = _call(
            lambda c, left: c.list_alert_channels(timeout=left), seconds, DEFAULT_RETRIES
        ).channels
    except grpc.RpcError as exc:
        log.error("%s: the service's alert channels are unavailable (%s)", caller, _rpc_text(exc))
        return None
    except _conn.ConfigError as exc:
        log.error("%s: %s", caller, exc)
        return None
    matches = [c for c in channels if c.webhook_id == webhook_id]
    if not matches:
        log.error(
            "%s: no alert channel of the sentiment service posts to webhook %s; "
            "configure it in the service's SENTIMENT_DISCORD_WEBHOOKS (it has: %s)",
            caller,
            webhook_id,
            ", ".join(c.name for c in channels) or "none",
        )
        return None
    matches.sort(key=lambda c: (c.broken, not c.default))
    channel = matches[0].name

    raw_id = _field(alert_data, _ALERT_ID_FIELDS)
    item_id = _clean(raw_id, _MAX_ID + 1) if raw_id is not None else ""
    url = _clean(_field(alert_data, _URL_FIELDS), _MAX_URL + 1)
    last_price = _number(_field(alert_data, _PRICE_FIELDS))
    request = dict(
        channel=channel,
        last_price=last_price if last_price > 0 else 0.0,
        change_pct=_number(_field(alert_data, _CHANGE_FIELDS)),
        ticker=_ticker(_field(alert_data, _TICKER_FIELDS)),
        summary=_clean(_field(alert_data, _SUMMARY_FIELDS), _MAX_SUMMARY),
        id=item_id if len(item_id) <= _MAX_ID else "",
        source=_clean(_field(alert_data, _SOURCE_FIELDS), _MAX_SOURCE),
        url=url if len(url) <= _MAX_URL else "",
    )
    title = _clean(_field(alert_data, _TITLE_FIELDS), _MAX_TITLE)
    left = deadline - time.monotonic()
    try:
        client = _conn.client()
        resp = client.alert(title, timeout=max(left, 0.001), **request)
    except grpc.RpcError as exc:
        log.error("%s: the alert was not posted to %s (%s)", caller, channel, _rpc_text(exc))
        return None
    return {"id": resp.message_id, "channel_id": resp.channel, "duplicate": bool(resp.duplicate)}
