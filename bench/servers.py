"""Servers under test as child processes: started on a chosen CPU, waited for, measured, stopped."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

HOST = "127.0.0.1"
# The CPUs this process may use, read before the load client pins itself to one of them.
EVERY_CPU = frozenset(os.sched_getaffinity(0))


def placement() -> tuple[int | None, int | None]:
    """(server CPU, client CPU): apart when there are two, so neither steals the other's."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        return cpus[0], cpus[1]
    return None, None


def pin(cpu: int | None, pid: int = 0) -> None:
    if cpu is not None:
        os.sched_setaffinity(pid, {cpu})


def pin_threads(pid: int, cpu: int) -> None:
    """Every thread of a running process on `cpu`, until a pass finds none left to move."""
    moved: set[int] = set()
    while True:
        threads = {int(task) for task in os.listdir(f"/proc/{pid}/task")} - moved
        if not threads:
            return
        for thread in threads:
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(thread, {cpu})
        moved |= threads


@contextlib.contextmanager
def on_cpu(cpu: int | None) -> Iterator[None]:
    """Run an in-process floor on the CPU the servers had, not the load client's: the
    two CPUs of a VM are not equally busy, and the ratio must not measure that."""
    if cpu is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def raise_file_limit() -> int:
    """A thousand WebSockets are a thousand descriptors on each side."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def bench_python(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


class Server:
    """One server process; `with Server(...) as server:` starts it and always stops it."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        port: int,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        cpu: int | None = None,
        ready_path: str | None = "/healthz",
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = argv
        self.port = port
        self.env = {**os.environ, **(env or {})}
        self.cpu = cpu
        self.ready_path = ready_path
        self.cwd = cwd
        self.log_path = log_dir / f"{name}-{port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.terminated = False

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, timeout: float = 60.0) -> None:
        """Started on any CPU (servers starting side by side share both for their imports),
        then, once ready, every thread of it put on its CPU: the threads it starts later
        inherit that from the thread starting them."""
        self.terminated = False

        def unpin() -> None:
            # In the child before exec: not the load client's CPU alone, which it inherits.
            os.sched_setaffinity(0, EVERY_CPU)

        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=unpin,  # noqa: PLW1509
            start_new_session=True,
        )
        log.close()
        try:
            self._wait_ready(timeout)
            if self.cpu is not None:
                pin_threads(self.proc.pid, self.cpu)
        except BaseException:
            self.stop()
            raise

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log_tail()}")
            if self.ready_path is None:  # not HTTP (a mail relay): listening is ready
                with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 1):
                    return
                time.sleep(0.1)
                continue
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 1) as s:
                s.sendall(
                    f"GET {self.ready_path} HTTP/1.1\r\nHost: {HOST}\r\n"
                    "Connection: close\r\n\r\n".encode()
                )
                s.settimeout(5)
                head = s.recv(64)
                if head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.1 4"):
                    return
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready after {timeout}s:\n{self.log_tail()}")

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def terminate(self) -> None:
        """Ask it to stop, once (uvicorn takes a second SIGTERM as "exit now"), without
        waiting (see `running`)."""
        if self.proc is not None and self.proc.poll() is None and not self.terminated:
            self.terminated = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)

    def kill(self) -> None:
        """Stop it at once, without its shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


@contextlib.contextmanager
def running(*servers: Server) -> Iterator[None]:
    """Started side by side, each stopped however the others' starts went."""
    with contextlib.ExitStack() as stack:
        for server in servers:
            stack.callback(server.stop)
        with ThreadPoolExecutor(len(servers)) as starting:
            started = [starting.submit(server.start) for server in servers]
        for future in started:
            future.result()
        # All asked at once, then each waited for: a shutdown that takes a while (deliveries
        # still waiting on a hung mail relay get a few seconds) is not paid once per server.
        for server in servers:
            stack.callback(server.terminate)
        yield
