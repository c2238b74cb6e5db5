"""`python -m app` is `timetabler`."""

import sys

from app.cli import main

sys.exit(main())
