"""A read-only, seekable file over a remote NWB file (http(s), s3://, DANDI), read lazily through fsspec.

h5py can open any Python file-like object, so an NWB file on a web server, on S3 or on DANDI is read in place:
fsspec fetches only the byte ranges h5py asks for, in blocks that it caches, instead of the whole file. This module
adds what fsspec leaves to its callers: retries with backoff when a server is busy or a connection drops, the
Authorization header from the environment, DANDI references resolved to their S3 URL, and one-line errors that name
the source and the fix.
"""

from __future__ import annotations

import contextlib
import gc
import io
import time
from typing import Iterator

from nwb_ldns.data.remote_urls import DANDI_TOKEN_ENV, TOKEN_ENV, RemoteSource, is_remote, parse_source, resolve_dandi
from nwb_ldns.errors import InputFileError

__all__ = ["RemoteFile", "is_remote", "open_remote"]

DEFAULT_BLOCK_SIZE = 1 << 20  # bytes per range request (read at each open; tests make it small)
DEFAULT_CACHE_BLOCKS = 64  # at most 64 blocks (64 MiB) cached per open file
REQUEST_TIMEOUT = 30.0  # seconds to connect, and between two reads of an answer, before the try counts as failed
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)  # seconds before each retry of a failed request: 5 tries in all
RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}  # HTTP answers that mean "try again"


def _pause(seconds: float) -> None:
    """Wait before a retry (a function of its own, so tests can record the delays instead of waiting)."""
    time.sleep(seconds)


class _Transient(Exception):
    """A failed request worth trying again (server busy, connection dropped); str() says what happened."""


def open_remote(text: str) -> "RemoteFile":
    """A `RemoteFile` for an http(s)://, s3:// or dandi:// string (DANDI references are looked up first)."""
    source = parse_source(text)
    if source.dandi is not None and (source.kind == "dandi" or _dandi_client_installed()):
        url = resolve_dandi(source.dandi)
        source = RemoteSource(text, "s3" if url.startswith("s3://") else "http",
                              url=url[len("s3://"):] if url.startswith("s3://") else url, dandi=source.dandi)
    return RemoteFile(source)


def _dandi_client_installed() -> bool:
    from nwb_ldns.optional import available

    return available("dandi.dandiapi")


