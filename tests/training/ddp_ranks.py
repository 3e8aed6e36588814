"""The rank function of the data-parallel tests: one process of a `fit` run as torchrun would start it.

It sets torchrun's environment variables and calls the library's `fit`, so the code path is the one
`torchrun -m nwb_ldns fit` takes; a module of its own so that spawned processes can import it.
"""

from __future__ import annotations

import os
from typing import Any


class Stop(Exception):
    """Raised by the epoch callback on every rank: the run stops there, as a killed run would."""


def rank_main(rank: int, world: int, port: int, session_path: str, out_dir: str, overrides: dict[str, Any],
              stop_at: tuple[str, int] | None) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(world),
                       "RANK": str(rank), "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": str(world)})
    from nwb_ldns.data import load_session
    from nwb_ldns.training import distributed
    from nwb_ldns.training.fit import fit

    def stopper(stage: str, epoch: int) -> None:
        if stop_at is not None and (stage, epoch) == tuple(stop_at):
            raise Stop

    try:
        fit(load_session(session_path), out_dir, preset="tiny", overrides=overrides, progress=False,
            on_epoch_end=stopper)
    except Stop:
        pass
    finally:
        distributed.finish()
