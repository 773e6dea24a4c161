"""The Celery app bench workers run: the studio's own, plus what baselines need.

- `bench.baseline`: the bare round trip B1 compares against (decode the same
  PNG, make a thumbnail, insert one row).
- BENCH_FIXED_IMAGE=<path>: the offline provider answers at once with that
  PNG, so the pipeline is measured without any render work (a zero-latency
  provider).
"""

import io
import os
import time
from pathlib import Path

from studio.celery import app

__all__ = ["app"]

_fixed = os.environ.get("BENCH_FIXED_IMAGE")
if _fixed:
    import django

    django.setup()
    from generation.providers.base import RenderResult
    from generation.providers.offline import OfflineProvider

    _IMAGE = Path(_fixed).read_bytes()

    def _render_fixed(self, request):
        return RenderResult(image=_IMAGE, mime_type="image/png", model=request.model, usage={})

    OfflineProvider.render = _render_fixed


@app.task(name="bench.baseline", acks_late=True)
def baseline(image_path: str, marker: str) -> None:
    from django.db import connection, transaction
    from PIL import Image

    image = Image.open(io.BytesIO(Path(image_path).read_bytes()))
    image.thumbnail((384, 384))
    out = io.BytesIO()
    image.save(out, "WEBP", quality=78)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bench_row (marker, finished, thumb_bytes) VALUES (%s, %s, %s)",
            [marker, time.time(), out.tell()],
        )
