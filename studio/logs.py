"""Console log formats: plain text, or one JSON object per line (LOG_FORMAT=json).

A JSON line always has time, level, logger and message; a line logged
during a render also has its batch, generation, team, provider, model and
lane (generation.log_context), so a log store can follow one image across
the web server and every worker host.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from generation.log_context import FIELDS, current


class RenderContext(logging.Filter):
    """Copy the render this thread is working on onto the record; fields
    passed with `extra=` win."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in current().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, default=str)
