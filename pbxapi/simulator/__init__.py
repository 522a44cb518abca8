"""A stand-in VIPTel PBX: the REST API over a living, scriptable call centre.

    from pbxapi.simulator import SimulatorConfig, start_simulator

    with start_simulator(SimulatorConfig(port=0, seed=1, autopilot=False)) as sim:
        sim.centre.add_waiting_caller(100, caller="00421905123456")
        ...  # talk HTTP to sim.url

The scripting API is documented in `pbxapi.simulator.centre`. This package is the server side:
it never imports the client.
"""

from .centre import CallCentre
from .config import SimulatorConfig
from .server import LoggedRequest, SimulatorHandle, start_simulator

__all__ = ["CallCentre", "LoggedRequest", "SimulatorConfig", "SimulatorHandle", "start_simulator"]
