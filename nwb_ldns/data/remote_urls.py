"""Which remote source a string names (http(s), s3://, DANDI), and the URL that is read for it.

Kept apart from the reader (remote.py) so that the parsing is plain string work, testable without a network, and
the DANDI lookup (the only step that needs the dandi client) is one small function with its client passed in.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlparse

from nwb_ldns.errors import InputFileError

TOKEN_ENV = "NWB_LDNS_HTTP_TOKEN"  # sent as `Authorization: Bearer TOKEN` with the http(s) URLs a user passes
DANDI_TOKEN_ENV = "DANDI_API_KEY"  # the DANDI API key: embargoed Dandisets (sent to the DANDI API hosts only)

# DANDI instances nwb-ldns resolves: name -> (web app host, API base URL). The same pairs as the dandi client's.
DANDI_INSTANCES: dict[str, tuple[str, str]] = {
    "dandi": ("dandiarchive.org", "https://api.dandiarchive.org/api"),
    "dandi-sandbox": ("sandbox.dandiarchive.org", "https://api.sandbox.dandiarchive.org/api"),
}
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
_DANDISET = re.compile(r"^(\d{6})(?:@([^/]+))?$")
_ASSET_ID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_API_ASSET = re.compile(rf"^/api/(?:dandisets/(\d{{6}})/versions/([^/]+)/)?assets/({_ASSET_ID})(?:/download)?/?$")
_WEB_FILES = re.compile(r"^/dandiset/(\d{6})(?:/([^/]+))?/files/?$")


@dataclass(frozen=True)
class DandiRef:
    """One DANDI asset: by asset id, or by Dandiset + version + path inside the Dandiset."""

    api_url: str
    dandiset_id: str | None = None
    version: str | None = None  # None: the latest published version, else the draft (the dandi client's rule)
    path: str | None = None
    asset_id: str | None = None


@dataclass(frozen=True)
class RemoteSource:
    """What to read for a source string: `kind` is "http", "s3" or "dandi" (`dandi` set, `url` filled later)."""

    text: str  # what the user passed (named in every message)
    kind: str
    url: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    dandi: DandiRef | None = None


def scheme_of(source: object) -> str | None:
    """The lower-case URL scheme of a source string ("http", "s3", "dandi", ...), None for a local path."""
    if not isinstance(source, str):
        return None
    match = _SCHEME.match(source)
    return match.group(1).lower() if match else None


def is_remote(source: object) -> bool:
    """True for the remote sources nwb-ldns reads: http(s)://, s3:// and dandi:// strings."""
    return scheme_of(source) in {"http", "https", "s3", "dandi"}


def parse_source(text: str) -> RemoteSource:
    """The `RemoteSource` for an http(s)://, s3:// or dandi:// string; InputFileError naming the fix if malformed."""
    scheme = scheme_of(text)
    if scheme == "s3":
        bucket, _, key = text[len("s3://"):].partition("/")
        if not bucket or not key:
            raise InputFileError(f"{text} is not an S3 object URL; write it as s3://BUCKET/KEY")
        return RemoteSource(text, "s3", url=f"{bucket}/{key}")
    if scheme == "dandi":
        return RemoteSource(text, "dandi", dandi=_parse_dandi_scheme(text))
    if scheme in {"http", "https"}:
        ref = parse_dandi_url(text)
        if ref is not None and ref.path is not None:  # a web-app page: only the API can say which file it is
            return RemoteSource(text, "dandi", dandi=ref)
        # An API asset URL is plain https (the API redirects to S3); with the dandi client it is resolved to
        # the S3 URL first (see remote.py), which saves a redirect per range request.
        return RemoteSource(text, "http", url=text, headers=auth_headers(text), dandi=ref)
    raise InputFileError(
        f"{text}: {scheme}:// sources are not supported; pass a local path, an http(s):// URL, s3://BUCKET/KEY "
        "or dandi://DANDISET/PATH"
    )


def _parse_dandi_scheme(text: str) -> DandiRef:
    """dandi://[INSTANCE/]DANDISET[@VERSION]/PATH, the form the dandi CLI prints (INSTANCE defaults to DANDI)."""
    parts = text[len("dandi://"):].split("/")
    instance = "dandi"
    if parts and not _DANDISET.match(parts[0]):
        instance = parts.pop(0).lower()
        if instance not in DANDI_INSTANCES:
            raise InputFileError(
                f"{text}: unknown DANDI instance {instance!r}; use one of {', '.join(sorted(DANDI_INSTANCES))} "
                "or leave it out (dandi://DANDISET/PATH reads from dandiarchive.org)"
            )
    match = _DANDISET.match(parts[0]) if parts else None
    path = "/".join(parts[1:]).strip("/")
    if match is None or not path:
        raise InputFileError(
            f"{text} is not a DANDI asset reference; write it as dandi://DANDISET[@VERSION]/PATH, "
            "e.g. dandi://000003/sub-YutaMouse20/sub-YutaMouse20_ses-1_ecephys.nwb"
        )
    return DandiRef(DANDI_INSTANCES[instance][1], match.group(1), match.group(2), path)


