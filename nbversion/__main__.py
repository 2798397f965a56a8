"""`python -m nbversion VERB ...` = `nbversion VERB ...`."""
import sys

from .cli import main

sys.exit(main())
