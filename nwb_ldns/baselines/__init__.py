"""Honest baselines written as NWB like LDNS samples: PSTH-Poisson (no shared variability) and LDS-Poisson
(linear-Gaussian latent dynamics), fitted in closed form; and the LDNS paper's neural baselines (LFADS, pi-VAE,
TNDM), trained into a model directory like `fit` (nwb_ldns.baselines.trainer). All are fitted on the training split
and sampled with a seed."""

from nwb_ldns.baselines.lds import LDSPoisson
from nwb_ldns.baselines.psth import PSTHPoisson

__all__ = ["LDSPoisson", "PSTHPoisson", "fit_baseline", "neural_baseline"]

BASELINES = {"psth": PSTHPoisson, "lds": LDSPoisson}


def fit_baseline(name: str, session, **options):
    """Fit the baseline called `name` ("psth" or "lds") on the session's training trials."""
    from nwb_ldns.errors import OptionError

    if name not in BASELINES:
        raise OptionError(f"unknown baseline {name!r}; choose one of {sorted(BASELINES)}")
    return BASELINES[name].fit(session, **options)


NEURAL = ("lfads", "pivae", "tndm")


def neural_baseline(name: str):
    """The class of the neural baseline `name` (imported on demand: it needs torch)."""
    from nwb_ldns.errors import OptionError

    if name == "lfads":
        from nwb_ldns.baselines.lfads import LFADS

        return LFADS
    if name == "pivae":
        from nwb_ldns.baselines.pivae import PiVAE

        return PiVAE
    if name == "tndm":
        from nwb_ldns.baselines.tndm import TNDM

        return TNDM
    raise OptionError(f"unknown neural baseline {name!r}; choose one of {', '.join(NEURAL)}")
