"""The openbao-platform policy pack: one module per concern, collected here.

``__main__.py`` loads this directory as the package ``openbao_policies`` (so ``secrets.py``
cannot shadow the standard library) and serves ``POLICIES`` over the Analyzer protocol.
"""

from __future__ import annotations

from pulumi_policy import Policy

from . import ha, ingress, network, openbao_acl, pods, rbac, secrets, server, tls

PACK_NAME = "openbao-platform"
POLICIES: list[Policy] = [
    *tls.POLICIES,
    *ingress.POLICIES,
    *rbac.POLICIES,
    *network.POLICIES,
    *pods.POLICIES,
    *ha.POLICIES,
    *secrets.POLICIES,
    *openbao_acl.POLICIES,
    *server.POLICIES,
]

_names = [p.name for p in POLICIES]
if len(_names) != len(set(_names)):
    raise RuntimeError(f"duplicate policy names: {sorted({n for n in _names if _names.count(n) > 1})}")
