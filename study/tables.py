"""A study's tables and claim verdicts, computed from its stored per-sample logs (never from
typed-in numbers). Rows and their bootstrap live in ``study.cells``; the claims in
``study.claims``. Every table shows the trivial answers' scores on the same documents as
'(no model)' rows, marks collapsed cells, and gives macro-F1, MCC and the normalized score
beside the paper's metric.

The main table's layout is the study's ``table.kind``, one :class:`~study.table_parts.TableKind`
each (:data:`TABLE_KINDS`): ``seen_unseen`` (arXiv 2411.02476, ``study/seen_unseen_table.py``)
and ``views`` (arXiv 2403.09162, ``study/views_table.py``). The sections below the table
(deviation, discrimination, argmax and calibrated, contamination) and the claims are the
same for every layout.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tabulate import tabulate

from evidence.stats import percentile_interval
from fin_tasks.common.metrics import BATCH_CALIBRATED, base_metric
from harness.deviation import read
from plumbing.atomic import write_atomic
from plumbing.folders import MANIFEST, is_finished, read_manifest
from plumbing.logs import log
from study.cells import Bootstrap, Row, study_rows
from study.claims import (CLAIMS_FILE, RULE_METRICS, Development, claims_table, decide, load_claims,
                          locked_under_current_rules, preregistration_note, read_lock)
from study.plots import forest_plot, loss_curves
from study.record import RunRecord, documents_digest, evidence_digest, others, record_files, record_section, write_run
from study.seen_unseen_table import SeenUnseen
from study.spec import Study, deviation_file, family_note, model_families
from study.table_parts import TableKind, study_bootstrap
from study.views_table import Views

TABLE_KINDS: dict[str, TableKind] = {"seen_unseen": SeenUnseen(), "views": Views()}


def table_kind(study: Study) -> TableKind:
    return TABLE_KINDS[study.spec.table.kind]



def deviation_section(study: Study) -> str:
    """Each fine-tuned or merged checkpoint's distance from its vanilla model (the study's
    ``deviation:`` spec); empty when the study measures none."""
    spec = study.spec.deviation
    if spec is None:
        return ""
    rows = []
    for point in study.checkpoints:
        found = read(deviation_file(study.root, point)) if point.role != "vanilla" else None
        if found is None:
            continue
        layers = [v for g, v in found.layers.items() if g.startswith("layer")]

        def num(value, fmt):
            return format(value, fmt) if value is not None else ""

        rows.append([point.label, point.fticl, ", ".join(point.trained_on), f"{found.relative_weight_change:.5f}",
                     f"{max(layers):.5f}" if layers else "", num(found.kl, ".4f"), num(found.kl_with_eos, ".4f"),
                     num(found.eos_shift, "+.4f"),
                     f"{found.eos_end_base:.3f} -> {found.eos_end_tuned:.3f}" if found.eos_end_base is not None else "",
                     found.kl_tokens, ", ".join(found.kl_tasks), found.kl_scope])
    if not rows:
        return ""
    where = f"{', '.join(spec.tasks)}" if spec.tasks else "the tasks each checkpoint was trained on (in-domain)"
    return ("\n\n### Deviation from the vanilla model\n\n"
            f"Relative weight change ||W - W_vanilla|| / ||W_vanilla|| (whole model; the most-changed decoder layer), "
            f"and KL(vanilla || model) in nats per token at the positions that predict a reference-answer token of "
            f"{spec.per_task} seeded test documents each of {where}, teacher forced: over the vocabulary without "
            f"the end-of-sequence token (both renormalized; 'answer KL'), and over the whole vocabulary. A model "
            f"tuned to stop after a one-word label moves its mass to EOS wherever a longer answer goes on; that "
            f"shift is shown apart: the mean change of p(EOS) inside the answer, and p(EOS) right after it "
            f"(vanilla -> model). arXiv 2403.09162's 'FTICL deviates less' reads as: FTICL rows lower than the "
            f"plain fine-tune of the same task in answer KL. One number per run and training seed; not a tested "
            f"claim (no claim was declared for it before the runs). Rows whose scope is 'every token of prompt and "
            f"answer' were measured before answer-token deviation existed.\n\n"
            + tabulate(rows, headers=["checkpoint", "FTICL k", "trained on", "weight change", "max layer",
                                      "answer KL", "KL with EOS", "p(EOS) shift in answer", "p(EOS) after answer",
                                      "answer tokens", "documents of", "scope"],
                       tablefmt="github", disable_numparse=True))


def _cell_section(rows: Sequence[Row], cell, title: str, caption: str) -> str:
    """A rows x tasks section: ``cell(row, task)`` gives each cell's text (None: no value); the
    section is left out when no cell has a value."""
    tasks = sorted({t for r in rows for t in r.sources})
    body, shown = [], False
    for row in rows:
        cells = []
        for task in tasks:
            text = cell(row, task) if row.sources.get(task) else None
            shown |= text is not None
            cells.append(text or "")
        body.append([row.model, row.name, row.setting, *cells])
    if not shown:
        return ""
    return (f"\n\n## {title}\n\n{caption}\n\n"
            + tabulate(body, headers=["model", "row", "setting", *tasks], tablefmt="github", disable_numparse=True))


def contamination_section(boot: Bootstrap, rows: Sequence[Row]) -> str:
    """Per cell, two shares of the scored documents: those in the checkpoint's training lineage
    (as its evaluation recorded it; '?' where the lineage is unknown), and those duplicated in
    the dataset's own few-shot pool or other splits (from the task's data: the same for every
    row, vanilla included)."""
    recorded = []

    def cell(row: Row, task: str) -> str:
        folders = [f for folders in row.sources[task].values() for f in folders]
        docs = boot.documents(task) or None
        lineage = [boot.logs.flagged(f, task, "lineage") for f in folders]
        lineage_shares = [len(ids) / docs for ids in lineage if ids is not None and docs]
        duplicates = boot.dataset_duplicates(folders[0], task) if folders else None
        recorded.append(bool(lineage_shares) or duplicates is not None)
        seen = f"{np.mean(lineage_shares):.0%}" if lineage_shares else "?"
        dup = f"{len(duplicates) / docs:.0%}" if duplicates is not None and docs else "?"
        return f"{seen} / {dup}"

    section = _cell_section(rows, cell, "What the checkpoints may have seen", (
        "Two shares of each cell's scored documents: **in the checkpoint's training lineage** (its text, or a word "
        "8-gram of it, was among the texts finharness fine-tuned it on; mean over seeds; '?': lineage unknown, "
        "as for a vanilla model, whose pretraining is not known) / **duplicated in the dataset itself** (in the "
        "task's few-shot pool or its other splits: a property of the data, the same for every row). `finharness "
        "contamination` lists the documents; a claim with `subset: clean` leaves out both kinds."))
    return section if any(recorded) else ""


def discrimination_section(boot: Bootstrap, rows: Sequence[Row]) -> str:
    """Per cell, the macro one-vs-rest AUC of the label log-likelihoods with its 95% interval
    (evidence/discrimination.py): 0.5 ranks documents no better than chance, whatever the score."""
    def cell(row: Row, task: str) -> str | None:
        found = boot.row_auc(row, [task])
        if found is None:
            return None
        finite = found[1][np.isfinite(found[1])]
        low, high = percentile_interval(finite) if len(finite) else (float("nan"), float("nan"))
        return f"{found[0]:.3f}{'*' if task in row.trained_on else ''} [{low:.3f}, {high:.3f}]"

    return _cell_section(rows, cell, "Discrimination", (
        "Macro one-vs-rest AUC of the label log-likelihoods per cell, with its 95% bootstrap interval over "
        "documents (mean over seeds): 0.5 ranks documents no better than chance, so a cell can score above a "
        "trivial answer by matching the label prior while learning nothing. * marks the tasks the row was "
        "trained on; a claim whose treatment does not clear 0.5 on them is 'not testable: the treatment learned "
        "no discrimination'."))


def calibrated_section(boot: Bootstrap, rows: Sequence[Row], metric_of) -> str:
    """Per cell, the normalized score under the argmax rule and under batch calibration
    (evidence/calibration.py), side by side: a gain in the first that the second does not keep
    is a moved decision threshold, not learning."""
    def cell(row: Row, task: str) -> str | None:
        metric = base_metric(metric_of(task))
        if metric not in RULE_METRICS:
            return None
        folders = [f for by_seed in row.sources[task].values() for f in by_seed]
        try:
            plain = np.mean([boot.score(f, task, metric, normalized=True)[0] for f in folders])
            calibrated = np.mean([boot.score(f, task, metric + BATCH_CALIBRATED, normalized=True)[0] for f in folders])
        except ValueError:  # no per-label log-likelihoods (a generated answer)
            return None
        return f"{plain:+.3f} / {calibrated:+.3f}"

    return _cell_section(rows, cell, "Argmax and calibrated", (
        "Per cell, the normalized score (0 = the best trivial answer; unclipped) under the argmax rule the tables "
        "use / under batch calibration (each checkpoint's label posteriors divided by their mean over the task's "
        "documents, then argmax; no gold label used), mean over seeds. A gain the calibrated column does not keep "
        "came from moving the decision threshold. The Discrimination section above gives the threshold-free AUC."))


def claim_verdicts(study: Study, rows: list[Row], boot: Bootstrap):
    """The study folder's claims.yaml decided on its rows (None when the folder has none)."""
    claims = load_claims(study.folder)
    if claims is None:
        return None, []
    kind = table_kind(study)
    metric_of, task_sets = kind.metric_of(study), kind.task_sets(study, Path(study.folder) / CLAIMS_FILE)
    return claims, decide(claims, rows, boot, metric_of, task_sets, str(Path(study.folder) / CLAIMS_FILE),
                          current=locked_under_current_rules(study.root), development=development_rows(study))


