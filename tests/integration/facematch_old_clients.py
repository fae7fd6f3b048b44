"""facematch as the semester test and the load benchmark run it: their terminals send real
photos, which cannot answer a server-issued liveness challenge, so the channels named in
``AID_FACE_UNCHALLENGED`` (comma-separated) are "old clients" whose bursts get the unchallenged
liveness check (a head turn or a blink; LivenessPolicy.unchallenged). The engine is built with
that policy here, whether or not the service reads the variable itself.

Run as ``python -m backbone.runservice tests.integration.facematch_old_clients:SERVICE``.
"""

from __future__ import annotations

import os
from typing import Any

from services.facematch import engine as _engine
from services.facematch.calibration import LivenessPolicy
from services.facematch.service import SERVICE

_init = _engine.FaceEngine.__init__


def _with_old_clients(self: Any, policy: LivenessPolicy | None = None, *args: Any, **kwargs: Any) -> None:
    if policy is None:
        channels = os.environ.get("AID_FACE_UNCHALLENGED", "")
        policy = LivenessPolicy(unchallenged=frozenset(c.strip() for c in channels.split(",") if c.strip()))
    _init(self, policy, *args, **kwargs)


_engine.FaceEngine.__init__ = _with_old_clients  # type: ignore[method-assign]

__all__ = ["SERVICE"]
