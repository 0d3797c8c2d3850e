"""Secret material stays in Secrets, mounted as files.

The static seal key unseals every node: inline in the config it would sit in a ConfigMap
(readable by anyone who can read the namespace's config, copied into backups and diffs),
so the seal must read it from a file (``file://``). ConfigMaps in general must not carry
anything that looks like a credential: PEM private keys, OpenBao/Vault tokens, or long
high-entropy strings. CA certificates are public and are ignored, and so is ordinary
script or config text. Messages say what was found and where, never the value.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Iterator, Mapping

from ._k8s import K8sObject, WORKLOAD_KINDS, known_items, known_value, openbao_configs, stanzas
from ._rules import Config, resource_rule

SEAL_KEY_FIELDS = ("current_key", "previous_key")
#: File names for scripts and configs: these mention "unseal" without being the key.
_TEXT_EXTENSIONS = (".sh", ".json", ".hcl", ".py", ".yaml", ".yml", ".md", ".txt", ".conf")
_CREDENTIAL_NAME = re.compile(r"unseal|key|token|secret|password|passwd|credential", re.IGNORECASE)

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.DOTALL)
_TOKEN = re.compile(r"(?<![A-Za-z0-9_.-])(?:hv[sbr]|[sbr])\.[A-Za-z0-9_-]{24,}")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{40,}={0,2}")
_HEX_RUN = re.compile(r"(?<![0-9A-Za-z:])[0-9a-fA-F]{64,}(?![0-9A-Za-z])")
#: Bits per character above which a 40+ character run is taken for random key material.
ENTROPY_BITS = 4.3


def _entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(text)
    return -sum(c / len(text) * math.log2(c / len(text)) for c in counts.values())


def _looks_random(run: str) -> bool:
    """Mixed case, digits and high entropy: key material, not a word, path or identifier."""
    core = run.rstrip("=")
    return (any(ch.isupper() for ch in core) and any(ch.islower() for ch in core)
            and any(ch.isdigit() for ch in core) and _entropy(core) >= ENTROPY_BITS)


def credential_findings(text: str) -> list[str]:
    """What in ``text`` looks like a credential (descriptions only, never the values)."""
    findings = []
    for match in _PEM_BLOCK.finditer(text):
        if "PRIVATE KEY" in match.group(1):
            findings.append(f"a PEM {match.group(1)} block")
    public = _PEM_BLOCK.sub(" ", text)  # certificates and public keys are not secret
    if "PRIVATE KEY-----" in public:
        findings.append("a PEM private key header")
    if _TOKEN.search(public):
        findings.append("an OpenBao/Vault token (s./b./r./hvs. prefix)")
    if any(_looks_random(m.group(0)) for m in _BASE64_RUN.finditer(public)):
        findings.append("a long high-entropy base64 string (a key or token?)")
    if _HEX_RUN.search(public):
        findings.append("a 64+ character hex string (a 32-byte key?)")
    return findings


def check_unseal_key(obj: K8sObject, cfg: Config) -> Iterator[str]:
    """The static seal reads its keys from files; no ConfigMap item is an unseal key."""
    for doc in openbao_configs(obj):
        for i, (kind, seal) in enumerate(stanzas(doc.config.get("seal"))):
            if kind != "static":
                continue
            for key in SEAL_KEY_FIELDS:
                value = seal.get(key)
                if key == "previous_key" and value is None:
                    continue
                if not isinstance(value, str) or not value.startswith("file://"):
                    state = "missing" if value is None else "not a file:// reference (value withheld)"
                    yield (f"{obj.ref}: {doc.where} seal[{i}].static.{key} is {state}; the unseal key must never "
                           f"be inline in the config. Fix: mount the key Secret read-only and set "
                           f"{key} = \"file:///openbao/unseal/<key id>\".")
    if obj.kind == "ConfigMap":
        for field in ("data", "binaryData"):
            # Only the item names are judged here: an unknown value (preview) does not matter.
            items = known_value(obj.props, field)
            for key in items if isinstance(items, Mapping) else ():
                if "unseal" in key.lower() and not key.lower().endswith(_TEXT_EXTENSIONS):
                    yield (f"{obj.ref}: {field}[{key}] looks like an unseal key in a ConfigMap. "
                           f"Fix: move it to a Secret mounted read-only as a file.")


def check_configmap_credentials(obj: K8sObject, cfg: Config) -> Iterator[str]:
    """No private keys, tokens or random key material in ConfigMaps."""
    for key, value in known_items(obj, "data"):
        if not isinstance(value, str):
            continue
        for finding in credential_findings(value):
            yield (f"{obj.ref}: data[{key}] contains {finding}. Fix: put it in a Secret and mount it as a "
                   f"file (if it is public, e.g. a certificate, keep it in PEM form).")
    binary = known_value(obj.props, "binaryData")
    for key in binary if isinstance(binary, Mapping) else ():  # names only
        if _CREDENTIAL_NAME.search(key):
            yield (f"{obj.ref}: binaryData[{key}] is opaque bytes named like a credential. "
                   f"Fix: put it in a Secret and mount it as a file.")


POLICIES = [
    resource_rule(
        "unseal-key-protected",
        "The static seal's current_key/previous_key are file:// references (never inline), and no ConfigMap "
        "item is an unseal key.",
        "critical", ("ConfigMap", "Secret", *sorted(WORKLOAD_KINDS)), check_unseal_key),
    resource_rule(
        "configmap-no-credentials",
        "ConfigMaps hold no PEM private keys, OpenBao/Vault tokens (s./b./hvs.), or long high-entropy "
        "base64/hex strings (CA certificates and scripts are fine).",
        "critical", ("ConfigMap",), check_configmap_credentials),
]
