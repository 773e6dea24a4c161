"""One side of B9 in a process of its own.

python -m bench.ingest_child ours|pillow PATH TEAM_ID RUNS
"""

import io
import json
import resource
import sys
import time
from pathlib import Path


def pillow(data: bytes) -> None:
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.thumbnail((384, 384))
    image.save(io.BytesIO(), "WEBP", quality=78)


def main(mode: str, path: str, team_id: int, runs: int) -> None:
    data = Path(path).read_bytes()
    if mode == "ours":
        import django

        django.setup()
        from generation.imaging import make_renditions
        from generation.storage import asset_store

        def work(n: int) -> None:
            meta = {
                "prompt": "a lighthouse at dusk",
                "seed": n,
                "tier": "flash",
                "size": "4K",
                "aspect": "1:1",
                "model": "bench",
                "provider": "offline",
                "references": [],
                "parent": None,
                "generation": n,
            }
            asset_store(team_id=team_id, renditions=make_renditions(data, meta))
    else:

        def work(n: int) -> None:
            pillow(data)

    times = []
    for n in range(runs):
        began = time.perf_counter()
        work(n)
        times.append((time.perf_counter() - began) * 1000)
    # ru_maxrss of an exec'd child starts from its parent's peak at fork time
    # (Linux keeps it in the signal struct), so the parent's size would leak
    # in; VmHWM belongs to this process image alone. Both are reported.
    hwm = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / 1024
    rusage_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_mb = hwm or rusage_mb
    print(json.dumps({"ms": times, "peak_mb": peak_mb, "rusage_mb": rusage_mb}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
