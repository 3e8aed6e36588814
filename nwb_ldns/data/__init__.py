"""NWB -> xarray: open local/remote/Zarr files, bin Units or read binned counts, cut trials."""

from nwb_ldns.data.schema import make_session_dataset, split_of, validate_session_dataset

__all__ = ["describe_session", "load_session", "load_sessions", "make_session_dataset", "split_of",
           "validate_session_dataset"]


def __getattr__(name: str):
    # load_session/describe_session pull in pynwb; import them lazily so `import nwb_ldns.data` stays cheap.
    if name == "load_session":
        from nwb_ldns.data.session import load_session

        return load_session
    if name == "load_sessions":
        from nwb_ldns.data.multi import load_sessions

        return load_sessions
    if name == "describe_session":
        from nwb_ldns.data.describe import describe_session

        return describe_session
    raise AttributeError(name)
