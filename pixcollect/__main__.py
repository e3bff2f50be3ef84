"""Run the collector as ``python -m pixcollect``."""

from pixcollect.cli import main

raise SystemExit(main())
