"""The metadata of a generated file: ndx-ldns provenance, the Subject, and session-level fields.

All of it comes from the attrs of the generated Dataset (docs/CONTRACT.md), so a file says what produced it,
from which recorded session, and about which subject.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Mapping

from pynwb.file import Subject

from nwb_ldns.errors import SessionContentError

REQUIRED_ATTRS = (
    "model_name",
    "model_version",
    "model_config",
    "weights_sha256",
    "seed",
    "sampler",
    "sampler_steps",
    "created",
    "bin_width",
)
SUBJECT_FIELDS = (
    "subject_id",
    "species",
    "sex",
    "age",
    "age__reference",
    "description",
    "genotype",
    "strain",
    "weight",
    "date_of_birth",
)
# Used only when the source session had no Subject: DANDI requires one; NCBITaxon_32630 is "synthetic construct".
FALLBACK_SUBJECT = {
    "subject_id": "ldns-synthetic",
    "species": "http://purl.obolibrary.org/obo/NCBITaxon_32630",
    "sex": "U",
    "age": "P0D",
    "description": (
        "Placeholder subject: the source session had no Subject, so these LDNS-generated data are labelled as a "
        "synthetic construct (NCBITaxon_32630); they were not recorded from any animal."
    ),
}


def check_provenance_attrs(attrs: Mapping[str, Any]) -> None:
    """Raise SessionContentError if provenance attrs are missing or malformed."""
    missing = [name for name in REQUIRED_ATTRS if name not in attrs]
    if missing:
        raise SessionContentError(
            f"generated dataset lacks provenance attrs {missing}; produce it with LDNSModel.sample "
            "(or nwb_ldns.export.testing.make_generated_dataset)"
        )
    for name in ("model_config", "conditioning", "source_subject", "source_sessions"):
        text = attrs.get(name, "")
        if text:
            try:
                json.loads(text)
            except (TypeError, ValueError) as error:
                raise SessionContentError(f"attr {name!r} is not JSON text ({error}); store json.dumps(value)")


def parse_time(text: str | None) -> datetime | None:
    """ISO 8601 text -> tz-aware datetime (naive times are taken as UTC); None for empty text."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(str(text))
    except ValueError as error:
        raise SessionContentError(f"time {text!r} is not ISO 8601 ({error}); use datetime.isoformat()") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def make_subject(attrs: Mapping[str, Any]) -> Subject:
    """The source session's Subject, or a clearly labelled placeholder when it had none."""
    text = attrs.get("source_subject", "")
    fields = json.loads(text) if text else {}
    fields = {key: value for key, value in fields.items() if key in SUBJECT_FIELDS and value not in (None, "")}
    if "subject_id" not in fields:
        fields = dict(FALLBACK_SUBJECT)
    if "date_of_birth" in fields:
        fields["date_of_birth"] = parse_time(fields["date_of_birth"])
    return Subject(**{key: (value if key == "date_of_birth" else str(value)) for key, value in fields.items()})


def source_session_rows(attrs: Mapping[str, Any]) -> list[dict[str, str]]:
    """One row per recorded session the model was trained on: every entry of `source_sessions` (JSON text, a
    model fitted on several sessions), else the single session of the source_* attrs."""
    entries = json.loads(attrs.get("source_sessions") or "[]")
    if not entries:
        entries = [{"identifier": attrs.get("source_identifier", ""), "path": attrs.get("source_path", ""),
                    "units_object_id": attrs.get("source_units_object_id", ""),
                    "sha256": attrs.get("source_sha256", "")}]
    return [{key: str(entry.get(key, "") or "") for key in ("identifier", "units_object_id", "path", "sha256")}
            for entry in entries]


def make_provenance(attrs: Mapping[str, Any]):
    """The ndx-ldns LDNSProvenance group with its SourceSessions table (one row per training session)."""
    from ndx_ldns import LDNSProvenance, SourceSessions

    sessions = SourceSessions(name="source_sessions", description="Recorded sessions the model was trained on.")
    for row in source_session_rows(attrs):
        sessions.add_row(**row, split=str(attrs.get("training_split", "train")))
    conditioning = str(attrs.get("conditioning", "") or "")
    return LDNSProvenance(
        name="ldns_provenance",
        model_name=str(attrs["model_name"]),
        model_version=str(attrs["model_version"]),
        model_config=str(attrs["model_config"]),
        weights_sha256=str(attrs["weights_sha256"]),
        seed=int(attrs["seed"]),
        sampler=str(attrs["sampler"]),
        sampler_steps=int(attrs["sampler_steps"]),
        created=str(attrs["created"]),
        bin_width=float(attrs["bin_width"]),
        conditioning=conditioning or None,
        source_sessions=sessions,
    )


def session_description(attrs: Mapping[str, Any]) -> str:
    """Say plainly that the data are generated, by what, and imitating which session."""
    source = attrs.get("source_session_description", "") or "an unnamed session"
    rows = source_session_rows(attrs)
    if len(rows) > 1:
        return (
            f"GENERATED (synthetic) spiking data, not a recording: sampled from a {attrs['model_name']} latent "
            f"diffusion model (nwb-ldns {attrs['model_version']}, sampler {attrs['sampler']}, "
            f"{attrs['sampler_steps']} steps, seed {attrs['seed']}) trained on the "
            f"'{attrs.get('training_split', 'train')}' trials of {len(rows)} recorded sessions (identifiers "
            f"{', '.join(row['identifier'] or 'unknown' for row in rows)}). See general/ldns_provenance."
        )
    return (
        f"GENERATED (synthetic) spiking data, not a recording: sampled from a {attrs['model_name']} latent diffusion "
        f"model (nwb-ldns {attrs['model_version']}, sampler {attrs['sampler']}, {attrs['sampler_steps']} steps, "
        f"seed {attrs['seed']}) trained on the '{attrs.get('training_split', 'train')}' trials of the recorded session "
        f"'{source}' (identifier {attrs.get('source_identifier', '') or 'unknown'}). See general/ldns_provenance."
    )
