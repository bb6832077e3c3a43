"""The package an administrator installs: its license, its version, and dependencies that are used."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest

from shim.cli import main

ROOT = Path(__file__).resolve().parents[2]
#: Distribution name -> the module it is imported as, where they differ.
IMPORT_NAMES = {"pyspnego": "spnego", "python-json-logger": "pythonjsonlogger"}


def _project() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        project: dict[str, object] = tomllib.load(handle)["project"]
    return project


def test_license_file_is_the_apache_license_the_metadata_names() -> None:
    project = _project()
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text("utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text


def test_version_option_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"mailshift {importlib.metadata.version('mailshift')}"


def test_every_runtime_dependency_is_imported_by_the_service_or_engine() -> None:
    sources = "\n".join(p.read_text("utf-8") for folder in ("engine", "shim") for p in (ROOT / folder).rglob("*.py"))
    dependencies = _project()["dependencies"]
    assert isinstance(dependencies, list)
    unused = []
    for requirement in dependencies:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement)
        assert name is not None
        module = IMPORT_NAMES.get(name.group(), name.group()).replace("-", "_")
        if not re.search(rf"^\s*(?:import|from) {re.escape(module)}\b", sources, re.MULTILINE):
            unused.append(name.group())
    assert unused == []