def development_rows(study: Study):
    """The study's development rows (eval sets with ``split: development``) with their own
    bootstrap, or None when it has none finished: its gates then fall back to the test documents."""
    if not any(step.split == "development" for step in study.evals):
        return None
    rows = study_rows(study, seen=table_kind(study).development_seen(study), split="development")
    return Development(rows, study_bootstrap(study)) if rows else None


def run_record(study: Study, boot: Bootstrap, verdicts):
    """This run for the record: its lock, the documents its claims read, its evaluations, its verdicts."""
    lock = read_lock(study.root) or {}
    root = Path(study.root)
    manifests = {str(Path(step.folder).relative_to(root)): (Path(step.folder) / MANIFEST).read_bytes()
                 for step in study.evals if is_finished(step.folder, "evaluation")}
    finished = [json.loads(data).get("finished_at") for data in manifests.values()]
    rules = verdicts[0].rules if verdicts else str(lock.get("rules") or "")
    return RunRecord(study=study.spec.name, full=study.full, recorded=lock.get("recorded"), rules=rules,
                     documents=documents_digest(boot.scored_documents()), evidence=evidence_digest(manifests),
                     verdicts={v.id: v.verdict for v in verdicts},
                     readings={v.id: v.reading for v in verdicts if v.reading}, run=lock.get("run"),
                     finished=max((f for f in finished if isinstance(f, str)), default=None))


