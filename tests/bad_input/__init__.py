"""The catalogue of bad inputs and faults, one module per surface, so the next probe starts
from them. Each case is refused with one line naming the file, field or value, loses nothing
and executes nothing a submitter sent.

    test_task_yaml.py       task YAMLs and their data folders (validate, eval --include_path); names
                            that do not print as written (X8)
    test_task_code.py       task folders that carry code: a utils.py behind !function (X1), a template
                            reaching os.popen through a Jinja global (X2, in submit, eval and validate),
                            validate reading without running (X3), alias bombs (X6), !function outside
                            fin_tasks.*, an include whose folder plants fin_tasks/common/data.py, the
                            sandbox's own limits (''.__class__, |attr, 'a' * 10**10, lipsum, list.append)
    test_data_rows.py       rows of a task's data: empty, null, non-UTF-8 text, an empty split file (D7)
    test_recipes.py         training and study recipes: non-finite or hopeless fields (T5-T7), runs that
                            cannot train (T2 one step at lr 0, T3 a step larger than an epoch), a loss that
                            stops being finite, a claim naming a task the study never scores (Q1), alias
                            bombs and megabyte values in a recipe
    test_checkpoints.py     checkpoint folders: pickles, missing tokenizer files, truncated or forged
                            safetensors files (E7, E8)
    test_merges.py          merge recipes and the merges they would write
    test_board.py           submissions, verified results, the board's store, export: forged shot counts
                            (BD1, and prompts that hide examples), unreadable values (BD5, BD6, BD8,
                            BD11), names with control or bidi characters (BD12), a board that is a folder
                            (BD17), names that read as mathtext (V5); of this round's own: a FIFO in a
                            results folder, submission fields out of range (limit inf, seed < 0, a
                            201-character name, 10,001-character notes), an alias bomb in a submission
                            file, include_paths that are not task folders (a tree past 20,000 files),
                            task folders that read outside themselves (a link, a data_dir elsewhere)
    test_study_archives.py  study archives (study table --from): LFS pointers, truncated, random, plain
                            tar (S8-S11), a member past the caps (S7), members pack never writes, empty
                            and other studies' archives (S13, S14), another recipe (S15), metrics that
                            contradict their responses (S16), a malformed lock (S18), a member twice
    test_served_app.py      the served Gradio board, driven in headless Chromium
    test_cli.py             the command line's own arguments and its one-line errors: --seed out of
                            range, an empty --tasks, an --output_path that is a file
    test_install.py         what the package declares and writes
    test_faults.py          crashes, a full disk (faked with the exception safetensors really raises, and
                            a real 128 KiB tmpfs where the machine allows: T8, M7), locks and concurrent
                            runs, a damaged request cache (E4)

Cases tested beside the feature they guard: the merge recipe refusals of tests/test_merges.py
(zero-sum and nearly cancelling weights (M3), other vocabularies, bad densities), the
forged-results cases of tests/test_leaderboard.py, the adapter and delta mistakes of
tests/test_adapters.py, the lineage cases of tests/test_contamination.py (a lineage file of
the wrong shape (C1), a record naming a file outside its folder (C3), a lineage swapped after
scoring (C4, C5)).
"""
