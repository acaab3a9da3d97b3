"""`python -m mesh.cli` (how `mesh up` starts the orchestrator with the same interpreter)."""

import sys

from mesh.cli import main

sys.exit(main())
