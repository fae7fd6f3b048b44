"""The simulator's client (:mod:`simulator.client`) pointed at a test's :class:`tests.support.System`:
the services' real ports, the real issuer (terminals get their tokens by client credentials) and
the issuer's key for people's tokens, credentials kept in the test's own folder."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from simulator.client import AidClient, CredentialStore, Endpoints, Tokens
from tests.support import Proc, System


def sim_client(system: System, procs: Mapping[str, Proc], folder: Path, timeout: float = 30) -> AidClient:
    def url(name: str) -> str:
        proc = procs.get(name)
        return f"http://127.0.0.1:{proc.api_port if proc else 9}"  # port 9: nothing runs that service

    endpoints = Endpoints(enrolment=url("enrolment"), spotcheck=url("spotcheck"),
                          eligibility=url("eligibility"), appeals=url("appeals"), hardship=url("hardship"),
                          issuer=system.issuer_url,
                          token_url=f"{system.issuer_url}/token")
    environ = {"AID_AUTH_ISSUER": system.issuer_url, "AID_AUTH_KEY_FILE": str(system.key_file)}
    tokens = Tokens(endpoints, CredentialStore(folder), environ)
    return AidClient(endpoints, tokens, timeout=timeout)
