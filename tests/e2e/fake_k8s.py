"""A tiny fake Kubernetes API for OpenBao's `service_registration "kubernetes"`.

OpenBao's client (serviceregistration/kubernetes/client) only does
GET and PATCH (JSON patch) on /api/v1/namespaces/{ns}/pods/{name}, over HTTPS with
the CA from /var/run/secrets/kubernetes.io/serviceaccount/ca.crt and the bearer token
from .../token (both paths hardcoded in OpenBao). This server keeps pod labels in memory
so tests can assert which pod carries `openbao-active=true`.
"""
from __future__ import annotations

import json
import re
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_POD_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/?]+)$")


class FakeKubeAPI:
    """HTTPS server on (host, port) serving pod label GET/PATCH for known pods."""

    def __init__(self, host: str, port: int, cert_file: str, key_file: str, token: str,
                 namespace: str, pod_names: list[str]):
        self.host, self.port, self.token, self.namespace = host, port, token, namespace
        self.lock = threading.Lock()
        self.pods: dict[str, dict[str, str]] = {name: {} for name in pod_names}
        self.requests: list[tuple[str, str, int]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def _reply(self, code: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method: str):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if self.headers.get("Authorization") != f"Bearer {api.token}":
                    api._record(method, self.path, 401)
                    return self._reply(401, {"kind": "Status", "code": 401})
                m = _POD_PATH.match(self.path)
                if not m or m.group(1) != api.namespace or m.group(2) not in api.pods:
                    api._record(method, self.path, 404)
                    return self._reply(404, {"kind": "Status", "code": 404})
                name = m.group(2)
                with api.lock:
                    labels = api.pods[name]
                    if method == "PATCH":
                        for op in json.loads(raw or b"[]"):
                            path, value = op.get("path", ""), op.get("value")
                            if path == "/metadata/labels" and isinstance(value, dict):
                                labels.clear()
                                labels.update(value)
                            elif path.startswith("/metadata/labels/"):
                                key = path[len("/metadata/labels/"):].replace("~1", "/").replace("~0", "~")
                                if op.get("op") == "remove":
                                    labels.pop(key, None)
                                else:
                                    labels[key] = str(value)
                    body = {"kind": "Pod", "metadata": {"name": name, "namespace": api.namespace,
                                                          "labels": dict(labels)}}
                api._record(method, self.path, 200)
                return self._reply(200, body)

            def do_GET(self):
                self._route("GET")

            def do_PATCH(self):
                self._route("PATCH")

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert_file, key_file)
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _record(self, method: str, path: str, code: int) -> None:
        with self.lock:
            self.requests.append((method, path, code))

    def labels(self, pod: str) -> dict[str, str]:
        with self.lock:
            return dict(self.pods[pod])

    def start(self) -> "FakeKubeAPI":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