class RemoteFile(io.RawIOBase):
    """Seekable read-only view of a remote file; reads go through an fsspec file with a block cache.

    Every request that fails for a reason worth waiting for (HTTP 408/425/429/5xx, a refused, reset or cut
    connection, a timeout) is tried again after RETRY_DELAYS; anything else, or a server that keeps failing, is one
    InputFileError naming the source.
    """

    def __init__(self, source: RemoteSource, *, block_size: int | None = None,
                 cache_blocks: int | None = None, retry_delays: tuple[float, ...] | None = None) -> None:
        super().__init__()
        self.source = source
        self.url = source.url  # what is read: the http(s) URL, or BUCKET/KEY on S3
        self.block_size = int(block_size or DEFAULT_BLOCK_SIZE)
        self.cache_blocks = int(cache_blocks or DEFAULT_CACHE_BLOCKS)
        self.retry_delays = retry_delays  # None: the module's RETRY_DELAYS, read at each request (tests shorten it)
        self._reached = False  # whether the server ever answered (an unreachable host is not retried)
        self._pos = 0
        self._fs = self._filesystem()
        self._file = self._retrying(self._open, "")
        self._reached = True
        self.size = int(self._file.size)

    # -- where and how ----------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The source as the user gave it, with the URL it resolved to when they differ."""
        text = self.source.text
        shown = self.url if self.source.kind == "http" else f"s3://{self.url}"
        return text if shown == text else f"{text} (read from {shown})"

    def _filesystem(self):
        if self.source.kind == "s3":
            from nwb_ldns.optional import require

            s3fs = require("s3fs", "reading s3:// URLs")
            return s3fs.S3FileSystem(anon=True)
        import aiohttp
        import fsspec

        timeout = aiohttp.ClientTimeout(total=None, sock_connect=REQUEST_TIMEOUT, sock_read=REQUEST_TIMEOUT)
        return fsspec.filesystem("http", headers=dict(self.source.headers), client_kwargs={"timeout": timeout})

    def _open(self):
        handle = self._fs.open(self.url, "rb", block_size=self.block_size, cache_type="blockcache",
                               cache_options={"maxblocks": self.cache_blocks})
        if getattr(handle, "size", None) is None or not handle.seekable():
            handle.close()
            raise InputFileError(
                f"{self.name} gave no file size (no Content-Length), so it cannot be read in ranges; "
                "download the file and pass its local path instead"
            )
        return handle

    # -- retries and errors ------------------------------------------------------------------------------------
    def _retrying(self, action, where: str):
        """`action()`, tried again after each delay while it fails for a transient reason; then one error.

        Why: one dropped connection in a long read (DANDI's S3, a busy lab server) should not end a `fit`; a server
        that keeps failing still stops with one line naming the URL.
        """
        delays = tuple(RETRY_DELAYS if self.retry_delays is None else self.retry_delays)
        last = ""
        for attempt in range(len(delays) + 1):
            try:
                return action()
            except InputFileError:
                raise
            except Exception as error:
                last = self._transient(error)
            if attempt < len(delays):
                _pause(delays[attempt])
        raise InputFileError(
            f"cannot read {self.name}{where}: {last} on all {len(delays) + 1} tries; the server or the network "
            "keeps failing: try again later, or download the file and pass its local path"
        )

    def _transient(self, error: Exception) -> str:
        """What went wrong, when it is worth another try; raise InputFileError when it is not; re-raise bugs."""
        import asyncio

        import aiohttp

        cause = error
        if isinstance(error, FileNotFoundError) and isinstance(error.__cause__, Exception):
            cause = error.__cause__  # fsspec's size probe reports every failure as FileNotFoundError
        if isinstance(cause, aiohttp.ClientResponseError):
            text = f"HTTP {cause.status} {cause.message}".strip()
            if cause.status in RETRY_STATUS:
                return text
            raise InputFileError(f"cannot read {self.name}: {text}; {_fix_for_status(cause.status)}") from None
        if isinstance(cause, FileNotFoundError):
            raise InputFileError(f"cannot read {self.name}: not found; check the URL") from None
        if isinstance(cause, PermissionError):
            raise InputFileError(
                f"cannot read {self.name}: access denied ({cause}); nwb-ldns reads S3 anonymously, so the bucket "
                "must be public: download the file with your credentials and pass its local path"
            ) from None
        if isinstance(cause, aiohttp.ClientConnectorError) and not self._reached:
            raise InputFileError(
                f"cannot reach {self.name}: {cause}; check the URL and the network, or download the file and pass "
                "its path"
            ) from None
        if isinstance(cause, ValueError) and "range requests" in str(cause):
            raise InputFileError(
                f"{self.name} does not answer HTTP range requests; download the file and pass the local path instead"
            ) from None
        if isinstance(cause, _Transient):
            return str(cause)
        if isinstance(cause, (aiohttp.ClientError, asyncio.TimeoutError, OSError)):
            return f"the connection failed mid-transfer ({type(cause).__name__})"
        if self.source.kind == "s3" and type(cause).__module__.split(".")[0] in {"botocore", "aiobotocore", "s3fs"}:
            return f"S3 failed ({type(cause).__name__}: {(str(cause).splitlines() or [''])[0][:120]})"
        raise error

    # -- io.RawIOBase -----------------------------------------------------------------------------------------
    def _read_at(self, start: int, length: int) -> bytes:
        self._file.seek(start)
        data = self._file.read(length)
        if len(data) != length:
            raise _Transient(f"a short answer ({len(data)} of {length} bytes)")
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        elif whence == io.SEEK_END:
            self._pos = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        return self._pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        start = self._pos
        length = min(len(view), self.size - start)
        if length <= 0:
            return 0
        with _no_gc():
            data = self._retrying(lambda: self._read_at(start, length), f" (bytes {start}-{start + length - 1})")
        view[:length] = data
        self._pos = start + length
        return length

    def close(self) -> None:
        if not self.closed and getattr(self, "_file", None) is not None:
            self._file.close()
        super().close()


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """No garbage collection while a read waits on fsspec's event-loop thread.

    Why: h5py calls `readinto` holding its global lock; if the loop thread ran a collection that frees an h5py
    object (left from an earlier file), that free would wait for the lock the reading thread holds while the
    reading thread waits for the loop: a deadlock (seen as a hang after a dropped connection).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _fix_for_status(status: int) -> str:
    if status in {401, 403}:
        return (f"the file needs a login or is not public: set {TOKEN_ENV} (a bearer token for your server) or, "
                f"for DANDI, {DANDI_TOKEN_ENV}")
    if status == 404:
        return "check the URL (it must point at an .nwb file)"
    return "check the URL (it must point at an .nwb file), or download the file and pass its local path"

