"""`python -m app` is `timetabler`."""

import sys

from app.commands.cli import main

sys.exit(main())
