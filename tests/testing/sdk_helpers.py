"""Small pachyderm-sdk helpers shared by the local pachd tests."""

from __future__ import annotations

import grpc
import pytest
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs


def put(client: Client, uri: str, files: dict[str, bytes]) -> pfs.Commit:
    """One commit on branch ``uri`` (``repo@branch``) holding ``files``."""
    with client.pfs.commit(branch=pfs.Branch.from_uri(uri)) as commit:
        for path, data in files.items():
            commit.put_file_from_bytes(path, data)
    return commit


def read(client: Client, uri: str) -> bytes:
    return b"".join(m.value for m in client.pfs.get_file(file=pfs.File.from_uri(uri)))


def rpc_error(fn, *args, **kwargs) -> grpc.RpcError:
    """The RpcError ``fn`` raises (streams are consumed)."""
    with pytest.raises(grpc.RpcError) as info:
        result = fn(*args, **kwargs)
        if hasattr(result, "__next__"):
            list(result)
    return info.value
