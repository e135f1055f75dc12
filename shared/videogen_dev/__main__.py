"""``python -m videogen_dev`` is the ``videogen`` command."""

import sys

from videogen_dev.cli import main

sys.exit(main())
