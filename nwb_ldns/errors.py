"""Errors that reach the user as one line.

Every problem with the user's input or options is raised as an `NWBLDNSError` whose message names the problem
and the fix; the CLI prints it without a traceback and exits non-zero. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations


class NWBLDNSError(Exception):
    """Base class: a problem the user can fix (bad input file, bad option, missing table)."""


class InputFileError(NWBLDNSError):
    """The input file is missing, unreadable, not NWB, or of an unsupported NWB version."""


class SessionContentError(NWBLDNSError):
    """The NWB file opens but lacks or has invalid content (no Units, NaN spike times, stop < start...)."""


class OptionError(NWBLDNSError):
    """A command-line option or config value is invalid (unknown preset, bad --set key...)."""


class TrainingDivergedError(NWBLDNSError):
    """A training loss became NaN or infinite (usually a learning rate too high); no model is written."""


class OutputExistsError(NWBLDNSError):
    """The output exists and --overwrite was not given."""


class OutputWriteError(NWBLDNSError):
    """An output cannot be written: read-only file system, disk full, quota exceeded or no permission.

    The partial output is removed before this is raised; nothing is left under the final name.
    """


class MissingExtraError(NWBLDNSError):
    """A command needs a package of an optional extra that is not installed (`pip install 'nwb-ldns[EXTRA]'`)."""


class GeneratedRangeWarning(UserWarning):
    """Generated latents or spike counts lie outside what the model saw in training (an under-trained or
    diverging denoiser); the samples are kept, but their statistics should be checked before use."""
