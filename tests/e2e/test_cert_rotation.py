"""Server certificate rotation without restart (docs/runbook-certificate-rotation.md): the
kubelet swaps a renewed certificate into every pod's Secret volume, OpenBao's own
`tls_auto_reload` (rendered in the listener) picks it up, and clients over verified TLS,
on new and on kept-alive connections, see no error. No SIGHUP, no restart."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.harness import API_PORT, served_certificate
from tests.e2e.rotation import RELOAD_LOG, Rotation

IP_BASE = "127.0.15.11"  # this file's loopback range: files run in parallel


def test_certificate_rotation_without_restart(make_cluster):
    cluster = make_cluster(ip_base=IP_BASE)
    tcp = cluster.rendered.server["listener"][0]["tcp"]
    assert tcp.get("tls_auto_reload") is True, tcp  # the product's reload mechanism

    rotation = Rotation.prepare(cluster)
    node_tls = cluster.nodes[0].path(str(rotation.tls_prod))
    assert (node_tls / "..data").is_symlink() and (node_tls / "tls.crt").is_symlink()
    assert Path(cluster.ca_file).resolve().read_bytes() == (node_tls / "ca.crt").read_bytes()

    cluster.start()
    cluster.wait_unsealed(timeout=120)
    token = cluster.login_userpass()
    rotation.seed(token)
    for node in cluster.nodes:
        assert served_certificate(node.ip, API_PORT, node.host, cluster.ca_file) == rotation.der1, node.name
    pids = {n.name: n.proc.pid for n in cluster.nodes}

    traffic, delays, der2 = rotation.rotate(token)
    assert der2 != rotation.der1

    print("\nseconds from Secret-volume swap to new serial served: "
          + ", ".join(f"{name} {d:.1f}s" for name, d in delays.items()))
    print(f"requests: new connections {traffic.new_conn}, kept-alive {traffic.kept_alive}")

    assert traffic.errors == [], traffic.errors[:20]
    assert all(v == 0 for v in traffic.kept_alive_reconnects.values()), traffic.kept_alive_reconnects
    for node in cluster.nodes:
        # once the new certificate is served, no new connection gets the old one again
        history = [der for _t, der in traffic.served[node.name]]
        switch = history.index(der2)
        assert set(history[:switch]) == {rotation.der1} and set(history[switch:]) == {der2}, node.name
        assert served_certificate(node.ip, API_PORT, node.host, cluster.ca_file) == der2, node.name
        # the listener's own file watch did it: same process, no restart, no SIGHUP reload
        assert node.running() and node.proc.pid == pids[node.name] and node.starts == 1
        log = node.log_text()
        assert RELOAD_LOG in log, node.name
        assert "reload triggered" not in log, node.name
