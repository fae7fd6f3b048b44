"""Face-matching benchmark: per-stage latency, p50/p95 per verification of a 1280x720 JPEG,
verifications per second on one core and with two worker processes, the 1:N duplicate search
over the province's templates (1,000,000 synthetic ones), and the error rates, operating point
and single-frame vs burst decisions on ../shared/faces and ../shared/faces-extra. Prints the
tables and writes docs/benchmarks-facematch.md.

    .venv/bin/python bench/facematch_bench.py [--iterations 200] [--seconds 10] [--templates 1000000]
                                              [--no-write]

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

    # the burst figure is the unchallenged check's; a challenged one adds only landmark arithmetic
    return FaceEngine(policy=LivenessPolicy(required={CHANNEL: False, "app": True},
                                            unchallenged=frozenset({"app"})))


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


EVALUATE = ["evaluate", "../shared/faces", "../shared/faces-extra", "--exclude", "odd", "--id-card",
            "--burst", "3", "--target-far", "0.001"]


def evaluate(faces: Path) -> str:
    """The report of `python -m services.facematch evaluate` on both shared photo sets (odd/ is
    obama_2.jpg again, as RGBA: left out so that no pair is one photo twice)."""
    where = {"../shared/faces": os.path.relpath(faces, REPO),
             "../shared/faces-extra": os.path.relpath(faces.parent / "faces-extra", REPO)}
    args = [where.get(a, a) for a in EVALUATE]
    done = subprocess.run([sys.executable, "-m", "services.facematch", *args], cwd=REPO, capture_output=True,
                          text=True, check=True)
    return "\n".join(line for line in done.stdout.splitlines()
                     if not line.startswith(("     0.", "     1.", "threshold      FAR")))


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def one_to_n(count: int, queries: int) -> dict[str, float]:
    """The province's 1:N search: `count` synthetic templates (Gaussian, scaled so that random
    pairs are about 0.9 apart as dlib's impostors are) in a float32 TemplateIndex, `queries`
    searches at the live threshold for a probe near a planted template; and what start-up costs
    per template (opening a sealed row, putting it in the index)."""
    from backbone.config import DEV_SECRET
    from services.facematch.calibration import LIVE
    from services.facematch.index import TemplateIndex
    from services.facematch.templates import open_template, seal_template

    pin(0)
    rng = np.random.default_rng(11)
    before = rss_mb()
    index = TemplateIndex(capacity=count)
    started = time.perf_counter()
    block = 100_000
    for start in range(0, count, block):
        rows = rng.standard_normal((min(block, count - start), 128)) * (0.9 / np.sqrt(256))
        index.put_many((f"S{start + i:07d}", f"SC{(start + i) % 3000:04d}", v) for i, v in enumerate(rows))
    build = time.perf_counter() - started
    resident = rss_mb() - before
    latencies, cpu, found = [], [], 0
    targets = rng.integers(0, count, size=queries)
    for k in range(5):  # warm-up
        index.search(index.vector(f"S{k:07d}"), LIVE.threshold)
    for target in targets:
        probe = index.vector(f"S{target:07d}") + rng.standard_normal(128) * 0.02
        t0, c0 = time.perf_counter(), time.process_time()
        hits = index.search(probe, LIVE.threshold)
        latencies.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        found += bool(hits) and hits[0].student_id == f"S{target:07d}"
    key = bytes.fromhex(DEV_SECRET)
    now = datetime.now(UTC)
    sample = [seal_template(key, Template(f"S{i:07d}", "SC0001", MODEL_VERSION, v, now))
              for i, v in enumerate(rng.standard_normal((20_000, 128)))]
    t0 = time.perf_counter()
    for i, sealed in enumerate(sample):
        open_template(key, sealed, f"S{i:07d}")
    unseal_us = (time.perf_counter() - t0) / len(sample) * 1e6
    return {"count": count, "queries": queries, "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95), "cpu_p50": percentile(cpu, 50), "cpu_p95": percentile(cpu, 95),
            "load": os.getloadavg()[0],
            "max": max(latencies), "found": found, "build_s": build, "put_us": build / count * 1e6,
            "matrix_mb": index.nbytes / 2**20, "rss_mb": resident, "unseal_us": unseal_us,
            "sealed_bytes": float(statistics.fmean(len(x) for x in sample))}


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
    parser.add_argument("--templates", type=int, default=1_000_000, help="province size of the 1:N search")
    parser.add_argument("--queries", type=int, default=200, help="1:N searches measured")
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
    print("1:N search ...", file=sys.stderr)
    search = one_to_n(args.templates, args.queries)
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
    n = int(search["count"])
    province = "\n".join([
        "| measure | value |",
        "|---|---:|",
        f"| templates searched (synthetic, 128-d float32) | {n:,} |",
        f"| **1:N search p50 / p95 / max, ms** ({int(search['queries'])} searches at 0.55) "
        f"| **{search['p50']:.1f} / {search['p95']:.1f}** / {search['max']:.1f} |",
        f"| CPU time of the process per search, p50 / p95, ms | {search['cpu_p50']:.1f}"
        f" / {search['cpu_p95']:.1f} |",
        f"| load average (1 min) after the searches | {search['load']:.2f} |",
        f"| planted duplicate found first | {int(search['found'])} of {int(search['queries'])} |",
        f"| matrix + norms in memory | {search['matrix_mb']:.0f} MB"
        f" ({search['matrix_mb'] * 2**20 / n:.0f} B/template) |",
        f"| process memory grown by the index (RSS, with ids) | {search['rss_mb']:.0f} MB |",
        f"| index build (put), per template | {search['put_us']:.1f} us ({search['build_s']:.1f} s in all) |",
        f"| opening one sealed template (AES-GCM + header), per template | {search['unseal_us']:.1f} us |",
        f"| sealed row size (bytea) | {search['sealed_bytes']:.0f} B |",
    ])
    print(table)
    print()
    print(speed)
    print()
    print(province)
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

## 1:N duplicate search over the province (issue 10)

{province}

Target: p95 <= 100 ms per search at 1,000,000 templates ({"met" if search["p95"] <= 100 else "NOT met"}:
{search["p95"]:.1f} ms wall clock; CPU time p95 {search["cpu_p95"]:.1f} ms), one core, OpenBLAS
single-threaded. A search reads the first halves of the rows (0.25 GB) and a few of the second
halves, so it is bound by memory bandwidth. Other processes on the machine's 2 cores stretch
the wall-clock time: at a load average of 7 to 8, a runnable process gets about a quarter of a
core. The CPU-time row is what one search costs by itself.

How it works and scales (`services/facematch/index.py`, `province.py`): one float32 row of 128
per student, stored as two halves of 64; a search is one matrix-vector product per block of
131,072 rows over the first half (|t|^2 - 2 t.p + |p|^2 against precomputed norms), whose
partial distance is a lower bound of the whole, so the second half is read only for the rows
still within the threshold (for synthetic impostors 0.9 apart, under a tenth), and the few rows
left are re-measured exactly in float64. Time and memory grow linearly with the templates: about
0.5 KB of matrix per template (512 MB for 1,000,000), plus the ids. float16 halves the
matrix but numpy has no float16 BLAS: widening each block costs more than the search itself
(measured about 0.45 s per search at 1,000,000), so float32 is kept. Start-up reads every
sealed row once (`changed_since(None)`): opening costs the time in the table per template
(so about {search["unseal_us"] * n / 1e6:.0f} s for {n:,}), plus reading
{search["sealed_bytes"] * n / 2**20:.0f} MB of bytea from PostgreSQL. After that, every search first
reads only the rows changed since the last one it saw. Templates stay sealed at rest. Each row in
`face_templates` is AES-256-GCM bound to its student id. The index exists only in the memory
of the facematch process and is never written to disk. Every instance builds its own index.

## Error rates, operating point, single frame vs burst

`python -m services.facematch {" ".join(EVALUATE)}`

The two sets are the project's labelled photos: 45 single-face photos of 15 people.
faces-extra is checked against its `pairs.csv`. "ID card" pairs compare a simulated 102x126
ID-card crop of each photo with every other live photo. A "burst" is 3 different photos of one
person, decided together against one reference photo. Such a burst varies more than a real
take does, so it is a harder case. At most 60 bursts are taken per person.

```
{rates.strip()}
```

Reading: 908 impostor pairs with no false accept bound FAR below 0.33 % at 95 % confidence.
The 0.1 % target needs at least 3,000 impostor pairs, which is more than these sets hold.
The reasoning behind the shipped thresholds, which also uses dlib's published LFW figure and
issue 10's 100-photo measurement, is in `services/facematch/calibration.py`. In the burst
table, the fused (mean) embedding keeps the widest gap between genuine and impostor on the
live path: largest genuine 0.39, against 0.46 for the best frame. The engine therefore decides
a burst on the mean of its good frames, and enrols the same way.

## Thresholds shipped (services/facematch/calibration.py)

- Live vs live (spot checks, duplicates, proxies): **0.55**.
- ID-card photo vs live (new capture): **0.55** (was 0.60). Issue 10 measured 0.33 % FAR at
  0.60 on unseen faces.
- Expected FRR:

  | path | single frame | burst (fused) |
  |---|---:|---:|
  | spot check | 1.2 % here, about 7 % on issue 10's harder set | 0 % here |
  | enrolment | 1.8 % here | 0 % here |

  A rejected enrolment stays provisional and can be confirmed with evidence.
"""
    )
    print(f"\nwritten to {DOC.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
