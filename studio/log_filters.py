"""Logging filters: a refusal is one line, not a traceback.

Django logs every 4xx answer on `django.request` with the exception that
caused it (`Http404`, `PermissionDenied`), so each refused request printed a
full traceback. Those refusals are the app working as designed; the line
with the status and path is all an operator needs. 5xx keep their traceback.
"""

import logging


class ExpectedRefusalFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if status is not None and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
