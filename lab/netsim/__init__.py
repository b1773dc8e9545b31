"""Simulated network devices for the lab: Huawei VRP5/VRP8, H3C Comware, Cisco IOS and Ruijie RGOS over SSH."""

from lab.netsim.api import Netsim, NetsimError
from lab.netsim.device import DeviceSpec

__all__ = ["DeviceSpec", "Netsim", "NetsimError"]
