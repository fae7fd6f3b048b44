"""Face-matching benchmark: per-stage latency, p50/p95 per verification of a 1280x720 JPEG,
verifications per second on one core and with two worker processes, and the error rates on
../shared/faces. Prints a table and writes docs/benchmarks-facematch.md.

    .venv/bin/python bench/facematch_bench.py [--iterations 200] [--seconds 10] [--no-write]

Each process runs with OMP/OpenBLAS/MKL threads = 1 and is pinned to one CPU, so "per core"
means one core.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import io  # noqa: E402
import multiprocessing as mp  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from services.facematch import matching  # noqa: E402
from services.facematch.calibration import MODEL_VERSION, LivenessPolicy  # noqa: E402
from services.facematch.templates import Template  # noqa: E402

CHANNEL = "bench"
SCHOOL_SIZE = 2000  # templates searched per verification (1:N proxy check)
DOC = REPO / "docs" / "benchmarks-facematch.md"


def faces_dir() -> Path:
    for folder in (REPO, *REPO.parents):
        if (folder / "shared" / "faces" / "obama").is_dir():
            return folder / "shared" / "faces"
    raise SystemExit("shared/faces not found beside the repository")


def frame_720p(source: Path) -> bytes:
    """The photo letterboxed into 1280x720 and saved as a JPEG (quality 90)."""
    with Image.open(source) as image:
        photo = image.convert("RGB")
    scale = min(1280 / photo.width, 720 / photo.height)
    photo = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (1280, 720), (24, 24, 24))
    canvas.paste(photo, ((1280 - photo.width) // 2, (720 - photo.height) // 2))
    buffer = io.BytesIO()
    canvas.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity"):
        # every CPU of the machine, not the current affinity: a parent pinned to CPU 0 for the
        # one-core figures would otherwise pin every spawned worker to CPU 0 too
        available = list(range(os.cpu_count() or 1))
        os.sched_setaffinity(0, {available[cpu % len(available)]})


def make_engine() -> object:
    from services.facematch.engine import FaceEngine

    return FaceEngine(policy=LivenessPolicy(required={CHANNEL: False, "app": True}))


def school_for(probe: np.ndarray, size: int) -> tuple[Template, list[Template]]:
    rng = np.random.default_rng(7)
    now = datetime.now(UTC)
    others = rng.normal(size=(size - 1, 128))
    others = others / np.linalg.norm(others, axis=1, keepdims=True) * 0.9
    templates = [Template(f"s{i}", "school", MODEL_VERSION, v, now) for i, v in enumerate(others)]
    own = Template("me", "school", MODEL_VERSION, probe + rng.normal(scale=0.02, size=128), now)
    return own, [*templates, own]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def single_core(data: bytes, burst: list[bytes], iterations: int) -> dict[str, object]:
    from services.facematch.engine import FaceEngine

    pin(0)
    engine = make_engine()
    assert isinstance(engine, FaceEngine)
    probe = engine.analyse(data).embedding
    own, school = school_for(probe, SCHOOL_SIZE)
    for _ in range(5):
        engine.verify([data], own, school, CHANNEL)
    stages: dict[str, list[float]] = {}
    for _ in range(iterations):
        timings: dict[str, float] = {}
        analysis = engine.analyse(data, timings=timings)
        started = time.perf_counter()
        matching.distances(analysis.embedding, [own.vector])
        matching.proxy_suspect(analysis.embedding, own, school, engine.live.threshold)
        timings["match"] = time.perf_counter() - started
        for stage, seconds in timings.items():
            stages.setdefault(stage, []).append(seconds * 1000)
    totals, cpu = [], []
    for _ in range(iterations):
        started, started_cpu = time.perf_counter(), time.process_time()
        outcome = engine.verify([data], own, school, CHANNEL)
        totals.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        assert outcome.accepted, outcome.reasons
    bursts = []
    for _ in range(max(5, iterations // 10)):
        started = time.perf_counter()
        engine.verify(burst, own, school, "app")
        bursts.append((time.perf_counter() - started) * 1000)
    return {"stages": stages, "totals": totals, "cpu": cpu, "bursts": bursts}


def _worker(data: bytes, cpu: int, seconds: float, barrier: object, results: object) -> None:
    from services.facematch.engine import FaceEngine

    pin(cpu)
    engine = make_engine()
    assert isinstance(engine, FaceEngine)
    own, school = school_for(engine.analyse(data).embedding, SCHOOL_SIZE)
    engine.verify([data], own, school, CHANNEL)
    barrier.wait()  # type: ignore[attr-defined]
    count, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        engine.verify([data], own, school, CHANNEL)
        count += 1
    results.put(count)  # type: ignore[attr-defined]


def throughput(data: bytes, workers: int, seconds: float) -> float:
    context = mp.get_context("spawn")
    barrier = context.Barrier(workers)
    results = context.Queue()
    processes = [
        context.Process(target=_worker, args=(data, cpu, seconds, barrier, results)) for cpu in range(workers)
    ]
    for process in processes:
        process.start()
    counts = [results.get() for _ in processes]
    for process in processes:
        process.join()
    return sum(counts) / seconds


def evaluate(faces: Path) -> str:
    """The error-rate report of `python -m services.facematch evaluate` on the shared photos."""
    command = [
        sys.executable, "-m", "services.facematch", "evaluate", str(faces),
        "--alias", "odd=obama", "--id-card",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    return done.stdout


def machine() -> dict[str, str]:
    model = platform.processor() or "unknown"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    import dlib  # type: ignore[import-not-found, unused-ignore]

    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "dlib": f"{dlib.__version__} (BLAS: {dlib.DLIB_USE_BLAS})",
        "model_version": MODEL_VERSION,
        "load": " ".join(f"{v:.2f}" for v in os.getloadavg()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each throughput run")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write the docs page")
    args = parser.parse_args()

    faces = faces_dir()
    info = machine()  # load average before the run: the machine may be shared
    data = frame_720p(faces / "obama" / "obama_1.jpg")
    burst = [frame_720p(faces / "obama" / name) for name in ("obama_1.jpg", "obama_2.jpg", "obama_4.jpg")]
    print("single core ...", file=sys.stderr)
    measured = single_core(data, burst, args.iterations)
    print("throughput ...", file=sys.stderr)
    one = throughput(data, 1, args.seconds)
    two = throughput(data, 2, args.seconds)
    print("error rates ...", file=sys.stderr)
    rates = evaluate(faces)

    stages: dict[str, list[float]] = measured["stages"]  # type: ignore[assignment]
    totals: list[float] = measured["totals"]  # type: ignore[assignment]
    bursts: list[float] = measured["bursts"]  # type: ignore[assignment]
    cpu: list[float] = measured["cpu"]  # type: ignore[assignment]
    names = {
        "decode": "decode (JPEG 1280x720)",
        "detect": "detect (mediapipe full-range on 640 px)",
        "mesh_quality": "landmarks: face mesh + quality",
        "align": "landmarks: dlib 5-point + chip",
        "embed": "embed (dlib ResNet, 1 jitter)",
        "match": f"match (1:1 + 1:N over {SCHOOL_SIZE})",
    }
    rows = [
        f"| {names[stage]} | {statistics.median(stages[stage]):.1f} | {percentile(stages[stage], 95):.1f} |"
        for stage in names
    ]
    rows.append(f"| **verification, 1 frame (engine.verify)** | **{statistics.median(totals):.1f}** "
                f"| **{percentile(totals, 95):.1f}** |")  # fmt: skip
    rows.append(f"| verification, 1 frame, CPU time of the process | {statistics.median(cpu):.1f} "
                f"| {percentile(cpu, 95):.1f} |")  # fmt: skip
    rows.append(f"| verification, 3-frame burst with liveness | {statistics.median(bursts):.1f} "
                f"| {percentile(bursts, 95):.1f} |")  # fmt: skip
    table = "\n".join(["| stage | p50 ms | p95 ms |", "|---|---:|---:|", *rows])
    speed = "\n".join(
        [
            "| setting | verifications/s |",
            "|---|---:|",
            f"| 1 process, 1 core | {one:.1f} |",
            f"| 2 worker processes, 1 core each | {two:.1f} |",
            f"| CPU-time bound, 1 core (1000 / mean CPU ms) | {1000 / statistics.fmean(cpu):.1f} |",
        ]
    )
    print(table)
    print()
    print(speed)
    if args.no_write:
        return 0
    p95 = percentile(totals, 95)
    DOC.write_text(
        f"""# Face matching benchmark

