"""B9: ingesting a 4K (4096×4096) PNG: store, thumbnail, preview, metadata.

Each side runs in a fresh subprocess so its peak resident memory
(`resource.getrusage`) belongs to that work alone (plus the interpreter and,
for ours, Django). The child times several ingests and prints JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys

from .pipeline import sample_image
from .stats import Figure, Row, ratio_text, verdict


def _child(mode: str, path, team_id: int, runs: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.ingest_child", mode, str(path), str(team_id), str(runs)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def b9_ingest(ctx, runs: int = 4) -> list[Row]:
    path = ctx.data_dir / "flash-4k.png"
    data = sample_image(path, size="4K")
    team_id = ctx.studio.team.pk
    ours = _child("ours", path, team_id, runs)
    pillow = _child("pillow", path, team_id, runs)
    ours_f, base_f = Figure.of(ours["ms"]), Figure.of(pillow["ms"])
    ratio = ours_f.median / base_f.median
    rows = [
        Row(
            "B9",
            f"4K ingest (4096×4096 PNG, {len(data) / 1e6:.1f} MB): re-encode with metadata, "
            "thumbnail, preview, store, row",
            str(ours_f),
            f"{base_f} Pillow decode + thumbnail (+ WebP save)",
            ratio_text(ratio),
            "≤ 1.5×",
            verdict(ratio <= 1.5),
        ),
        Row(
            "B9m",
            "4K ingest peak RSS (VmHWM of a fresh process incl. interpreter and Django)",
            f"{ours['peak_mb']:.0f} MB",
            f"{pillow['peak_mb']:.0f} MB Pillow alone",
            ratio_text(ours["peak_mb"] / pillow["peak_mb"]),
            "≤ 400 MB",
            verdict(ours["peak_mb"] <= 400),
        ),
    ]
    return rows
