"""A small client for catalyst-sentiment, sync (:class:`Client`) and asyncio
(:class:`AsyncClient`).

The generated stubs already speak the protocol; this wrapper exists so that the
trading-alert bot cannot get three things wrong that cost it dearly before:

* **every call has a deadline.** The service promises an answer inside the
  caller's deadline (a degraded lexicon answer when every model is down), but
  only if the caller sets one; a call without a deadline can wait forever on a
  wedged connection. Each method takes ``timeout`` and falls back to the
  client's default, which must be a positive number.
* **the auth token goes on every call**, not only on the ones someone
  remembered, as ``authorization: Bearer <token>`` metadata.
* **batch items are built the same way everywhere**: a plain dict from the
  bot's news feed, a :class:`NewsItem`, or a ready
  :class:`ClassifyBatchRequest` all work.

Several replicas: give a target that resolves to all of them
(``dns:///sentimentd-headless.catalyst.svc.cluster.local:50051`` on
Kubernetes, or ``ipv4:10.0.0.5:50051,10.0.0.6:50051``). The client balances
calls round-robin over them and retries a call that found a replica gone
(``UNAVAILABLE``) on another, for the calls that are safe to repeat
(``Classify``, ``GPUStatus``, ``Stats``, ``ListAlertChannels``; not ``Alert``
or ``CleanupGPU``). A ``ClassifyBatch`` stream whose replica goes away
resumes on another: only the items not yet answered are sent again, and an
item is never yielded twice (items are matched by ``id``).

Errors are not wrapped: a failed call raises :class:`grpc.RpcError` (for the
asyncio client :class:`grpc.aio.AioRpcError`, a subclass), whose ``code()`` and
``details()`` say what went wrong, e.g. ``INVALID_ARGUMENT`` naming the field
and the limit. One item of a batch failing is *not* an exception: it comes back
as a :class:`ClassifyBatchResponse` whose ``error`` is set.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import logging
import math
import threading
import time
from collections.abc import AsyncIterable
from typing import (
    Any,
    AsyncIterator,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    Union,
)

import grpc
import grpc.aio
from google.protobuf import timestamp_pb2

from catalyst.sentiment.v1 import sentiment_pb2 as pb
from catalyst.sentiment.v1 import sentiment_pb2_grpc as pb_grpc

__all__ = [
    "DEFAULT_TARGET",
    "DEFAULT_TIMEOUT",
    "AsyncClient",
    "BatchItem",
    "Client",
    "label_name",
    "news_item",
]

#: Where the service listens by default (``SENTIMENT_GRPC_ADDR`` is ``:50051``).
DEFAULT_TARGET = "localhost:50051"
#: Seconds a call may take when neither the call nor the client says otherwise.
DEFAULT_TIMEOUT = 5.0

_log = logging.getLogger(__name__)

#: The channel's service config: round-robin over every address the target
#: resolves to, and retries of UNAVAILABLE for the calls safe to repeat. A
#: ``grpc.service_config`` among the client's ``options`` replaces it.
SERVICE_CONFIG = json.dumps(
    {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": [
                    {"service": "catalyst.sentiment.v1.SentimentService", "method": m}
                    for m in ("Classify", "GPUStatus", "Stats", "ListAlertChannels")
                ],
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "0.5s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
    }
)

#: How many times one ClassifyBatch call resumes on another replica.
MAX_BATCH_RESUMES = 5


def _channel_options(options: Optional[Sequence[Tuple[str, Any]]]) -> List[Tuple[str, Any]]:
    opts = list(options) if options else []
    if not any(k == "grpc.service_config" for k, _ in opts):
        opts.append(("grpc.service_config", SERVICE_CONFIG))
    return opts


class _BatchLedger:
    """What one ClassifyBatch call has sent and had answered, across the
    streams it resumes on. ``pending`` holds the requests sent and not yet
    finally answered, by id, in the order sent; ``generation`` is the
    stream that may draw new items from the caller's iterable: a stream
    that has ended draws no more, so no item is taken from the iterable
    and then lost with the stream that took it."""

    def __init__(self, deadline: float) -> None:
        self.end = time.monotonic() + deadline
        self.pending: Dict[str, pb.ClassifyBatchRequest] = {}
        self.final: Set[str] = set()
        self.preliminary: Set[str] = set()
        self.generation = 0
        self.resumes = 0

    def sent(self, request: pb.ClassifyBatchRequest) -> None:
        if request.item.id and request.item.id not in self.final:
            self.pending[request.item.id] = request

    def first_time(self, response: pb.ClassifyBatchResponse) -> bool:
        """Records an answer; False for one already given (a resumed stream
        answering again what the first answered before it went away)."""
        rid = response.id
        if not rid:
            return True
        if response.HasField("result") and response.result.phase == pb.PHASE_PRELIMINARY:
            if rid in self.preliminary or rid in self.final:
                return False
            self.preliminary.add(rid)
            return True
        if rid in self.final:
            return False
        self.final.add(rid)
        self.pending.pop(rid, None)
        return True

    def timeout(self) -> float:
        """What is left of the whole call's deadline, for the next stream."""
        return max(self.end - time.monotonic(), 0.001)

    def may_resume(self, err: grpc.RpcError) -> bool:
        """Whether the call goes on on another stream: the replica went away
        (UNAVAILABLE), resumes are left, and so is time."""
        if err.code() != grpc.StatusCode.UNAVAILABLE or self.resumes >= MAX_BATCH_RESUMES:
            return False
        if self.end - time.monotonic() <= 0:
            return False
        self.resumes += 1
        _log.warning(
            "ClassifyBatch: the stream ended (%s: %s); resuming on another replica "
            "with %d unanswered item(s)",
            err.code().name, err.details(), len(self.pending),
        )
        return True

