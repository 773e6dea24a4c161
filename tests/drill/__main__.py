"""`make drill`: the studio on separate network hosts, with faults (see scenario.py)."""

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")

from .scenario import main  # noqa: E402

sys.exit(main())
