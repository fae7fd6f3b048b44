"""Import rules of the code base, read from the source with `ast` (nothing is imported):

- a service package never imports another one (`services.<a>` -> `services.<b>`): services
  talk through events and contracts only;
- domain code imports no messaging, database or green-thread library, neither directly nor
  through another module of this repository. Domain code is all of `contracts/`,
  `services/*/domain.py`, `services/*/domain/**` and the facematch modules of
  `FACEMATCH_DOMAIN`;
- every facematch module is classified, as domain or as entry point/adapter, and the package
  docstring names it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHECKED_ROOTS = ("services", "contracts")
IN_REPO_ROOTS = ("backbone", "contracts", "services")  # followed for imports made indirectly
FORBIDDEN_IN_DOMAIN = frozenset({"nameko", "psycopg", "psycopg_pool", "kombu", "pika", "amqp", "eventlet"})

#: facematch's pure modules (see the docstring of services/facematch/__init__.py)
FACEMATCH_DOMAIN = frozenset(
    f"services.facematch.{name}"
    for name in (
        "calibration",
        "crypto",
        "decode",
        "detection",
        "embedding",
        "engine",
        "evaluation",
        "gallery",
        "geometry",
        "index",
        "liveness",
        "matching",
        "mesh",
        "quality",
        "reasons",
        "results",
        "templates",
    )
)
#: facematch's entry points and adapters: they may use nameko, psycopg and eventlet
FACEMATCH_ENTRY_POINTS = frozenset(
    f"services.facematch.{name}"
    for name in ("__main__", "cli", "province", "reenrol", "repository", "service")
)


@dataclass(frozen=True)
class Import:
    """One import statement: `import target` or `from target import names`."""

    source: Path  # relative to the repository
    line: int
    target: str  # dotted module name, absolute
    names: tuple[str, ...] = ()

    @property
    def modules(self) -> list[str]:
        """What may be a module: the target, and in `from a import b` also `a.b`."""
        return [self.target, *(f"{self.target}.{name}" for name in self.names)]

    def __str__(self) -> str:
        names = f" ({', '.join(self.names)})" if self.names else ""
        return f"{self.source}:{self.line} imports {self.target}{names}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules(roots: tuple[str, ...]) -> dict[str, Path]:
    """Dotted name -> file, for every Python module under the given top-level folders."""
    found: dict[str, Path] = {}
    for root in roots:
        for path in sorted((REPO / root).rglob("*.py")):
            found[module_name(path)] = path
    return found


@cache
def imports_of(path: Path) -> tuple[Import, ...]:
    """Every import of a module, wherever it stands (top level, function, TYPE_CHECKING block),
    relative ones made absolute."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    source = path.relative_to(REPO)
    found: list[Import] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [Import(source, node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            found.append(Import(source, node.lineno, base, tuple(alias.name for alias in node.names)))
    return tuple(found)


def service_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "services" and len(parts) > 1 else None


def is_domain(module: str) -> bool:
    parts = module.split(".")
    if parts[0] == "contracts":
        return True
    if parts[0] == "services" and len(parts) >= 3 and parts[2] == "domain":
        return True
    return module in FACEMATCH_DOMAIN


def loaded_with(module: str) -> list[str]:
    """The in-repo modules Python runs to import `module`: its packages' __init__ and itself."""
    repo_modules = modules(IN_REPO_ROOTS)
    parts = module.split(".")
    return [name for i in range(1, len(parts) + 1) if (name := ".".join(parts[:i])) in repo_modules]


def forbidden_chains(start: str) -> list[str]:
    """Each forbidden import reachable from `start`, as the chain of imports that leads to it."""
    repo_modules = modules(IN_REPO_ROOTS)
    chains: list[str] = []
    seen = {start}
    queue: list[tuple[str, list[Import]]] = [(start, [])]
    while queue:
        module, via = queue.pop(0)
        for imp in imports_of(repo_modules[module]):
            top = imp.target.split(".")[0]
            if top in FORBIDDEN_IN_DOMAIN:
                chains.append(" -> ".join(str(step) for step in [*via, imp]))
            for reached in (name for target in imp.modules for name in loaded_with(target)):
                if reached not in seen:
                    seen.add(reached)
                    queue.append((reached, [*via, imp]))
    return sorted(set(chains))


def test_the_import_reader_sees_what_is_there() -> None:
    """Guards the rules below against passing vacuously."""
    service = imports_of(REPO / "services" / "facematch" / "service.py")
    assert any(imp.target.startswith("nameko") for imp in service)
    assert any(imp.target == "services.facematch.engine" for imp in service)  # inside a method
    assert "services.facematch.engine" in modules(CHECKED_ROOTS)
    assert is_domain("contracts.events") and is_domain("services.eligibility.domain.rules")
    assert is_domain("services.hardship.domain") and not is_domain("services.hardship.service")


def other_services(imp: Import, own: str) -> list[str]:
    return sorted({other for target in imp.modules if (other := service_of(target)) not in (None, own)})


def test_no_service_package_imports_another() -> None:
    offences = [
        f"{imp}: services.{own} may not import services.{', services.'.join(others)}"
        for name, path in modules(CHECKED_ROOTS).items()
        if (own := service_of(name)) is not None
        for imp in imports_of(path)
        if (others := other_services(imp, own))
    ]
    assert not offences, "service packages import each other:\n" + "\n".join(offences)


def test_domain_modules_import_no_messaging_database_or_green_threads() -> None:
    domain = [name for name in modules(CHECKED_ROOTS) if is_domain(name)]
    assert len(domain) > len(FACEMATCH_DOMAIN)
    offences = [chain for name in domain for chain in forbidden_chains(name)]
    forbidden = ", ".join(sorted(FORBIDDEN_IN_DOMAIN))
    assert not offences, f"domain modules import {forbidden}:\n" + "\n".join(sorted(set(offences)))


def test_every_facematch_module_is_classified_and_documented() -> None:
    package = REPO / "services" / "facematch"
    present = {name for name in modules(CHECKED_ROOTS) if name.startswith("services.facematch.")}
    classified = FACEMATCH_DOMAIN | FACEMATCH_ENTRY_POINTS
    assert not FACEMATCH_DOMAIN & FACEMATCH_ENTRY_POINTS
    assert present == classified, (
        f"unclassified: {sorted(present - classified)}; listed but missing: {sorted(classified - present)}"
    )
    docstring = ast.get_docstring(ast.parse((package / "__init__.py").read_text(encoding="utf-8"))) or ""
    undocumented = [name for name in sorted(present) if f"`{name.rpartition('.')[2]}`" not in docstring]
    assert not undocumented, f"services/facematch/__init__.py does not name {undocumented}"
