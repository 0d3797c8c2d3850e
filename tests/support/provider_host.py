"""Drive the component provider the way the Pulumi engine does, over gRPC on 127.0.0.1.

* ``RecordingEngine``: the engine's ``Engine`` service the provider is started with (it
  only logs to it).
* ``start_provider``: runs the plugin as the Python language host does, ``python <plugin
  dir> <engine address>`` (pulumi/pulumi sdk/python/cmd/pulumi-language-python/main.go
  ``RunPlugin``, at 1b59498), reads the port it prints (pulumi/provider/server.py ``main``) and
  connects a ``ResourceProviderStub``.
* ``GrpcMonitor``: the engine's ``ResourceMonitor`` for a ``Construct``: the same
  ``RecordingMonitor`` + ``RecordingMocks`` the unit tests use (URNs by the engine's rule,
  options as the engine receives them, tls/random answered by the crypto fakes), behind a real
  gRPC servicer.
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from tests.support.process import stop
from tests.support.package import INSTALL_HINT

try:
    import grpc
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc, provider_pb2_grpc, resource_pb2, resource_pb2_grpc
except ImportError as e:  # pragma: no cover - the message is for a broken environment
    raise ImportError(f"{e}: the provider tests need the program's dependencies; run {INSTALL_HINT}") from e

from tests.support.program import RecordingMocks, RecordingMonitor

#: Starting the provider imports pulumi-kubernetes and analyses every component.
START_TIMEOUT = 120


def serve(add: Callable[[Any, grpc.Server], None], servicer: Any) -> tuple[grpc.Server, str]:
    """Serve one servicer on 127.0.0.1 (a free port); the server and its address."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    add(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


class RecordingEngine(engine_pb2_grpc.EngineServicer):
    """The engine service: keeps what the provider logs."""

    def __init__(self) -> None:
        self.logs: list[tuple[int, str]] = []
        self.root = ""

    def Log(self, request: Any, context: Any) -> Any:
        self.logs.append((request.severity, request.message))
        return empty_pb2.Empty()

    def GetRootResource(self, request: Any, context: Any) -> Any:
        return engine_pb2.GetRootResourceResponse(urn=self.root)

    def SetRootResource(self, request: Any, context: Any) -> Any:
        self.root = request.urn
        return engine_pb2.SetRootResourceResponse()


@dataclass
class Provider:
    """A running provider process and a client of it."""

    process: subprocess.Popen
    stub: provider_pb2_grpc.ResourceProviderStub
    channel: grpc.Channel
    stderr: list[str] = field(default_factory=list)

    def stop(self) -> None:
        self.channel.close()
        stop(self.process)


def start_provider(python: str | Path, plugin_dir: Path, engine_address: str, *, cwd: Path,
                   env: Optional[dict[str, Optional[str]]] = None) -> Provider:
    """Start ``python <plugin_dir> <engine>``, wait for the port line, connect to it.

    ``env``: changes to this process's environment (``None`` removes a variable).

    Fails with the provider's stderr (an analysis error of a component shows there) if it
    exits or prints no port in time.
    """
    environ = {**os.environ, **(env or {})}
    process = subprocess.Popen([str(python), str(plugin_dir), engine_address], cwd=cwd,
                               env={k: v for k, v in environ.items() if v is not None}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[Optional[str]] = queue.Queue()
    stderr: list[str] = []

    def pump(stream: Any, sink: Callable[[str], None]) -> None:
        for line in stream:
            sink(line)
        if stream is process.stdout:
            lines.put(None)

    threading.Thread(target=pump, args=(process.stdout, lines.put), daemon=True).start()
    threading.Thread(target=pump, args=(process.stderr, stderr.append), daemon=True).start()

    def fail(why: str) -> AssertionError:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        return AssertionError(f"provider `{python} {plugin_dir} {engine_address}` {why}:\n{''.join(stderr)[-8000:]}")

    try:
        first = lines.get(timeout=START_TIMEOUT)
    except queue.Empty:
        raise fail(f"printed no port within {START_TIMEOUT} s") from None
    if first is None or not first.strip().isdigit():
        raise fail(f"exited or printed {first!r} instead of its port (exit code {process.poll()})")
    channel = grpc.insecure_channel(f"127.0.0.1:{first.strip()}")
    try:
        grpc.channel_ready_future(channel).result(timeout=30)
    except grpc.FutureTimeoutError:
        channel.close()
        raise fail(f"did not accept connections on port {first.strip()}") from None
    return Provider(process, provider_pb2_grpc.ResourceProviderStub(channel), channel, stderr)


class _MonitorOf(RecordingMonitor):
    """RecordingMonitor with the URN's project and stack fixed (no program settings in here),
    and the parent of every registration kept."""

    def __init__(self, mocks: RecordingMocks, project: str, stack: str) -> None:
        super().__init__(mocks)
        self.project, self.stack = project, stack
        self.parents: dict[str, str] = {}
        self.outputs_registered: list[str] = []
        self._lock = threading.Lock()

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        qualified = parent.split("::")[2] if parent else ""
        if qualified and qualified != "pulumi:pulumi:Stack":
            type_ = f"{qualified}${type_}"
        return "urn:pulumi:" + "::".join([self.stack, self.project, type_, name])

    def RegisterResource(self, request: Any) -> Any:
        with self._lock:  # MockMonitor keeps a plain dict of resources
            response = super().RegisterResource(request)
            self.parents[response.urn] = request.parent
        return response


class GrpcMonitor(resource_pb2_grpc.ResourceMonitorServicer):
    """The ResourceMonitor service, answered by a RecordingMonitor.

    MockMonitor's methods take ``request``; a servicer's take ``(request, context)``. Every
    method the SDK calls during a Construct is forwarded; SupportsFeature answers with the real
    response message (MockMonitor returns a stand-in object that gRPC cannot serialize).
    """

    def __init__(self, project: str, stack: str) -> None:
        self.mocks = RecordingMocks()
        self.monitor = _MonitorOf(self.mocks, project, stack)

    def GetDeploymentInfo(self, request: Any, context: Any) -> Any:
        return self.monitor.GetDeploymentInfo(request)

    def SupportsFeature(self, request: Any, context: Any) -> Any:
        return resource_pb2.SupportsFeatureResponse(hasSupport=self.monitor.SupportsFeature(request).hasSupport)

    def RegisterResource(self, request: Any, context: Any) -> Any:
        return self.monitor.RegisterResource(request)

    def RegisterResourceOutputs(self, request: Any, context: Any) -> Any:
        self.monitor.outputs_registered.append(request.urn)
        return self.monitor.RegisterResourceOutputs(request)

    def ReadResource(self, request: Any, context: Any) -> Any:
        return self.monitor.ReadResource(request)

    def Invoke(self, request: Any, context: Any) -> Any:
        return self.monitor.Invoke(request)

    def RegisterPackage(self, request: Any, context: Any) -> Any:
        return self.monitor.RegisterPackage(request)

    def RegisterStackTransform(self, request: Any, context: Any) -> Any:
        return self.monitor.RegisterStackTransform(request)

    def RegisterResourceHook(self, request: Any, context: Any) -> Any:
        return self.monitor.RegisterResourceHook(request)

    def SignalAndWaitForShutdown(self, request: Any, context: Any) -> Any:
        return self.monitor.SignalAndWaitForShutdown(request)
