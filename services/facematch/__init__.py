"""Face matching: decode, detect, quality, liveness, embed and match faces on the CPU.

Domain modules import no nameko, psycopg, kombu or eventlet (tests/unit/test_architecture.py
checks it):

- `engine` (`FaceEngine`, `Outcome`: the one entry to the pipeline) over `decode`, `detection`,
  `mesh`, `geometry`, `quality`, `liveness`, `embedding` and `matching`;
- `calibration` (thresholds and limits), `reasons` (refusal codes, `FaceError`);
- `templates` (templates, their storage port and sealed form) and `crypto` (AES-GCM);
- `results` (an `Outcome` -> the CaptureVerified/CaptureRejected event, the template to keep,
  the province's 1:N duplicates applied, DuplicateFaceHeld);
- `index` (`TemplateIndex`: the exact in-memory 1:N search over a province's templates);
- `gallery` (`SchoolGalleries`: a school's templates for the spot check's proxy search, kept
  opened between captures; only new or changed rows are opened again);
- `evaluation` (FAR/FRR, DET, operating point for a target FAR, bursts, over labelled photos).

Entry points and adapters, the only modules that touch the outside world:

- `service` (the nameko service: AMQP consumer, HTTP, eventlet thread pool);
- `repository` (PostgreSQL adapter of the template port, on the caller's connection);
- `province` (the province's templates in memory, kept up to date from the repository);
- `reenrol` (command: rebuild stale templates; opens psycopg connections);
- `cli` and `__main__` (command: `python -m services.facematch verify|evaluate`).
"""

import os

# dlib links the system OpenBLAS, whose worker threads (one per core by default) busy-wait between
# the many small matrix products of its ResNet: measured on a 2-core machine, a 3-frame burst cost
# ~70% more CPU with them, for no gain in latency, and two facematch processes fought over the two
# cores. One BLAS thread per process; set here, before any module of the package loads dlib
# (OpenBLAS reads it once, when it is loaded). A value in the environment wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
