"""``python -m finharness ...`` (and ``accelerate launch -m finharness train ...``)."""
import sys

from finharness.main import main
from plumbing.ranks import exit_launched_rank

code = main() or 0
exit_launched_rank(code)  # under torchrun / accelerate launch: no interpreter teardown (plumbing/ranks.py)
sys.exit(code)
