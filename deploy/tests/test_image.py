"""The image's Python packages: the runtime part of requirements.txt must run the project's code."""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
# infrastructure/testing is the tests' support (the test-run plugin, private services, fixtures):
# no module the image runs imports it (the import contracts in pyproject.toml keep it so).
NOT_IN_THE_IMAGE_AT_RUN_TIME = ("tests", "testing", "benchmarks", "migrations")


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_requirements() -> list[Requirement]:
    """What the Dockerfile installs: requirements.txt up to its test-tools marker, by the same sed."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    marker = re.search(r"sed '/\^(.+?)/,\$d' requirements\.txt", dockerfile)
    assert marker, "the Dockerfile no longer cuts requirements.txt at a marker line"
    requirements: list[Requirement] = []
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.startswith(marker.group(1)):
            return requirements
        if line.strip() and not line.startswith("#"):
            requirements.append(Requirement(line))
    raise AssertionError(f"requirements.txt has no line starting {marker.group(1)!r}")


def installed_with(requirements: list[Requirement]) -> set[str]:
    """The distributions pip installs for `requirements`: them and all they require, with extras."""
    seen: set[tuple[str, str]] = set()
    pending = [(requirement, "") for requirement in requirements]
    while pending:
        requirement, extra = pending.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = _name(requirement.name)
        for wanted in ("", *requirement.extras):
            if (name, wanted) not in seen:
                seen.add((name, wanted))
                pending.extend((Requirement(r), wanted) for r in metadata.requires(name) or [])
    return {name for name, _ in seen}


def imported_top_level_modules() -> set[str]:
    modules: set[str] = set()
    for path in ROOT.glob("**/*.py"):
        relative = path.relative_to(ROOT)
        if relative.parts[0].startswith(".") or set(relative.parts) & set(NOT_IN_THE_IMAGE_AT_RUN_TIME):
            continue
        if relative.name == "conftest.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module.split(".")[0])
    return modules


def test_the_image_leaves_the_test_and_lint_tools_out():
    runtime = {_name(requirement.name) for requirement in runtime_requirements()}
    assert {"django", "granian", "uvicorn", "confluent-kafka", "psycopg"} <= runtime
    assert not {"pytest", "mypy", "ruff", "hypothesis"} & runtime


def test_every_package_the_projects_code_imports_is_installed_in_the_image():
    image = installed_with(runtime_requirements())
    distributions = metadata.packages_distributions()
    ours = {path.name for path in ROOT.iterdir() if (path / "__init__.py").exists() or path.suffix == ".py"}
    missing = {
        module: distributions[module]
        for module in imported_top_level_modules() - ours - set(sys.stdlib_module_names)
        if module in distributions and not {_name(d) for d in distributions[module]} & image
    }
    assert missing == {}