#: A batch item: a NewsItem, a dict of NewsItem fields, or a full batch request.
BatchItem = Union[pb.NewsItem, Mapping[str, Any], pb.ClassifyBatchRequest]
#: When a news item was published: a datetime (naive means UTC) or a Timestamp.
PublishedAt = Union[_dt.datetime, timestamp_pb2.Timestamp]
#: Per-item options: the message, or a dict of its fields.
Options = Union[pb.ClassifyOptions, Mapping[str, Any]]

_Metadata = Tuple[Tuple[str, str], ...]

_LABEL_NAMES = {
    pb.LABEL_BEARISH: "bearish",
    pb.LABEL_NEUTRAL: "neutral",
    pb.LABEL_BULLISH: "bullish",
}

_NEWS_ITEM_FIELDS = frozenset(f.name for f in pb.NewsItem.DESCRIPTOR.fields)


def label_name(label: int) -> str:
    """Return ``"bearish"``, ``"neutral"``, ``"bullish"`` or ``"unspecified"``.

    For alert text and logs, where ``LABEL_BULLISH`` (or the bare number 3)
    reads badly. A value this version of the contract does not know yet also
    reads ``"unspecified"``, so a newer server never breaks an older bot.
    """
    return _LABEL_NAMES.get(int(label), "unspecified")


def _timestamp(value: PublishedAt) -> timestamp_pb2.Timestamp:
    if isinstance(value, timestamp_pb2.Timestamp):
        return value
    if isinstance(value, _dt.datetime):
        ts = timestamp_pb2.Timestamp()
        # FromDatetime reads a naive datetime as UTC, the wire's zone.
        ts.FromDatetime(value)
        return ts
    raise TypeError(
        "published_at must be a datetime.datetime or a "
        f"google.protobuf.Timestamp, not {type(value).__name__}"
    )