Written by `bench/facematch_bench.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.

Machine: {info["cpu"]}, {info["cores"]} cores; Python {info["python"]}; dlib {info["dlib"]};
template model `{info["model_version"]}`. Every process runs with OMP/OpenBLAS threads = 1 and
is pinned to one CPU. Load average (1, 5, 15 min) when the run started: {info["load"]}
(other work on this machine at the same time makes p95 and throughput worse).

Input: `obama/obama_1.jpg` letterboxed into a 1280x720 JPEG (quality 90); {args.iterations}
iterations after 5 warm-up runs. The 1:N stage searches {SCHOOL_SIZE} templates.

## Latency

{table}

Targets: p95 <= 60 ms per single-frame verification ({"met" if p95 <= 60 else "NOT met"}:
{p95:.1f} ms); >= 20 verifications/s per core ({"met" if one >= 20 else "NOT met"}: {one:.1f}).

## Throughput ({args.seconds:.0f} s runs)

{speed}

Load average when the runs ended: {" ".join(f"{v:.2f}" for v in os.getloadavg())}. The two
workers scale linearly only if no other process wants the machine's {info["cores"]} cores; the
CPU-time row is the per-core capacity regardless of such contention.

## Error rates on ../shared/faces

`python -m services.facematch evaluate ../shared/faces --alias odd=obama --id-card`
(`odd/rgba_32bit.png` is `obama_2.jpg` as RGBA, hence the alias; "ID card" pairs compare a
simulated 102x126 ID-card crop of each photo with every other live photo.)

```
{rates.strip()}
```

The set is small (21 single-face photos of 6 people; some Obama files are the same photo at
other sizes), so these rates bound nothing tightly: they show the thresholds sit inside the gap
between the largest genuine and the smallest impostor distance.

## Thresholds chosen (services/facematch/calibration.py)

- Live vs live (spot checks, duplicates, proxies): **0.55**. The shared photos separate between
  0.519 (largest genuine) and 0.642 (smallest impostor). 0.55 keeps genuine pairs in with a
  margin and sits below dlib's customary 0.6, towards a low FAR: a proxy check-in is the fraud
  this system exists to catch, and dlib's model (trained mostly on Western faces) is reported
  to give smaller impostor distances on East Asian faces. Re-calibrate on local enrolment data
  with `evaluate` before production.
- ID-card photo vs live (new capture): **0.60**. The ID photo is small (102x126) and old, so
  genuine distances run higher (largest 0.555 on simulated cards); the smallest impostor stays at
  0.657. It is upsampled to 400 px before detection and has its own quality limits (face >= 40 px,
  sharpness >= 15, |yaw| <= 25 degrees).
"""
    )
    print(f"\nwritten to {DOC.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
