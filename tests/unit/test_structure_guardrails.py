"""The shape the code keeps (docs/architecture.md, "Layout"): entrypoint files stay thin,
no module grows past what a person reads in one go, and no module reaches into another's
private names. A change that breaks one of these says where the code should be split."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("services", "gateway", "shared", "mae_operator")
SERVICE_LINES, MODULE_LINES = 250, 350


def _modules():
    for package in PACKAGES:
        yield from sorted(p for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


@pytest.mark.parametrize("service", sorted((ROOT / "services").glob("*/service.py")), ids=lambda p: p.parent.name)
def test_entrypoint_files_are_thin(service):
    assert _lines(service) <= SERVICE_LINES, \
        f"{service.relative_to(ROOT)} has {_lines(service)} lines: move logic into its domain/"


def test_no_module_is_longer_than_a_reading():
    long = {str(p.relative_to(ROOT)): _lines(p) for p in _modules() if _lines(p) > MODULE_LINES}
    assert long == {}, f"split these modules (over {MODULE_LINES} lines): {long}"


def test_no_module_imports_another_modules_private_names():
    reached = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module != "__future__":
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                if private and node.level == 0:
                    reached.append(f"{path.relative_to(ROOT)}: from {node.module} import {', '.join(private)}")
    assert reached == []