def news_item(
    title: str,
    *,
    ticker: str = "",
    summary: str = "",
    id: str = "",  # noqa: A002 - the contract's field name
    source: str = "",
    url: str = "",
    published_at: Optional[PublishedAt] = None,
) -> pb.NewsItem:
    """Build a :class:`NewsItem`, converting ``published_at`` from a datetime.

    Limits (checked by the server, which answers ``INVALID_ARGUMENT`` naming the
    field): title required and at most 1000 characters, id 128, ticker 16,
    summary 10000, source 256, url 2048.
    """
    item = pb.NewsItem(
        id=id, ticker=ticker, title=title, summary=summary, source=source, url=url
    )
    if published_at is not None:
        item.published_at.CopyFrom(_timestamp(published_at))
    return item


def _item_from_mapping(fields: Mapping[str, Any]) -> pb.NewsItem:
    unknown = set(fields) - _NEWS_ITEM_FIELDS
    if unknown:
        raise ValueError(
            f"unknown NewsItem field(s) {sorted(unknown)}; "
            f"known: {sorted(_NEWS_ITEM_FIELDS)}"
        )
    kwargs = dict(fields)
    published_at = kwargs.pop("published_at", None)
    item = pb.NewsItem(**kwargs)
    if published_at is not None:
        item.published_at.CopyFrom(_timestamp(published_at))
    return item


def _options(options: Optional[Options]) -> Optional[pb.ClassifyOptions]:
    if options is None or isinstance(options, pb.ClassifyOptions):
        return options
    if isinstance(options, Mapping):
        return pb.ClassifyOptions(**options)
    raise TypeError(
        "options must be a ClassifyOptions or a dict of its fields, "
        f"not {type(options).__name__}"
    )


def _classify_request(
    title: Union[str, pb.NewsItem],
    options: Optional[Options],
    fields: Mapping[str, Any],
) -> pb.ClassifyRequest:
    if isinstance(title, pb.NewsItem):
        # Keyword fields that were given fill in or override the item's own,
        # on a copy: the caller's message is left as it was.
        item = pb.NewsItem()
        item.CopyFrom(title)
        for name, value in fields.items():
            if name == "published_at":
                if value is not None:
                    item.published_at.CopyFrom(_timestamp(value))
            elif value:
                setattr(item, name, value)
    elif isinstance(title, str):
        item = news_item(title, **fields)
    else:
        raise TypeError(
            f"classify() takes a title (str) or a NewsItem, not {type(title).__name__}"
        )
    request = pb.ClassifyRequest(item=item)
    opts = _options(options)
    if opts is not None:
        request.options.CopyFrom(opts)
    return request


def _alert_request(
    title: Union[str, pb.NewsItem],
    channel: str,
    last_price: float,
    change_pct: float,
    options: Optional[Options],
    fields: Mapping[str, Any],
) -> pb.AlertRequest:
    base = _classify_request(title, options, fields)
    request = pb.AlertRequest(
        item=base.item,
        alert=pb.AlertOptions(
            channel=channel, last_price=last_price, change_pct=change_pct
        ),
    )
    if base.HasField("options"):
        request.options.CopyFrom(base.options)
    return request


def _batch_request(
    entry: BatchItem, preliminary: bool, options: Optional[pb.ClassifyOptions]
) -> pb.ClassifyBatchRequest:
    """Turn one batch entry into a request.

    A ready :class:`ClassifyBatchRequest` is sent as it is (its own options and
    preliminary flag win); NewsItems and dicts get the batch-wide ones. Items
    without an id are sent anyway: the server answers them with an error entry
    naming ``item.id``, which keeps one bad item from ending the batch.
    """
    if isinstance(entry, pb.ClassifyBatchRequest):
        return entry
    if isinstance(entry, pb.NewsItem):
        item = entry
    elif isinstance(entry, Mapping):
        item = _item_from_mapping(entry)
    else:
        raise TypeError(
            "batch items must be NewsItem, ClassifyBatchRequest or dict, "
            f"not {type(entry).__name__}"
        )
    request = pb.ClassifyBatchRequest(item=item, preliminary=preliminary)
    if options is not None:
        request.options.CopyFrom(options)
    return request


