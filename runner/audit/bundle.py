"""`signoff export RUN_DIR --to FILE.zip`: one run as an auditor receives it, checkable without Signoff.

The zip holds the run folder as archived (with its decisions and their signatures), the model's ledger up to
the run's last decision, the allowed-signers file in force, the model card, the evidence map, a one-page
``AUDIT.md``, and ``verify_bundle.py`` (:mod:`runner.audit.bundle_check`, standard library only), which
recomputes every hash and checks every signature with ``ssh-keygen`` and says what it could not check.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from runner import records
from runner.audit import bundle_check, journal, signatures, verify
from runner.audit.archive import LEDGER
from runner.errors import SignoffError

CHECKER = "verify_bundle.py"


def export(run_dir: Path, to: Path) -> list[str]:
    """Write the bundle of ``run_dir`` to ``to`` (a new .zip); returns the names it holds."""
    run = records.ArchivedRun(run_dir)
    if not run.sealed:
        raise SignoffError(f"{run_dir}: not an archived run folder (no manifest.json)")
    altered = verify.check_run(run_dir)
    if altered:
        raise SignoffError(f"{run_dir}: the run does not verify, so it is not exported:\n  " + "\n  ".join(altered))
    if to.suffix != ".zip" or to.exists():
        raise SignoffError(f"--to {to}: expected a new .zip file (an existing file is never overwritten)")
    allowed = signatures.allowed_signers(run.params.get("registry") or {})
    ledger = _ledger_up_to(run_dir.parent / LEDGER, run_dir.name)
    contents = {f"run/{run_dir.name}/{p.relative_to(run_dir).as_posix()}": p.read_bytes()
                for p in sorted(run_dir.rglob("*")) if p.is_file()}
    contents |= {
        LEDGER: ledger.encode("utf-8"),
        CHECKER: Path(bundle_check.__file__).read_bytes(),
        "EVIDENCE_MAP.md": _evidence_map(run).encode("utf-8"),
        "AUDIT.md": _audit_page(run, allowed is not None).encode("utf-8"),
        **({"allowed_signers": allowed.read_bytes()} if allowed else {}),
    }
    to.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(to, "x", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in contents.items():
            bundle.writestr(name, data)
    return list(contents)


def _ledger_up_to(ledger: Path, run_id: str) -> str:
    """The model's ledger from its first line to the last one about ``run_id`` (its chain stays whole)."""
    lines = [line for line in ledger.read_text(encoding="utf-8").splitlines() if line] if ledger.exists() else []
    entries = journal.read(ledger)
    last = max((n for n, e in enumerate(entries) if e.get("run_id") == run_id), default=-1)
    return "".join(f"{line}\n" for line in lines[: last + 1])


def _evidence_map(run: records.ArchivedRun) -> str:
    from runner.analysis import report  # scrapbook and pandas: not for every command that imports this module

    rows = report.evidence_map_rows(run.folder, run.evidence)
    table = ["| framework | item | files | evidence |", "|---|---|---|---|"]
    table += [f"| {r['framework']} | {r['item']} | {r['files']} | {r['evidence']} |" for r in rows]
    return f"# Evidence map of run {run.folder.name}\n\n" + ("\n".join(table) if rows else
                                                         "The run was archived without an evidence map.") + "\n"


def _audit_page(run: records.ArchivedRun, signed: bool) -> str:
    verdict, folder = run.verdict, f"run/{run.folder.name}"
    files = [
        (f"{folder}/", "the run folder exactly as archived: notebooks as executed, evidence, verdict, report, card"),
        (f"{folder}/manifest.json", "sha256 and size of every file of the run, the previous run's hash, its own"),
        (f"{folder}/decisions.jsonl", "every decision on the run, each line chained to the one before and, where "
                                      "signed, carrying the signed statement and its SSH signature"),
        (f"{folder}/html/report.html", "the gating report: verdict, gates with their intervals, checklist, evidence"),
        (f"{folder}/model_card.md", "the model card (decisions/ holds the cards written with later decisions)"),
        (LEDGER, "the model's ledger of decisions, chained, up to this run's last decision"),
        ("allowed_signers", "the OpenSSH allowed-signers file in force when exported: who each key belongs to"
         if signed else "(absent: no allowed-signers file was configured)"),
        ("EVIDENCE_MAP.md", "which files and evidence answer EU AI Act Annex IV 2(g) and Art. 12, ISO/IEC 42001 "
                            "A.6 and SR 26-2 items"),
        (CHECKER, "the checker: Python's standard library and ssh-keygen, no Signoff"),
    ]
    table = "\n".join(f"| `{path}` | {what} |" for path, what in files)
    return f"""# Audit bundle: run {run.folder.name} of model {verdict.model}

Verdict **{verdict.verdict}**, started {verdict.started} by {verdict.started_by}; manifest sha256
`{run.manifest.get("sha256")}`.

## What each file is

| path | what it is |
|---|---|
{table}

## How to check it

```bash
python3 {CHECKER}
```

It recomputes the sha256 of every file against `manifest.json` and the manifest's own hash, follows the
hash chains of `decisions.jsonl` and `{LEDGER}`, checks the files decisions added, and checks every signature
with `ssh-keygen -Y verify -n signoff` against `allowed_signers`, and that each signed statement is the line it
sits on. It prints who signed what, every problem, and what it could not check (the link to the model's
previous run, the ledger's anchor in MLflow, whether `allowed_signers` is your organisation's current file).
Exit 0 intact, 1 not.
"""
