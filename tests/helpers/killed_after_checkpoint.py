"""``python tests/helpers/killed_after_checkpoint.py STEP ARGS...``: ``finharness ARGS``, killed
with SIGKILL right after the main process writes the training checkpoint of STEP (as a crash
would: no exception, no clean-up). Launched under torchrun, the launcher then stops the
other rank."""
import os
import signal
import sys

from training import loop

real_save = loop.save_checkpoint


def save_then_die(work_dir, step, *args):
    path = real_save(work_dir, step, *args)
    if step == int(sys.argv[1]):
        os.kill(os.getpid(), signal.SIGKILL)
    return path


loop.save_checkpoint = save_then_die

if __name__ == "__main__":
    from finharness.main import main

    sys.exit(main(sys.argv[2:]))
