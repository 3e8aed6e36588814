"""A read-only, seekable file object over HTTP(S) byte-range requests.

h5py can open any Python file-like object, so an NWB file on a web server (DANDI's S3 bucket, a lab server) can be
read lazily: only the byte ranges h5py asks for are fetched, in blocks that are cached, instead of downloading the
whole file first. Uses the standard library only, so its behaviour (and its errors) are under our control.
"""

from __future__ import annotations

import http.client
import io
import time
import urllib.error
import urllib.request
from collections import OrderedDict

from nwb_ldns.errors import InputFileError

DEFAULT_BLOCK_SIZE = 1 << 20  # 1 MiB per request
DEFAULT_CACHE_BLOCKS = 64  # at most 64 MiB cached per open file
REQUEST_TIMEOUT = 30.0  # seconds a request may wait for the server (None below: this value, read at each request)
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)  # seconds before each retry of a failed request: 5 tries in all
RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}  # HTTP answers that mean "try again"


def is_url(source: object) -> bool:
    """True for http:// and https:// sources."""
    return isinstance(source, str) and source.lower().startswith(("http://", "https://"))


def _pause(seconds: float) -> None:
    """Wait before a retry (a function of its own, so tests can record the delays instead of waiting)."""
    time.sleep(seconds)


class _Transient(Exception):
    """A failed request worth trying again (server busy, connection dropped); str() says what happened."""


class HTTPRangeFile(io.RawIOBase):
    """Seekable read-only view of a remote file, fetched block by block with `Range: bytes=a-b` requests."""

    def __init__(
        self,
        url: str,
        *,
        block_size: int = DEFAULT_BLOCK_SIZE,
        cache_blocks: int = DEFAULT_CACHE_BLOCKS,
        timeout: float | None = None,
        retry_delays: tuple[float, ...] | None = None,
    ) -> None:
        super().__init__()
        self.url = url
        self.block_size = int(block_size)
        self.cache_blocks = int(cache_blocks)
        self.timeout = timeout
        self.retry_delays = retry_delays  # None: the module's RETRY_DELAYS, read at each request (tests shorten it)
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._reached = False  # whether the server ever answered
        self._pos = 0
        self.requests = 0  # number of range requests made (tests and diagnostics read this)
        self.bytes_fetched = 0
        self.size = self._fetch_size()

    # -- HTTP -------------------------------------------------------------------------------------------------
    def _request(self, start: int, stop: int, expect: int | None) -> tuple[int, object, bytes]:
        """(status, headers, body) of one range request, read whole; _Transient for a failure worth retrying."""
        request = urllib.request.Request(self.url, headers={"Range": f"bytes={start}-{stop - 1}"})
        try:
            timeout = REQUEST_TIMEOUT if self.timeout is None else self.timeout
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http(s) only)
                status, headers, body = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            if error.code in RETRY_STATUS:
                raise _Transient(f"HTTP {error.code} {error.reason}") from None
            raise InputFileError(
                f"cannot read {self.url}: HTTP {error.code} {error.reason}; "
                "check the URL (it must point at an .nwb file)"
            ) from None
        except urllib.error.URLError as error:
            if not self._reached:  # never answered: a wrong host or port, not worth waiting for
                raise InputFileError(
                    f"cannot reach {self.url}: {error.reason}; "
                    "check the URL and the network, or download the file and pass its path"
                ) from None
            raise _Transient(f"cannot connect ({error.reason})") from None
        except (OSError, http.client.HTTPException) as error:  # reset, timeout, closed mid-body (IncompleteRead)
            raise _Transient(f"the connection failed mid-transfer ({type(error).__name__})") from None
        self._reached = True
        if status == 206 and expect is not None and len(body) != expect:
            raise _Transient(f"a short answer ({len(body)} of {expect} bytes)")
        return status, headers, body

    def _fetch(self, start: int, stop: int, expect: int | None = None) -> tuple[int, object, bytes]:
        """`_request` with retries: a server error (5xx, 429) or a broken connection is tried again after a delay.

        Why: one dropped connection in a long read (DANDI's S3, a busy lab server) should not end a `fit`; a server
        that keeps failing still stops with one error naming the URL.
        """
        delays = tuple(RETRY_DELAYS if self.retry_delays is None else self.retry_delays)
        for attempt in range(len(delays) + 1):
            try:
                return self._request(start, stop, expect)
            except _Transient as problem:
                last = problem
            if attempt < len(delays):
                _pause(delays[attempt])
        raise InputFileError(
            f"cannot read {self.url} (bytes {start}-{stop - 1}): {last} on all {len(delays) + 1} tries; the server "
            "or the network keeps failing: try again later, or download the file and pass its local path"
        )

    def _fetch_size(self) -> int:
        status, headers, _ = self._fetch(0, 1)
        self.requests += 1
        if status != 206:
            raise InputFileError(
                f"{self.url} does not answer HTTP range requests (status {status}); "
                "download the file and pass the local path instead"
            )
        content_range = headers.get("Content-Range", "")
        total = content_range.rpartition("/")[2]
        if not total.isdigit():
            raise InputFileError(
                f"{self.url} gave no file size in its Content-Range header ({content_range!r}); "
                "download the file and pass the local path instead"
            )
        return int(total)

    def _block(self, index: int) -> bytes:
        cached = self._blocks.get(index)
        if cached is not None:
            self._blocks.move_to_end(index)
            return cached
        start = index * self.block_size
        stop = min(start + self.block_size, self.size)
        status, _, data = self._fetch(start, stop, expect=stop - start)
        self.requests += 1
        self.bytes_fetched += len(data)
        if status != 206:
            raise InputFileError(
                f"{self.url} answered a range request with status {status} and {len(data)} bytes "
                f"instead of {stop - start}; download the file and pass the local path instead"
            )
        self._blocks[index] = data
        if len(self._blocks) > self.cache_blocks:
            self._blocks.popitem(last=False)
        return data

    # -- io.RawIOBase -----------------------------------------------------------------------------------------
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
        stop = min(start + len(view), self.size)
        if stop <= start:
            return 0
        written = 0
        while start + written < stop:
            position = start + written
            index, offset = divmod(position, self.block_size)
            block = self._block(index)
            chunk = block[offset : offset + (stop - position)]
            view[written : written + len(chunk)] = chunk
            written += len(chunk)
        self._pos = stop
        return written
