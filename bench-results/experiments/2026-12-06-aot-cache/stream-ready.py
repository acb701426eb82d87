"""Seconds from `shopstream stream`'s process start to its ready file (a test job: no warm-up), with Spark's
start-up archive off and on, alternating. Needs the local stack (`shopstream up`).

python bench-results/experiments/2026-12-06-aot-cache/stream-ready.py [pairs]
"""

import sys
import time

from core.settings import Settings
from infra.orchestration.harness import sandbox
from infra.orchestration.processes import StreamProcess

pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
for i in range(pairs):
    row = []
    for archive in (False, True):
        settings = Settings().model_copy(update={"spark_class_archive": archive})
        with sandbox(settings, kind="test", trigger_s=0.5, driver_memory="1g", warmup=False) as box:
            stream = StreamProcess(box.settings.model_copy(update={"spark_class_archive": archive}), box.options)
            began = time.monotonic()
            stream.start()
            row.append(time.monotonic() - began)
            stream.stop()
    print(f"pair {i + 1}: without {row[0]:.2f} s, with {row[1]:.2f} s", flush=True)
