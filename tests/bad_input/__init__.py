"""The catalogue of bad inputs and faults, one module per surface, so the next probe starts
from them. Each case is refused with one line naming the file, field or value, loses nothing
and executes nothing a submitter sent.

    test_task_yaml.py     task YAMLs and their data folders (validate, eval --include_path)
    test_data_rows.py     rows of a task's data: empty, null, non-UTF-8 text
    test_recipes.py       training and study recipes
    test_checkpoints.py   checkpoint folders: pickles, missing tokenizer files
    test_merges.py        merge recipes and the merges they would write
    test_board.py         submissions, verified results, the board's store, export
    test_served_app.py    the served Gradio board, driven in headless Chromium
    test_cli.py           the command line's own arguments and its one-line errors
    test_install.py       what the package declares and writes
    test_faults.py        crashes, a full disk, locks and concurrent runs

Cases tested beside the feature they guard: the merge recipe refusals of tests/test_merges.py
(zero-sum weights, other vocabularies, bad densities), the forged-results cases of
tests/test_leaderboard.py, the adapter and delta mistakes of tests/test_adapters.py.
"""
