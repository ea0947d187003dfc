"""The layering rules of docs/architecture.md, as import-linter contracts in pyproject.toml.

The contracts are only worth something if a break fails the build, so besides
checking the real tree, each contract is shown to catch a planted violation
in a throw-away copy of the packages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]

# In a subprocess: grimp locates packages through the import system, and in
# this process `engine` & co. are already imported from the real tree.
LINT_IMPORTS = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"


def lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    # No config argument: like a developer's `lint-imports`, it reads the
    # project's pyproject.toml from the working directory.
    env = {**os.environ, "PYTHONPATH": str(project), "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-c", LINT_IMPORTS, "--no-cache"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_contracts_are_kept() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(CONFIG['contracts'])} kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("probe", "imported", "contract"),
    [
        ("engine", "fastapi", "Only runtime and designer import the web framework"),
        ("permissions", "starlette.requests", "Only runtime and designer import the web framework"),
        ("engine", "runtime", "Layers point downwards"),
        ("designer", "runtime", "Layers point downwards"),
    ],
)
def test_a_planted_violation_breaks_its_contract(
    tmp_path: Path, probe: str, imported: str, contract: str
) -> None:
    assert contract in {c["name"] for c in CONFIG["contracts"]}
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    for package in CONFIG["root_packages"]:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    (tmp_path / probe / "_architecture_probe.py").write_text(f"import {imported}\n")

    result = lint_imports(tmp_path)

    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"{contract} BROKEN" in output
    # External modules are reported by their top-level package.
    reported = imported if imported in CONFIG["root_packages"] else imported.split(".")[0]
    assert f"{probe}._architecture_probe -> {reported}" in output
