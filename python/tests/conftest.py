"""Fixtures: the real sentimentd binary on a loopback port.

The Python package is tested against the built server, not a mock, so the
stubs, the client and the server's behaviour are checked together. One server
is shared by the whole session (start-up is the slow part); a second one, with
auth tokens, serves the auth tests.

The binary is ``$SENTIMENTD_BIN`` when set (``make py-test`` builds it first),
else built here with ``go build`` into a temporary directory.

The compat tests add servers with fake upstreams (upstream_fakes.py): one
whose local model is a fake Ollama, on a fake RX 6800 (the GPU package's
sysfs fixture), posting alerts to a fake Discord; one with a GPU manager of
its own for the cleanup tests; one whose only model tier is a Gemini that
refuses connections.
"""

from __future__ import annotations

import os
import queue
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, Mapping, Tuple

import pytest

from upstream_fakes import FakeDiscord, FakeOllama

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Seconds to wait for the build and for the LISTENING line.
BUILD_TIMEOUT = 600
START_TIMEOUT = 30

#: Settings the tests' servers must not inherit from the developer's shell:
#: real model keys, remote caches, webhooks, TLS or auth would make answers
#: depend on the machine (and could cost money or post to Discord).
_SCRUBBED_ENV = (
    "GEMINI_API_KEY",
    "ANTHROPIC_API_KEY",
    "REDIS_URL",
    "LLM_USAGE_LOG_PATH",
    "SENTIMENT_AUTH_TOKENS",
    "SENTIMENT_TLS_CERT",
    "SENTIMENT_TLS_KEY",
    "SENTIMENT_DISCORD_WEBHOOKS",
    "SENTIMENT_GPU_READER",
    "SENTIMENT_ALERT_CHANNEL",
    "SENTIMENT_GEMINI_BASE_URL",
    "SENTIMENT_ANTHROPIC_BASE_URL",
    "LLM_ENDPOINT_URL",
)

AUTH_TOKENS = ("tok-a-0123456789abcdef", "tok-b-0123456789abcdef")


@dataclass
class Server:
    """A running sentimentd: where it listens and where its stderr goes."""

    addr: str
    proc: subprocess.Popen
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> None:
        """Stop the server now (a no-op once stopped)."""
        _stop(self)


