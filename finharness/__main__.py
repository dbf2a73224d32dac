"""``python -m finharness ...`` (and ``accelerate launch -m finharness train ...``)."""
import sys

from finharness.main import main

sys.exit(main())
