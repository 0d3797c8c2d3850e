"""A tiny fake Kubernetes API for OpenBao's `service_registration "kubernetes"`.

OpenBao's client (serviceregistration/kubernetes/client) only does
GET and PATCH (JSON patch) on /api/v1/namespaces/{ns}/pods/{name}, over HTTPS with
the CA from /var/run/secrets/kubernetes.io/serviceaccount/ca.crt and the bearer token
from .../token (both paths hardcoded in OpenBao). This server keeps pod labels in memory
so tests can assert which pod carries `openbao-active=true`.

It also answers TokenReview (POST /apis/authentication.k8s.io/v1/tokenreviews) for the
kubernetes auth method: ``issue_token()`` mints a ServiceAccount JWT shaped like a projected
token (ES256, ``kubernetes.io`` claims); a review authenticates only tokens minted here and
not expired, and only when the reviewer's bearer is the server's own ServiceAccount token
(the one bound to system:auth-delegator in production).
"""
from __future__ import annotations

import base64
import json
import re
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_POD_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/?]+)$")
_TOKEN_REVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"
#: what a real API server puts in `aud` of projected tokens and accepts by default
DEFAULT_AUDIENCE = "https://kubernetes.default.svc.cluster.local"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class FakeKubeAPI:
    """HTTPS server on (host, port) serving pod label GET/PATCH for known pods."""

    def __init__(self, host: str, port: int, cert_file: str, key_file: str, token: str,
                 namespace: str, pod_names: list[str]):
        self.host, self.port, self.token, self.namespace = host, port, token, namespace
        self.lock = threading.Lock()
        self.pods: dict[str, dict[str, str]] = {name: {} for name in pod_names}
        self.requests: list[tuple[str, str, int]] = []
        self.issued: dict[str, dict] = {}  # JWT -> claims (issue_token)
        self.sa_uids: dict[tuple[str, str], str] = {}
        self.reviews: list[str] = []  # tokens submitted to TokenReview, in order
        self._signing_key = None
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
                if method == "POST" and self.path.split("?")[0] == _TOKEN_REVIEW_PATH:
                    body = api._token_review(raw)
                    api._record(method, self.path, 201)
                    return self._reply(201, body)
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

            def do_POST(self):
                self._route("POST")

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert_file, key_file)
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # ---- ServiceAccount tokens and TokenReview
    def issue_token(self, service_account: str, namespace: str | None = None,
                    audiences: tuple[str, ...] = (DEFAULT_AUDIENCE,), ttl: int = 600) -> str:
        """A projected-style ServiceAccount JWT (ES256) that TokenReview will accept until it expires."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        namespace = namespace or self.namespace
        with self.lock:
            if self._signing_key is None:
                self._signing_key = ec.generate_private_key(ec.SECP256R1())
            uid = self.sa_uids.setdefault((namespace, service_account), str(uuid.uuid4()))
            key = self._signing_key
        now = int(time.time())
        claims = {
            "aud": list(audiences), "exp": now + ttl, "iat": now, "nbf": now,
            "iss": DEFAULT_AUDIENCE,
            "sub": f"system:serviceaccount:{namespace}:{service_account}",
            "kubernetes.io": {"namespace": namespace,
                              "serviceaccount": {"name": service_account, "uid": uid}},
        }
        header = {"alg": "ES256", "kid": "e2e-fake", "typ": "JWT"}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        r, s_ = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        token = f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s_.to_bytes(32, 'big'))}"
        with self.lock:
            self.issued[token] = claims
        return token

    def _token_review(self, raw: bytes) -> dict:
        """Answer a TokenReview the way the API server does (status.error when not valid)."""
        request = json.loads(raw or b"{}")
        spec = request.get("spec") or {}
        token, wanted = spec.get("token", ""), spec.get("audiences") or [DEFAULT_AUDIENCE]
        with self.lock:
            claims = self.issued.get(token)
            self.reviews.append(token)
        status: dict = {"user": {}}
        if claims is None:
            status["error"] = "[invalid bearer token, token not issued by this API server]"
        elif claims["exp"] < time.time():
            status["error"] = "[invalid bearer token, token has expired]"
        elif not set(wanted) & set(claims["aud"]):
            status["error"] = (f"[invalid bearer token, token audiences {claims['aud']} "
                               f"is invalid for the target audiences {wanted}]")
        else:
            sa = claims["kubernetes.io"]
            status = {"authenticated": True, "audiences": sorted(set(wanted) & set(claims["aud"])), "user": {
                "username": claims["sub"], "uid": sa["serviceaccount"]["uid"],
                "groups": ["system:serviceaccounts", f"system:serviceaccounts:{sa['namespace']}",
                           "system:authenticated"]}}
        return {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}

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