def _check_timeout(timeout: Any, what: str) -> float:
    # bool is an int: reject it, True seconds is certainly a mistake.
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, not {timeout!r}")
    if not (timeout > 0 and math.isfinite(timeout)):
        raise ValueError(
            f"{what} must be a positive, finite number of seconds, not {timeout!r}: "
            "every call needs a deadline"
        )
    return float(timeout)


class _Base:
    """What the sync and asyncio clients share: settings, metadata, deadlines."""

    def __init__(
        self,
        target: str,
        timeout: float,
        token: Optional[str],
        credentials: Optional[grpc.ChannelCredentials],
    ) -> None:
        self.target = target
        self.timeout = _check_timeout(timeout, "timeout")
        if token is not None and not token:
            raise ValueError("token must be a non-empty string or None")
        self._metadata: Optional[_Metadata] = (
            (("authorization", f"Bearer {token}"),) if token else None
        )
        self._credentials = credentials

    def _deadline(self, timeout: Optional[float]) -> float:
        if timeout is None:
            return self.timeout
        return _check_timeout(timeout, "timeout")

    def __repr__(self) -> str:
        auth = ", token=***" if self._metadata else ""
        tls = ", tls" if self._credentials is not None else ""
        return (
            f"{type(self).__name__}({self.target!r}, timeout={self.timeout}{auth}{tls})"
        )