TABLES_KEY = "tables.key"


def tables_key(study: Study) -> str:
    """What the tables are made from: the table spec, the finished evaluations (their done
    markers' contents) and this module's code. Unchanged key: the tables are current."""
    import hashlib

    digest = hashlib.sha256()
    here = Path(__file__).parent
    for code in ("tables.py", "table_parts.py", "seen_unseen_table.py", "views_table.py", "cells.py",
                 "log_store.py", "claims.py", "record.py"):
        digest.update((here / code).read_bytes())
    claims = Path(study.folder) / "claims.yaml"
    digest.update(claims.read_bytes() if claims.is_file() else b"no claims")
    lock = Path(study.root) / "claims.lock.json"
    digest.update(lock.read_bytes() if lock.is_file() else b"no lock")
    deviations = Path(study.root) / "deviation"
    for measured in sorted(deviations.glob("*.json")) if deviations.is_dir() else ():
        digest.update(measured.name.encode() + measured.read_bytes())

    for name, data in record_files().items():  # a run newly put on the record is listed
        digest.update(name.encode() + b"\0" + data)
    digest.update(json.dumps([study.spec.name, study.spec.paper, study.full,
                              study.spec.table.model_dump(mode="json")], sort_keys=True).encode())
    for step in study.evals:
        manifest = read_manifest(step.folder, "evaluation")
        if manifest is not None:
            digest.update(f"{step.folder}\0".encode() + manifest.model_dump_json().encode())
    return digest.hexdigest()


def tables_current(study: Study) -> bool:
    root = Path(study.root)
    key = root / TABLES_KEY
    return (root / "tables.md").is_file() and key.is_file() and key.read_text().strip() == tables_key(study)


def write_tables(study: Study) -> Path:
    kind = table_kind(study)
    boot = study_bootstrap(study)
    text, records, rows = kind.table(study, boot)
    text += deviation_section(study)
    text += discrimination_section(boot, rows)
    text += calibrated_section(boot, rows, kind.metric_of(study))
    text += contamination_section(boot, rows)
    claims, verdicts = claim_verdicts(study, rows, boot)
    root = Path(study.root)
    if claims is not None:

        this = run_record(study, boot, verdicts)
        text = ("## Claims\n\n" + claims_table(verdicts, claims, preregistration_note(study.folder, study.root))
                + "\n\n### Every run on record\n\n" + record_section(this, others(this))
                + "\n\n## Tables\n\n" + text)
        write_run(root, this)
    from training.run_folder import read_log

    pictures = []
    if verdicts:
        forest_plot(verdicts, root / "claims")
        pictures.append("![each claim's effect with its 95% interval](claims.svg)")
    pictures += kind.pictures(records, root)
    if loss_curves({r.name: read_log(r.run_dir()) for r in study.train_recipes}, root / "loss"):
        pictures.append("![training loss per run](loss.svg)")
    if pictures:
        text = "\n\n".join(pictures) + "\n\n" + text

    note = family_note(model_families(study))
    if note:
        text = f"**{note}**\n\n" + text
    header = f"# {study.spec.name}{' (--full)' if study.full else ''}: {study.spec.paper}\n\n"
    write_atomic(root / "tables.md", header + text + "\n")
    write_atomic(root / "tables.json", json.dumps(records, indent=2, default=list))
    write_atomic(root / "claims.json", json.dumps([v.as_json() for v in verdicts], indent=2, default=list))
    write_atomic(root / TABLES_KEY, tables_key(study) + "\n")  # last: a killed render is redone
    log.info(header + text)
    return root / "tables.md"
