"""Benchmark: the cost of checking a bearer token at the edge, JWKS cached.

Runs the embedded issuer (``backbone.issuer``) on a local port, points a
:class:`backbone.auth.TokenVerifier` at its JWKS URL (the first token fetches the key set over
HTTP; every later one uses the cache), mints tokens for every role and verifies them one by
one: signature (ES256), ``iss``, ``aud``, ``exp``/``iat`` with leeway, claims to a Principal.

    .venv/bin/python bench/auth_bench.py [--tokens 5000]

Prints p50/p95/p99 and the mean per verification, and the first (uncached) one apart.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from backbone.auth import AuthSettings, TokenVerifier
from backbone.issuer import TerminalCredentials, load_or_create_key, make_server, mint, person_claims

AREAS = [
    ("province", {}), ("operations", {}), ("auditor", {}), ("school", {"school": "4101000001"}),
    ("city", {"city": "驻马店市"}), ("county", {"city": "驻马店市", "county": "驿城区"}),
    ("student", {"student": "G41010120070307001X"}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        key = load_or_create_key(Path(tmp) / "key.pem")
        server = make_server("127.0.0.1", 0, key, "http://bench.issuer", "studentaid",
                             TerminalCredentials("postgresql://unused"))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]
        verifier = TokenVerifier(AuthSettings(issuer="http://bench.issuer", audience="studentaid",
                                              jwks_url=f"http://127.0.0.1:{port}/.well-known/jwks.json"))
        tokens = [mint(key, "http://bench.issuer", "studentaid", person_claims(role, **area))
                  for role, area in (AREAS[i % len(AREAS)] for i in range(args.tokens))]
        started = time.perf_counter()
        verifier.verify(tokens[0])
        first_ms = (time.perf_counter() - started) * 1000
        times = []
        for token in tokens[1:]:
            t0 = time.perf_counter()
            verifier.verify(token)
            times.append((time.perf_counter() - t0) * 1000)
        server.shutdown()
    times.sort()
    q = statistics.quantiles(times, n=100)
    print(f"token verification, JWKS cached: {len(times)} tokens; p50 {q[49]:.3f} ms, p95 {q[94]:.3f} ms,"
          f" p99 {q[98]:.3f} ms, mean {statistics.fmean(times):.3f} ms;"
          f" first (fetches the JWKS) {first_ms:.1f} ms")


if __name__ == "__main__":
    main()
