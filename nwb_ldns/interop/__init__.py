"""Hand a session to the analysis tools of the NWB ecosystem: pynapple and spikeinterface.

`to_pynapple(source)` -> (TsGroup of spike times per unit, IntervalSet of trials with their columns as metadata)
and `to_spikeinterface(source)` -> a spikeinterface NumpySorting. `source` is an NWB file (.nwb, .nwb.zarr or an
http(s) URL: the Units table's own spike times are used) or a session Dataset (`load_session`, `LDNSModel.sample`:
spike times placed inside the bins by the project's counts -> spike-times rule). pynapple and spikeinterface are
the `interop` extra (`pip install 'nwb-ldns[interop]'`); only these functions import them.
"""

from nwb_ldns.interop.pynapple_bridge import to_pynapple
from nwb_ldns.interop.spikeinterface_bridge import to_spikeinterface
from nwb_ldns.interop.spike_trains import SpikeTrains, spike_trains

__all__ = ["SpikeTrains", "spike_trains", "to_pynapple", "to_spikeinterface"]
