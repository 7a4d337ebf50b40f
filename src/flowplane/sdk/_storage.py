"""Where result records live: a local folder (plain file I/O) or any fsspec URL such as ``s3://bucket/prefix``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

_LOCAL_SCHEMES = ("file://", "local://")


class ResultStorage:
    """A flat namespace of keys holding bytes, under one base path or URL.

    Args:
        base: a local folder (``~`` expanded) or an fsspec URL.
        storage_options: keyword arguments for the fsspec filesystem (e.g. ``endpoint_url``).
    """

    def __init__(self, base: str | os.PathLike[str], storage_options: dict[str, Any] | None = None):
        text = os.fspath(base)
        for scheme in _LOCAL_SCHEMES:
            if text.startswith(scheme):
                text = text[len(scheme) :]
        self.remote = "://" in text
        self.storage_options = dict(storage_options or {})
        if self.remote:
            self.url = text.rstrip("/")
            self._fs: Any = None
            self._root = ""
        else:
            self.path = Path(text).expanduser().resolve()
            self.url = str(self.path)

    def __repr__(self) -> str:
        return f"ResultStorage({self.url!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ResultStorage) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    # --- remote plumbing ---

    def _remote(self) -> tuple[Any, str]:
        if self._fs is None:
            import fsspec

            self._fs, self._root = fsspec.core.url_to_fs(self.url, **self.storage_options)
        return self._fs, self._root

    def _remote_path(self, key: str) -> tuple[Any, str]:
        fs, root = self._remote()
        return fs, f"{root.rstrip('/')}/{key}"

    @staticmethod
    def _check_key(key: str) -> None:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"Invalid result storage key {key!r}.")

    # --- operations ---

    def write(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (replacing it; readers never see half a write locally)."""
        self._check_key(key)
        if self.remote:
            fs, path = self._remote_path(key)
            fs.pipe_file(path, data)
            fs.invalidate_cache()
            return
        target = self.path / key
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def read(self, key: str) -> bytes:
        """The bytes under ``key``.

        Raises:
            FileNotFoundError: nothing is stored under ``key``.
        """
        self._check_key(key)
        if self.remote:
            fs, path = self._remote_path(key)
            fs.invalidate_cache()
            try:
                return bytes(fs.cat_file(path))
            except FileNotFoundError:
                raise
            except OSError as exc:  # some backends report a missing object differently
                raise FileNotFoundError(key) from exc
        return (self.path / key).read_bytes()

    def exists(self, key: str) -> bool:
        self._check_key(key)
        if self.remote:
            fs, path = self._remote_path(key)
            fs.invalidate_cache()
            return bool(fs.exists(path))
        return (self.path / key).is_file()

    def delete(self, key: str) -> bool:
        """Remove ``key``; False when it was not there."""
        self._check_key(key)
        if self.remote:
            fs, path = self._remote_path(key)
            fs.invalidate_cache()
            if not fs.exists(path):
                return False
            fs.rm_file(path)
            fs.invalidate_cache()
            return True
        try:
            (self.path / key).unlink()
        except FileNotFoundError:
            return False
        return True

    def keys(self) -> list[str]:
        """Every key stored (sorted), skipping hidden files such as lock or temporary files."""
        if self.remote:
            fs, root = self._remote()
            fs.invalidate_cache()
            base = root.rstrip("/")
            if not fs.exists(base):
                return []
            found = fs.find(base)
            keys = [p[len(base) + 1 :] for p in found if p.startswith(base + "/")]
        else:
            if not self.path.is_dir():
                return []
            keys = [
                str(p.relative_to(self.path)).replace(os.sep, "/")
                for p in self.path.rglob("*")
                if p.is_file()
            ]
        return sorted(k for k in keys if not any(part.startswith(".") for part in k.split("/")))