class Client(_Base):
    """Blocking client for the sentiment service.

    ``target`` is ``host:port``. ``timeout`` is the default deadline in seconds
    for each call (each method also takes its own). ``token`` is sent as
    ``authorization: Bearer <token>`` on every call when the server has
    ``SENTIMENT_AUTH_TOKENS`` set. ``credentials`` (from
    :func:`grpc.ssl_channel_credentials`) switches to TLS; without it the
    channel is plaintext. ``options`` are gRPC channel arguments, e.g.
    ``[("grpc.max_reconnect_backoff_ms", 5000)]``.

    Use it as a context manager, or call :meth:`close`, so the channel's
    connections and threads go away with it. One client can be shared by
    threads.
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        token: Optional[str] = None,
        credentials: Optional[grpc.ChannelCredentials] = None,
        options: Optional[Sequence[Tuple[str, Any]]] = None,
    ) -> None:
        super().__init__(target, timeout, token, credentials)
        opts = _channel_options(options)
        if credentials is None:
            self._channel = grpc.insecure_channel(target, options=opts)
        else:
            self._channel = grpc.secure_channel(target, credentials, options=opts)
        self._stub = pb_grpc.SentimentServiceStub(self._channel)

    def classify(
        self,
        title: Union[str, pb.NewsItem],
        *,
        ticker: str = "",
        summary: str = "",
        id: str = "",  # noqa: A002 - the contract's field name
        source: str = "",
        url: str = "",
        published_at: Optional[PublishedAt] = None,
        options: Optional[Options] = None,
        timeout: Optional[float] = None,
    ) -> pb.ClassifyResponse:
        """Judge one news item.

        ``title`` is the headline, or a ready :class:`NewsItem` (keyword fields
        given as well override its fields). ``options`` is a
        :class:`ClassifyOptions` or a dict of its fields, e.g.
        ``{"require_llm": True}``. Raises :class:`grpc.RpcError` on failure.
        """
        request = _classify_request(
            title,
            options,
            dict(
                ticker=ticker,
                summary=summary,
                id=id,
                source=source,
                url=url,
                published_at=published_at,
            ),
        )
        return self._stub.Classify(
            request, timeout=self._deadline(timeout), metadata=self._metadata
        )

    def classify_batch(
        self,
        items: Iterable[BatchItem],
        *,
        preliminary: bool = False,
        options: Optional[Options] = None,
        timeout: Optional[float] = None,
    ) -> Iterator[pb.ClassifyBatchResponse]:
        """Judge many items on one stream; yield results as the server sends them.

        Results come in the order items finish, not the order sent: match them
        by ``id``, which every item needs (one without gets an error entry, as
        does any other bad item; the stream goes on). With ``preliminary`` each
        item is answered twice, the lexicon's ``PHASE_PRELIMINARY`` answer at
        once and the ``PHASE_FINAL`` one later, so an alert can go out before
        the model has spoken.

        ``items`` is read lazily while results arrive, so a long feed can be
        streamed. ``timeout`` bounds the *whole stream*: give a big batch
        enough. Stopping the iteration early cancels the stream. An exception
        raised while reading ``items`` ends the stream and is re-raised here.
        """
        opts = _options(options)
        deadline = self._deadline(timeout)
        return self._batch(items, preliminary, opts, deadline)

    def _batch(
        self,
        items: Iterable[BatchItem],
        preliminary: bool,
        opts: Optional[pb.ClassifyOptions],
        deadline: float,
    ) -> Iterator[pb.ClassifyBatchResponse]:
        failure: List[BaseException] = []
        ledger = _BatchLedger(deadline)
        source = iter(items)
        lock = threading.Lock()  # gRPC reads the requests on its own thread

        def requests(generation: int, resend: List[pb.ClassifyBatchRequest]) -> Iterator[pb.ClassifyBatchRequest]:
            yield from resend
            while True:
                with lock:
                    if generation != ledger.generation:
                        return
                    try:
                        entry = next(source)
                        request = _batch_request(entry, preliminary, opts)
                    except StopIteration:
                        return
                    except Exception as exc:
                        # gRPC would log it and end the call as UNKNOWN
                        # "Exception iterating requests!"; keep it so the
                        # caller sees the real one.
                        failure.append(exc)
                        raise
                    ledger.sent(request)
                yield request

        resend: List[pb.ClassifyBatchRequest] = []
        while True:
            call = self._stub.ClassifyBatch(
                requests(ledger.generation, resend),
                timeout=ledger.timeout(),
                metadata=self._metadata,
            )
            try:
                for response in call:
                    if ledger.first_time(response):
                        yield response
                return
            except grpc.RpcError as err:
                if failure:
                    raise failure[0] from None
                if not ledger.may_resume(err):
                    raise
            finally:
                call.cancel()  # a no-op once the stream has ended
            with lock:
                ledger.generation += 1
                resend = list(ledger.pending.values())

    def gpu_status(self, *, timeout: Optional[float] = None) -> pb.GPUStatusResponse:
        """The local model's GPU: VRAM, pressure, model state, whether it admits work."""
        return self._stub.GPUStatus(
            pb.GPUStatusRequest(),
            timeout=self._deadline(timeout),
            metadata=self._metadata,
        )

    def stats(self, *, timeout: Optional[float] = None) -> pb.StatsResponse:
        """Counters, breakers, quotas, cache and cost, as the service sees them now."""
        return self._stub.Stats(
            pb.StatsRequest(), timeout=self._deadline(timeout), metadata=self._metadata
        )

    def alert(
        self,
        title: Union[str, pb.NewsItem],
        *,
        channel: str = "",
        last_price: float = 0.0,
        change_pct: float = 0.0,
        ticker: str = "",
        summary: str = "",
        id: str = "",  # noqa: A002 - the contract's field name
        source: str = "",
        url: str = "",
        published_at: Optional[PublishedAt] = None,
        options: Optional[Options] = None,
        timeout: Optional[float] = None,
    ) -> pb.AlertResponse:
        """Post a progressive Discord alert for one news item.

        ``channel`` is a channel name the server is configured with
        (``SENTIMENT_DISCORD_WEBHOOKS``; empty means its
        ``SENTIMENT_ALERT_CHANNEL``), never a webhook URL. The call returns
        once the preliminary post exists; the model's verdict is edited into
        the same message in the background. A repeat of an item already
        alerted on the channel returns the first message's id with
        ``duplicate`` set. Raises :class:`grpc.RpcError` on failure.
        """
        request = _alert_request(
            title,
            channel,
            last_price,
            change_pct,
            options,
            dict(
                ticker=ticker,
                summary=summary,
                id=id,
                source=source,
                url=url,
                published_at=published_at,
            ),
        )
        return self._stub.Alert(
            request, timeout=self._deadline(timeout), metadata=self._metadata
        )

    def list_alert_channels(
        self, *, timeout: Optional[float] = None
    ) -> pb.ListAlertChannelsResponse:
        """The server's alert channels: names and webhook ids, never a URL."""
        return self._stub.ListAlertChannels(
            pb.ListAlertChannelsRequest(),
            timeout=self._deadline(timeout),
            metadata=self._metadata,
        )

    def cleanup_gpu(
        self, reason: str = "", *, timeout: Optional[float] = None
    ) -> pb.CleanupGPUResponse:
        """Ask the GPU manager to unload and reload the local model now.

        ``FAILED_PRECONDITION`` without a local Ollama tier, ``ABORTED``
        while a cleanup runs, ``RESOURCE_EXHAUSTED`` within a minute of the
        last one asked for (with a ``google.rpc.RetryInfo`` detail).
        """
        return self._stub.CleanupGPU(
            pb.CleanupGPURequest(reason=reason),
            timeout=self._deadline(timeout),
            metadata=self._metadata,
        )

    def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncClient(_Base):
    """The asyncio twin of :class:`Client`, on :mod:`grpc.aio`.

    Same constructor and methods, awaited; :meth:`classify_batch` is an async
    iterator. Create it inside the running event loop (``async with
    AsyncClient(...) as client:``): a grpc.aio channel belongs to the loop it
    was made in.
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        token: Optional[str] = None,
        credentials: Optional[grpc.ChannelCredentials] = None,
        options: Optional[Sequence[Tuple[str, Any]]] = None,
    ) -> None:
        super().__init__(target, timeout, token, credentials)
        opts = _channel_options(options)
        if credentials is None:
            self._channel = grpc.aio.insecure_channel(target, options=opts)
        else:
            self._channel = grpc.aio.secure_channel(target, credentials, options=opts)
        self._stub = pb_grpc.SentimentServiceStub(self._channel)

    async def classify(
        self,
        title: Union[str, pb.NewsItem],
        *,
        ticker: str = "",
        summary: str = "",
        id: str = "",  # noqa: A002 - the contract's field name
        source: str = "",
        url: str = "",
        published_at: Optional[PublishedAt] = None,
        options: Optional[Options] = None,
        timeout: Optional[float] = None,
    ) -> pb.ClassifyResponse:
        """Judge one news item; see :meth:`Client.classify`."""
        request = _classify_request(
            title,
            options,
            dict(
                ticker=ticker,
                summary=summary,
                id=id,
                source=source,
                url=url,
                published_at=published_at,
            ),
        )
        return await self._stub.Classify(
            request, timeout=self._deadline(timeout), metadata=self._metadata
        )

    def classify_batch(
        self,
        items: Union[Iterable[BatchItem], AsyncIterable[BatchItem]],
        *,
        preliminary: bool = False,
        options: Optional[Options] = None,
        timeout: Optional[float] = None,
    ) -> AsyncIterator[pb.ClassifyBatchResponse]:
        """Judge many items on one stream; see :meth:`Client.classify_batch`.

        ``items`` may also be an async iterable (e.g. an async generator over a
        news websocket). Use with ``async for``.
        """
        opts = _options(options)
        deadline = self._deadline(timeout)
        return self._batch(items, preliminary, opts, deadline)

    async def _batch(
        self,
        items: Union[Iterable[BatchItem], AsyncIterable[BatchItem]],
        preliminary: bool,
        opts: Optional[pb.ClassifyOptions],
        deadline: float,
    ) -> AsyncIterator[pb.ClassifyBatchResponse]:
        failure: List[BaseException] = []
        ledger = _BatchLedger(deadline)
        aiter_ = items.__aiter__() if isinstance(items, AsyncIterable) else None
        iter_ = None if aiter_ is not None else iter(items)  # type: ignore[arg-type]
        lock = asyncio.Lock()
        pulls: List["asyncio.Future[Any]"] = []  # the caller's item being awaited

        async def requests(generation: int, resend: List[pb.ClassifyBatchRequest]) -> AsyncIterator[pb.ClassifyBatchRequest]:
            for request in resend:
                yield request
            while True:
                async with lock:
                    if generation != ledger.generation:
                        return
                    try:
                        if aiter_ is not None:
                            # Shielded: a stream cancelled while waiting for
                            # the caller's next item must not cancel the
                            # caller's iterator; the next stream awaits the
                            # same pull.
                            if not pulls:
                                pulls.append(asyncio.ensure_future(aiter_.__anext__()))
                            entry = await asyncio.shield(pulls[0])
                            pulls.clear()
                        else:
                            entry = next(iter_)  # type: ignore[arg-type]
                        request = _batch_request(entry, preliminary, opts)
                    except (StopIteration, StopAsyncIteration):
                        return
                    except Exception as exc:
                        # grpc.aio would only cancel the call (the reader then
                        # sees a bare CancelledError); keep the real error.
                        failure.append(exc)
                        raise
                    ledger.sent(request)
                yield request

        resend: List[pb.ClassifyBatchRequest] = []
        while True:
            call = self._stub.ClassifyBatch(
                requests(ledger.generation, resend),
                timeout=ledger.timeout(),
                metadata=self._metadata,
            )
            try:
                async for response in call:
                    if ledger.first_time(response):
                        yield response
                return
            except grpc.RpcError as err:
                if failure:
                    raise failure[0] from None
                if not ledger.may_resume(err):
                    raise
            except asyncio.CancelledError:
                if failure:
                    raise failure[0] from None
                raise
            finally:
                call.cancel()
            async with lock:
                ledger.generation += 1
                resend = list(ledger.pending.values())

    async def gpu_status(
        self, *, timeout: Optional[float] = None
    ) -> pb.GPUStatusResponse:
        """See :meth:`Client.gpu_status`."""
        return await self._stub.GPUStatus(
            pb.GPUStatusRequest(),
            timeout=self._deadline(timeout),
            metadata=self._metadata,
        )

    async def stats(self, *, timeout: Optional[float] = None) -> pb.StatsResponse:
        """See :meth:`Client.stats`."""
        return await self._stub.Stats(
            pb.StatsRequest(), timeout=self._deadline(timeout), metadata=self._metadata
        )

    async def alert(
        self,
        title: Union[str, pb.NewsItem],
        *,
        channel: str = "",
        last_price: float = 0.0,
        change_pct: float = 0.0,
        ticker: str = "",
        summary: str = "",
        id: str = "",  # noqa: A002 - the contract's field name
        source: str = "",
        url: str = "",
        published_at: Optional[PublishedAt] = None,
        options: Optional[Options] = None,
        timeout: Optional[float] = None,
    ) -> pb.AlertResponse:
        """See :meth:`Client.alert`."""
        request = _alert_request(
            title,
            channel,
            last_price,
            change_pct,
            options,
            dict(
                ticker=ticker,
                summary=summary,
                id=id,
                source=source,
                url=url,
                published_at=published_at,
            ),
        )
        return await self._stub.Alert(
            request, timeout=self._deadline(timeout), metadata=self._metadata
        )

    async def list_alert_channels(
        self, *, timeout: Optional[float] = None
    ) -> pb.ListAlertChannelsResponse:
        """See :meth:`Client.list_alert_channels`."""
        return await self._stub.ListAlertChannels(
            pb.ListAlertChannelsRequest(),
            timeout=self._deadline(timeout),
            metadata=self._metadata,
        )

    async def cleanup_gpu(
        self, reason: str = "", *, timeout: Optional[float] = None
    ) -> pb.CleanupGPUResponse:
        """See :meth:`Client.cleanup_gpu`."""
        return await self._stub.CleanupGPU(
            pb.CleanupGPURequest(reason=reason),
            timeout=self._deadline(timeout),
            metadata=self._metadata,
        )

    async def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        await self._channel.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

