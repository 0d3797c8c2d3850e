"""A file shaped like an OpenBao Raft snapshot, for the tests of what checks one (backup.sh,
remote.sh, tools/rollout.py): a gzipped tar of meta.json, state.bin and the SHA256SUMS over
both, which is what `bao operator raft snapshot save` writes."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile


def fake_snapshot(index: int = 1, *, corrupt: bool = False) -> bytes:
    """A snapshot at raft ``index``; ``corrupt``: state.bin no longer matches SHA256SUMS."""
    files = {"meta.json": json.dumps({"ID": "x", "Index": index, "Term": 2}).encode(), "state.bin": os.urandom(256)}
    sums = "".join(f"{hashlib.sha256(v).hexdigest()}  {k}\n" for k, v in files.items()).encode()
    if corrupt:
        files["state.bin"] = b"tampered"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in {**files, "SHA256SUMS": sums}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