def parse_dandi_url(url: str) -> DandiRef | None:
    """The DANDI asset an https URL names, or None when it is not a DANDI URL (then it is read as it is).

    Recognised: API asset URLs (`https://api.dandiarchive.org/api/assets/ID/download/`, also under
    `dandisets/N/versions/V/`) and web-app file links (`https://dandiarchive.org/dandiset/N[/V]/files?location=P`).
    """
    parsed = urlparse(url)
    host = (parsed.hostname or "").lower()
    for web_host, api_url in DANDI_INSTANCES.values():
        if host == urlparse(api_url).hostname:
            match = _API_ASSET.match(parsed.path)
            if match is None:
                return None
            return DandiRef(api_url, match.group(1), match.group(2), None, match.group(3))
        if host in {web_host, f"www.{web_host}"}:
            match = _WEB_FILES.match(parsed.path)
            location = parse_qs(parsed.query).get("location", [""])[0]
            if match is None or not location.strip("/"):
                raise InputFileError(
                    f"{url} is a DANDI web page, not a file; pass the file's link "
                    "(https://dandiarchive.org/dandiset/N/VERSION/files?location=PATH), its API download URL, "
                    "or dandi://N/PATH"
                )
            return DandiRef(api_url, match.group(1), match.group(2), unquote(location).strip("/"))
    return None


def auth_headers(url: str) -> tuple[tuple[str, str], ...]:
    """The Authorization header for an http(s) URL the user passed, from the environment (none when unset).

    DANDI API hosts get `Authorization: token $DANDI_API_KEY`; other hosts `Authorization: Bearer
    $NWB_LDNS_HTTP_TOKEN` (a value with a space in it, e.g. "Basic dXNlcjpwdw==", is sent as it is). Redirects
    to another host (the API's redirect to S3) drop the header.
    """
    host = (urlparse(url).hostname or "").lower()
    if host in {urlparse(api).hostname for _, api in DANDI_INSTANCES.values()}:
        key = os.environ.get(DANDI_TOKEN_ENV, "").strip()
        return (("Authorization", f"token {key}"),) if key else ()
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        return ()
    return (("Authorization", token if " " in token else f"Bearer {token}"),)


def describe(ref: DandiRef) -> str:
    """A short name of a DANDI asset for messages."""
    if ref.asset_id is not None:
        return f"DANDI asset {ref.asset_id}"
    version = f"@{ref.version}" if ref.version else ""
    return f"{ref.path} in Dandiset {ref.dandiset_id}{version}"


def resolve_dandi(ref: DandiRef, client_class=None) -> str:
    """The URL to read for a DANDI asset (its S3 URL; a signed URL for embargoed data), asked of the DANDI API.

    `client_class` is dandi's DandiAPIClient (imported here through the `dandi` extra when not given; tests pass
    a fake). DANDI_API_KEY, when set, authenticates (embargoed Dandisets need it).
    """
    if client_class is None:
        from nwb_ldns.optional import require

        client_class = require("dandi.dandiapi", "reading DANDI assets (dandi:// or DANDI URLs)").DandiAPIClient
    key = os.environ.get(DANDI_TOKEN_ENV, "").strip() or None
    what = describe(ref)
    try:
        client = client_class(api_url=ref.api_url, token=key)
        if ref.asset_id is not None:
            asset = client.get_asset(ref.asset_id)
        else:
            asset = client.get_dandiset(ref.dandiset_id, ref.version).get_asset_by_path(ref.path)
        if "zarr" in str(getattr(asset, "asset_type", "")).lower() or str(asset.path).endswith(".zarr"):
            raise InputFileError(
                f"{what} is a Zarr asset ({asset.path}), which nwb-ldns reads only from a local copy; "
                f"download it with `dandi download` and pass the .nwb.zarr directory"
            )
        try:  # public data: the S3 URL among the asset's contentUrl entries (no redirect per request)
            return asset.get_content_url(regex=r"^https?://[^/]*s3[^/]*\.amazonaws\.com/")
        except Exception as error:  # dandi's NotFoundError: no S3 URL listed (embargoed): follow the API's redirect
            if type(error).__name__ != "NotFoundError":
                raise
            return asset.get_content_url(follow_redirects=1)
    except Exception as error:
        if not _is_lookup_failure(error):
            raise  # ours (InputFileError) or a bug: keep it
        raise InputFileError(_dandi_failure(what, ref, error)) from None


def _is_lookup_failure(error: Exception) -> bool:
    """A failure of the DANDI lookup itself (not found, HTTP error, network), as opposed to a bug."""
    package = type(error).__module__.split(".")[0]
    return package in {"dandi", "requests", "urllib3", "pydantic", "pydantic_core"} or isinstance(error, OSError)


def _dandi_failure(what: str, ref: DandiRef, error: Exception) -> str:
    """One line for a failed DANDI lookup, with the fix that fits the failure."""
    status = getattr(getattr(error, "response", None), "status_code", None)
    first = (str(error).splitlines() or [""])[0][:200]
    detail = f"{type(error).__name__}: {first}" if first else type(error).__name__
    if type(error).__name__ == "NotFoundError" or status == 404:
        fix = "check the Dandiset number, version and path (`dandi ls` lists them)"
    elif status in {401, 403}:
        fix = f"the Dandiset may be embargoed: set {DANDI_TOKEN_ENV} to your DANDI API key"
    else:
        fix = "check the network and try again, or download the file (`dandi download`) and pass its local path"
    return f"cannot look up {what} on {ref.api_url} ({detail}); {fix}"
