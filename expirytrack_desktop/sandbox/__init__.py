"""Built-in Upstox simulator: a synthetic market behind a faithful copy of the API.

Used by the tests, the benchmarks and the app's demo mode. In-process through
``SimulatorApp.transport()``, or on a loopback port through :func:`serve`.
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported on first use (PEP 562): the market needs numpy, and `expirytrack status` or the
# window's start-up must not pay for it unless the simulator is really used.
_EXPORTS = {
    "DEFAULT_RATE_LIMIT": "app",
    "DEMO_ACCESS_TOKEN": "app",
    "DEMO_USER_ID": "app",
    "DEMO_USER_NAME": "app",
    "DemoCredentials": "app",
    "SimulatorApp": "app",
    "Stats": "app",
    "demo_client_credentials": "app",
    "error_body": "app",
    "FaultConfig": "faults",
    "UNDERLYINGS": "market",
    "Market": "market",
    "Underlying": "market",
    "serve": "server",
    "SimulatorTransport": "transport",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_RATE_LIMIT",
    "DEMO_ACCESS_TOKEN",
    "DEMO_USER_ID",
    "DEMO_USER_NAME",
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