@pytest.fixture(scope="session")
def sentimentd_bin(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path of the server binary: $SENTIMENTD_BIN, or a fresh ``go build``."""
    env_bin = os.environ.get("SENTIMENTD_BIN")
    if env_bin:
        if not os.access(env_bin, os.X_OK):
            pytest.fail(f"SENTIMENTD_BIN={env_bin!r} is not an executable file")
        return env_bin
    go = shutil.which("go")
    if go is None:
        pytest.fail("SENTIMENTD_BIN is unset and `go` is not on PATH to build it")
    out = tmp_path_factory.mktemp("bin") / "sentimentd"
    try:
        build = subprocess.run(
            [go, "build", "-o", str(out), "./cmd/sentimentd"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"go build ./cmd/sentimentd took over {BUILD_TIMEOUT}s")
    if build.returncode != 0:
        pytest.fail(
            f"go build ./cmd/sentimentd failed ({build.returncode}):\n"
            f"{build.stdout}{build.stderr}"
        )
    return str(out)


def _start_server(
    binary: str, workdir: Path, name: str, extra_env: Mapping[str, str]
) -> Server:
    env: Dict[str, str] = dict(os.environ)
    for key in _SCRUBBED_ENV:
        env.pop(key, None)
    empty_sysfs = workdir / "sysfs"
    empty_sysfs.mkdir(exist_ok=True)
    env.update(
        {
            "SENTIMENT_GRPC_ADDR": "127.0.0.1:0",
            # Two servers run at once: neither may take the default :9090.
            "SENTIMENT_METRICS_ADDR": "127.0.0.1:0",
            # No Ollama here: the lexicon answers, at once and the same on
            # every machine, instead of waiting out retries to a dead port.
            "LLM_LOCAL_ENABLED": "0",
            # A GPU on the developer's machine must not change gpu_status().
            "SENTIMENT_GPU_SYSFS_ROOT": str(empty_sysfs),
        }
    )
    env.update(extra_env)

    stderr_path = workdir / f"{name}.stderr"
    # stderr to a file, not a pipe: a chatty server must never block on a
    # full pipe, and the file is there to quote when something fails.
    with open(stderr_path, "wb") as stderr_file:
        proc = subprocess.Popen(
            [binary],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr_file,
        )
    server = Server(addr="", proc=proc, stderr_path=stderr_path)

    lines: "queue.Queue[bytes]" = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout

    def read_stdout() -> None:
        # First line to the fixture, the rest drained so the server never
        # blocks writing to stdout.
        lines.put(stdout.readline())
        for _ in iter(stdout.readline, b""):
            pass

    threading.Thread(target=read_stdout, name=f"{name}-stdout", daemon=True).start()

    def fail(why: str) -> None:
        _stop(server)
        pytest.fail(
            f"{name}: {why}\n--- {binary} stderr ---\n{server.stderr()}",
            pytrace=False,
        )

    try:
        first = lines.get(timeout=START_TIMEOUT).decode(errors="replace").strip()
    except queue.Empty:
        fail(f"no LISTENING line on stdout within {START_TIMEOUT}s")
        raise AssertionError("unreachable")
    if not first:
        fail(f"server exited (status {proc.wait()}) before printing LISTENING")
    word, _, addr = first.partition(" ")
    if word != "LISTENING" or not addr:
        fail(f"first stdout line is {first!r}, want 'LISTENING host:port'")
    server.addr = addr.strip()
    return server


def _stop(server: Server) -> None:
    proc = server.proc
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


@pytest.fixture(scope="session")
def server(
    sentimentd_bin: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The shared server, without auth."""
    srv = _start_server(
        sentimentd_bin, tmp_path_factory.mktemp("sentimentd"), "sentimentd", {}
    )
    try:
        yield srv
    finally:
        _stop(srv)


@pytest.fixture(scope="session")
def addr(server: Server) -> str:
    """``host:port`` of the shared server."""
    return server.addr


@pytest.fixture(scope="session")
def auth_addr(
    sentimentd_bin: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``host:port`` of a server that wants one of AUTH_TOKENS on every call."""
    srv = _start_server(
        sentimentd_bin,
        tmp_path_factory.mktemp("sentimentd-auth"),
        "sentimentd-auth",
        {"SENTIMENT_AUTH_TOKENS": ",".join(AUTH_TOKENS)},
    )
    try:
        yield srv.addr
    finally:
        _stop(srv)


@pytest.fixture(scope="session")
def hung_model() -> Iterator[str]:
    """Base URL of a model server that accepts every connection and request
    and never answers: the owner's frozen GPU."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)
    conns = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = lsock.accept()
            except OSError:
                return
            conns.append(conn)  # read nothing, answer nothing

    thread = threading.Thread(target=accept, name="hung-model", daemon=True)
    thread.start()
    try:
        yield "http://127.0.0.1:%d" % lsock.getsockname()[1]
    finally:
        stop.set()
        lsock.close()
        for conn in conns:
            conn.close()


@pytest.fixture(scope="session")
def hung_addr(
    sentimentd_bin: str, tmp_path_factory: pytest.TempPathFactory, hung_model: str
) -> Iterator[str]:
    """``host:port`` of a server whose local model hangs, with no cloud tier."""
    srv = _start_server(
        sentimentd_bin,
        tmp_path_factory.mktemp("sentimentd-hung"),
        "sentimentd-hung",
        {
            "LLM_LOCAL_ENABLED": "1",
            "LLM_ENDPOINT_URL": hung_model,
            "SENTIMENT_GPU_WARMUP": "0",
            "SENTIMENT_GPU_READER": "none",
            "GPU_CLEANUP_INTERVAL_SEC": "0",
        },
    )
    try:
        yield srv.addr
    finally:
        _stop(srv)


# --- servers with fake upstreams (the compat tests) ---------------------------

#: The fake Discord's webhooks: id -> token. The service is configured with
#: these URLs; the bot's own URLs carry the same ids and other tokens.
DISCORD_HOOKS = {"1234": "tok-alerts", "5678": "tok-news"}
#: The fake RX 6800 (16 GiB, 5.25 GiB used) the GPU package's tests read.
RX6800_SYSFS = REPO_ROOT / "gpu" / "testdata" / "sysfs" / "rx6800"
RX6800_VRAM_TOTAL = 17163091968
RX6800_VRAM_USED = 5637144576


def wait_local_warm(addr: str, timeout: float = 20.0) -> None:
    """Poll GPUStatus until the local model is warm and admitting work."""
    from catalyst_sentiment import Client

    deadline = time.monotonic() + timeout
    with Client(addr) as c:
        while True:
            st = c.gpu_status()
            if st.model.warm and st.local_admitting:
                return
            if time.monotonic() > deadline:
                pytest.fail(f"the local model never got warm: {st}")
            time.sleep(0.05)


@pytest.fixture(scope="session")
def fake_ollama() -> Iterator[FakeOllama]:
    fake = FakeOllama().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(scope="session")
def fake_discord() -> Iterator[FakeDiscord]:
    fake = FakeDiscord(DISCORD_HOOKS).start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(scope="session")
def compat_addr(
    sentimentd_bin: str,
    tmp_path_factory: pytest.TempPathFactory,
    fake_ollama: FakeOllama,
    fake_discord: FakeDiscord,
) -> Iterator[str]:
    """``host:port`` of a server whose local model is the fake Ollama (warm
    when this returns), reading the fake RX 6800, posting alerts to the fake
    Discord: channel "alerts" (the default, webhook 1234) and "news" (5678)."""
    hooks = ",".join(
        [
            "alerts=" + fake_discord.webhook_url("1234"),
            "news=" + fake_discord.webhook_url("5678"),
        ]
    )
    srv = _start_server(
        sentimentd_bin,
        tmp_path_factory.mktemp("sentimentd-compat"),
        "sentimentd-compat",
        {
            "LLM_LOCAL_ENABLED": "1",
            "LLM_ENDPOINT_URL": fake_ollama.url,
            "SENTIMENT_GPU_READER": "sysfs",
            "SENTIMENT_GPU_SYSFS_ROOT": str(RX6800_SYSFS),
            "SENTIMENT_GPU_POLL_INTERVAL": "0.2",
            "GPU_CLEANUP_INTERVAL_SEC": "0",
            "SENTIMENT_DISCORD_WEBHOOKS": hooks,
            "SENTIMENT_ALERT_CHANNEL": "alerts",
        },
    )
    try:
        wait_local_warm(srv.addr)
        yield srv.addr
    finally:
        _stop(srv)


@pytest.fixture(scope="session")
def gpu_admin_addr(
    sentimentd_bin: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Tuple[str, FakeOllama]]:
    """A server with a GPU manager over a fake Ollama of its own (cleanups
    unload it), with no VRAM reader; and that fake."""
    fake = FakeOllama().start()
    srv = _start_server(
        sentimentd_bin,
        tmp_path_factory.mktemp("sentimentd-gpu-admin"),
        "sentimentd-gpu-admin",
        {
            "LLM_LOCAL_ENABLED": "1",
            "LLM_ENDPOINT_URL": fake.url,
            "SENTIMENT_GPU_READER": "none",
            "GPU_CLEANUP_INTERVAL_SEC": "0",
        },
    )
    try:
        wait_local_warm(srv.addr)
        yield srv.addr, fake
    finally:
        _stop(srv)
        fake.stop()


@pytest.fixture(scope="session")
def cloud_down_addr(
    sentimentd_bin: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A server whose one model tier is Gemini at a port that refuses
    connections: every call degrades, and the Gemini tier counts requests
    and errors."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    srv = _start_server(
        sentimentd_bin,
        tmp_path_factory.mktemp("sentimentd-cloud-down"),
        "sentimentd-cloud-down",
        {
            "GEMINI_API_KEY": "test-key-not-real",
            "SENTIMENT_GEMINI_BASE_URL": f"http://127.0.0.1:{closed_port}",
            "LLM_RETRY_DELAY": "0.05",
            "LLM_MIN_INTERVAL_SEC": "0",
        },
    )
    try:
        yield srv.addr
    finally:
        _stop(srv)


@pytest.fixture
def stoppable_server(
    sentimentd_bin: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server of the test's own, for tests that stop it."""
    srv = _start_server(
        sentimentd_bin,
        tmp_path_factory.mktemp("sentimentd-stoppable"),
        "sentimentd-stoppable",
        {},
    )
    try:
        yield srv
    finally:
        _stop(srv)


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A real redis-server on a free loopback port, for one test. Missing
    redis-server skips the test, or fails it when CI is set (make test
    installs it)."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server not found (CI is set, so the Redis tests must run)")
        pytest.skip("redis-server not installed (apt-get install -y redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as c:
                    c.sendall(b"PING\r\n")
                    if c.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("redis-server did not answer PING")
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait()
