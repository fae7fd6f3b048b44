"""Per-machine secrets of scripts/run-system: generated once into var/secrets.env (0600), never
committed, never the development key; the image keeps the blob directory private."""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

from backbone.topology import PROCESSES

from .layout import DEPLOY, REPO, run

RUN_SYSTEM = REPO / "scripts" / "run-system"
NAMES = ["AID_SECRET_KEY", "AID_ID_HASH_KEY", "AID_BROKER_ADMIN_PASSWORD",
         *(f"AID_AMQP_PASSWORD_{p.upper()}" for p in PROCESSES)]


def secrets_block() -> str:
    """The secrets part of scripts/run-system, exactly as the script runs it."""
    text = RUN_SYSTEM.read_text()
    start = re.search(r"^# -+ per-machine secrets$", text, re.M)
    end = re.search(r"^# -+ broker accounts", text, re.M)
    assert start and end
    return text[start.start():end.start()]


def run_block(cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    services = " ".join(p for p in PROCESSES if p != "relay")
    script = (f"set -euo pipefail\nSECRETS=var/secrets.env\nSERVICES=({services})\n{secrets_block()}\n"
              "for n in " + " ".join(NAMES) + "; do printf '%s=%s\\n' \"$n\" \"${!n}\"; done\n")
    return subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", **(env or {})})


def test_first_run_generates_private_secrets_and_later_runs_keep_them(tmp_path: Path) -> None:
    (tmp_path / "var" / "blobs").mkdir(parents=True)
    first = run_block(tmp_path)
    assert first.returncode == 0, first.stderr
    path = tmp_path / "var" / "secrets.env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    values = dict(line.split("=", 1) for line in path.read_text().splitlines())
    assert sorted(values) == sorted(NAMES)
    assert re.fullmatch("[0-9a-f]{64}", values["AID_SECRET_KEY"]) and values["AID_SECRET_KEY"] != "0" * 64
    assert len(set(values.values())) == len(values)  # every secret its own
    assert first.stdout == path.read_text()  # what the processes get
    again = run_block(tmp_path)
    assert again.returncode == 0 and again.stdout == first.stdout
    assert dict(line.split("=", 1) for line in path.read_text().splitlines()) == values


def test_the_environment_wins_but_never_with_the_development_key(tmp_path: Path) -> None:
    (tmp_path / "var" / "blobs").mkdir(parents=True)
    given = run_block(tmp_path, {"AID_SECRET_KEY": "ab" * 32})
    assert given.returncode == 0, given.stderr
    assert f"AID_SECRET_KEY={'ab' * 32}" in given.stdout.splitlines()
    refused = run_block(tmp_path, {"AID_SECRET_KEY": "0" * 64})
    assert refused.returncode != 0
    assert "development" in refused.stderr


def test_secrets_and_local_environment_files_are_never_committed() -> None:
    paths = ["var/secrets.env", ".env", "deploy/.env", "var/blobs/ab/x"]
    git = run(["git", "check-ignore", "--no-index", *paths], cwd=REPO)
    assert git.stdout.split() == paths, git.stderr
    tracked = run(["git", "ls-files", "var", ".env", "deploy/.env"], cwd=REPO)
    assert tracked.stdout.strip() == ""


def test_run_system_gives_each_process_only_its_own_broker_account() -> None:
    text = RUN_SYSTEM.read_text()
    assert "set -a" not in text  # secrets.env is read into shell variables, never exported wholesale
    assert re.search(r'launch relay "\$\{account\[@\]\}" --', text)  # the relay: its account, no keys
    assert "rabbitmqctl -q add_user \"$BROKER_ADMIN\" >/dev/null" in text  # password on stdin


def test_the_image_keeps_the_blob_directory_private() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert "chmod 0700 /var/lib/aid/blobs" in text
