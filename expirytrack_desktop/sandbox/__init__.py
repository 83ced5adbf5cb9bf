"""Built-in Upstox simulator: a synthetic market behind a faithful copy of the API.

Used by the tests, the benchmarks and the app's demo mode. In-process through
``SimulatorApp.transport()``, or on a loopback port through :func:`serve`.
"""

from __future__ import annotations

from expirytrack_desktop.sandbox.app import (
    DEFAULT_RATE_LIMIT,
    DEMO_ACCESS_TOKEN,
    DEMO_USER_ID,
    DemoCredentials,
    SimulatorApp,
    Stats,
    demo_client_credentials,
    error_body,
)
from expirytrack_desktop.sandbox.faults import FaultConfig
from expirytrack_desktop.sandbox.market import UNDERLYINGS, Market, Underlying
from expirytrack_desktop.sandbox.server import serve
from expirytrack_desktop.sandbox.transport import SimulatorTransport

__all__ = [
    "DEFAULT_RATE_LIMIT",
    "DEMO_ACCESS_TOKEN",
    "DEMO_USER_ID",
    "UNDERLYINGS",
    "DemoCredentials",
    "FaultConfig",
    "Market",
    "SimulatorApp",
    "SimulatorTransport",
    "Stats",
    "Underlying",
    "demo_client_credentials",
    "error_body",
    "serve",
]
