"""The process-wide connection behind :mod:`catalyst_sentiment.compat`.

The old helpers were plain functions with no client object to pass around, so
the connection they share lives here:

* one :class:`~catalyst_sentiment.Client` (one gRPC channel) per process,
  created on first use from the environment (``SENTIMENT_ADDR``,
  ``SENTIMENT_TOKEN``, ``SENTIMENT_TLS_CA``) and shared by all threads;
* one :class:`~catalyst_sentiment.AsyncClient` per running event loop, since a
  grpc.aio channel belongs to the loop it was made in;
* after ``fork()`` the child drops what it inherited and builds its own on
  first use. A gRPC channel must not be used across fork: its connections and
  threads belong to the parent. The inherited objects are kept referenced,
  never closed or collected in the child, so that nothing the child does can
  touch the parent's sockets.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any, Dict, List, Optional, Tuple

import grpc

from .client import DEFAULT_TARGET, AsyncClient, Client

__all__ = ["ConfigError", "async_client", "client", "reset"]

ENV_ADDR = "SENTIMENT_ADDR"
ENV_TOKEN = "SENTIMENT_TOKEN"
ENV_TLS_CA = "SENTIMENT_TLS_CA"

#: Channel arguments. gRPC waits up to two minutes between reconnection
#: attempts to a server that went away, and fails calls at once meanwhile;
#: five seconds at most lets the bot see a restarted service soon.
CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 5000),
)


class ConfigError(Exception):
    """The environment names a connection that cannot be set up (an
    unreadable ``SENTIMENT_TLS_CA``)."""


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = os.getpid()
        self.client: Optional[Client] = None
        # id(loop) -> (loop, client). Keyed by id, not weakly by the loop: a
        # grpc.aio channel holds its loop, so a weak key would never die.
        # Entries of closed loops are dropped on the next lookup.
        self.aio: Dict[int, Tuple[asyncio.AbstractEventLoop, AsyncClient]] = {}


_state = _State()
#: Clients inherited through fork(): referenced for the rest of the child's
#: life so that their channels are never closed from the child.
_inherited: List[Any] = []


def _settings() -> Tuple[str, Optional[str], Optional[grpc.ChannelCredentials]]:
    target = os.environ.get(ENV_ADDR, "").strip() or DEFAULT_TARGET
    token = os.environ.get(ENV_TOKEN, "").strip() or None
    ca_path = os.environ.get(ENV_TLS_CA, "").strip()
    credentials = None
    if ca_path:
        try:
            with open(ca_path, "rb") as f:
                pem = f.read()
        except OSError as exc:
            raise ConfigError(
                f"{ENV_TLS_CA}={ca_path!r} cannot be read: {exc.strerror or exc}"
            ) from None
        credentials = grpc.ssl_channel_credentials(root_certificates=pem)
    return target, token, credentials


def _after_fork_in_child() -> None:
    global _state
    old = _state
    if old.client is not None:
        _inherited.append(old.client)
    _inherited.extend(entry for entry in old.aio.values())
    # A fresh lock too: another thread of the parent may have held the old
    # one at the moment of the fork, and nobody would ever release it here.
    _state = _State()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _current() -> _State:
    # Belt and braces: a fork that skipped the hook (a C library calling
    # fork() directly) is noticed by the process id.
    if _state.pid != os.getpid():
        _after_fork_in_child()
    return _state


def client() -> Client:
    """The process's sync client, created on first use."""
    st = _current()
    c = st.client
    if c is not None:
        return c
    with st.lock:
        if st.client is None:
            target, token, credentials = _settings()
            st.client = Client(
                target, token=token, credentials=credentials, options=CHANNEL_OPTIONS
            )
        return st.client


def async_client() -> AsyncClient:
    """The running event loop's client, created on first use. Call it from
    a coroutine (it needs the running loop)."""
    loop = asyncio.get_running_loop()
    st = _current()
    with st.lock:
        for key, (other, _) in list(st.aio.items()):
            if other.is_closed():
                # Its channel cannot be closed on a closed loop; dropping it
                # lets the channel's finaliser release it.
                del st.aio[key]
        entry = st.aio.get(id(loop))
        if entry is not None and entry[0] is loop:
            return entry[1]
        target, token, credentials = _settings()
        c = AsyncClient(
            target, token=token, credentials=credentials, options=CHANNEL_OPTIONS
        )
        st.aio[id(loop)] = (loop, c)
        return c


def reset() -> None:
    """Close this process's sync channel and forget every client: the next
    call connects again, reading the environment afresh."""
    st = _current()
    with st.lock:
        c, st.client = st.client, None
        st.aio.clear()
    if c is not None:
        c.close()
