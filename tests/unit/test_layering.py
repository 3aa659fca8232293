"""The layering rule, read from the source: which packages of pagelab may import which at run time.

The hardware (hw/) is below the kernel and knows nothing of it; the kernel (arch/, mm/, kernel/) runs
without the observers (observe/), the real backend (real/), workloads (workload/), reports (report/)
and the command line (cli). Every module under src/pagelab is parsed with ast; an import counts when
it runs: at module level, inside a function or class, under try/if. Imports under ``if TYPE_CHECKING:``
(annotations only) do not. Relative imports are resolved against the importing module's package.

Two checks: the imports a module writes (violations(), each reported with file and line), and the
chains by which it would load a banned module through a top-level module such as machine.py or
settings.py (indirect_violations(), with the file and line of each link).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "pagelab"  # read as text: nothing is imported
TOP = "pagelab"

# Package (or top-level module) -> what it must not import at run time, as dotted prefixes under pagelab.
ABOVE_KERNEL = ("observe", "real", "workload", "report", "cli")
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "hw": ("mm", "kernel", "observe", "arch", "real", "workload", "report", "cli"),
    "arch": ABOVE_KERNEL,
    "mm": ABOVE_KERNEL,
    "kernel": ABOVE_KERNEL,
}


@dataclass(frozen=True)
class Import:
    """One run-time import statement's module: the module doing it, where, and what it names."""

    where: str  # file, relative to the directory holding the top-level package
    line: int
    importer: str  # dotted, e.g. pagelab.mm.madvise
    module: str  # dotted and absolute, e.g. pagelab.observe.trace
    names: tuple[str, ...] = ()  # the names of "from module import a, b"; () for "import module"

    def targets(self) -> list[tuple[str, str]]:
        """(name, what it may load) per name: ``module.name``, a submodule or an attribute of module."""
        if not self.names:
            return [("", self.module)]
        return [(n, self.module if n == "*" else f"{self.module}.{n}") for n in self.names]

    def __str__(self) -> str:
        what = f"{', '.join(self.names)} from {self.module}" if self.names else self.module
        return f"{self.where}:{self.line}: {self.importer} imports {what}"


def module_name(path: Path, root: Path = SRC) -> tuple[str, bool]:
    """The dotted name of the module in ``path`` under ``root`` (named TOP), and whether it is a package."""
    parts = [TOP, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def resolve(importer: str, is_package: bool, module: str | None, level: int) -> str:
    """The absolute module a ``from <dots><module> import ...`` names, as the import system resolves it.

    Mirrors importlib._bootstrap._resolve_name(): level 1 is the importer's own package (the module
    itself for a package's __init__), each further dot one package up.
    """
    if level == 0:
        return module or ""
    package = importer.split(".") if is_package else importer.split(".")[:-1]
    if level - 1 >= len(package):
        raise ValueError(f"{importer}: relative import beyond the top-level package (level {level})")
    base = package[: len(package) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _is_type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING`` (or any ``<x>.TYPE_CHECKING``)."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_nodes(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """Every node that can run, skipping the bodies of ``if TYPE_CHECKING:`` (their ``else:`` runs)."""
    stack: list[ast.AST] = list(reversed(body))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(reversed(node.orelse))
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


def runtime_imports(path: Path, root: Path = SRC) -> list[Import]:
    """The pagelab modules that ``path`` imports at run time, one entry per imported name's module."""
    importer, is_package = module_name(path, root)
    where = str(path.relative_to(root.parent))
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []
    for node in _runtime_nodes(tree.body):
        if isinstance(node, ast.Import):
            found += [Import(where, node.lineno, importer, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = resolve(importer, is_package, node.module, node.level)
            # "from . import x" and "from pagelab import cli" name a submodule through the name:
            # the targets are base.x, which a banned prefix of base matches as well.
            found.append(Import(where, node.lineno, importer, base, tuple(a.name for a in node.names)))
    return [i for i in found if _under(i.module, TOP)]


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(root: Path = SRC) -> list[Import]:
    """Every run-time import that breaks FORBIDDEN (with only its offending names), in file and line order."""
    bad: list[Import] = []
    for path in sorted(root.rglob("*.py")):
        for imp in runtime_imports(path, root):
            banned = [f"{TOP}.{b}" for layer, bs in FORBIDDEN.items() if _under(imp.importer, f"{TOP}.{layer}")
                      for b in bs]
            hits = [name for name, target in imp.targets() if any(_under(target, b) for b in banned)]
            if hits:
                bad.append(Import(imp.where, imp.line, imp.importer, imp.module, tuple(h for h in hits if h)))
    return sorted(bad, key=lambda i: (i.where, i.line))


def _loaded(target: str, modules: set[str]) -> list[str]:
    """The modules importing ``target`` runs: the longest existing module it names, and the packages above
    it (their __init__), but not the top-level package (the public API, which loads everything)."""
    while target and target not in modules:
        target = target.rpartition(".")[0]
    parts = target.split(".")
    return [".".join(parts[:k]) for k in range(len(parts), 1, -1) if ".".join(parts[:k]) in modules]


def indirect_violations(root: Path = SRC) -> list[str]:
    """Run-time import chains from a constrained module, through modules outside the constrained packages
    (machine.py, settings.py, ...), to one it must not load; one line per module, its shortest chain.

    Direct imports are violations()'s; chains through another constrained module are that module's own
    violations (direct or indirect): neither is reported here, so nothing is reported twice.
    """
    files = {module_name(p, root)[0]: p for p in sorted(root.rglob("*.py"))}
    imports = {name: runtime_imports(path, root) for name, path in files.items()}
    modules = set(files)
    constrained = [f"{TOP}.{layer}" for layer in FORBIDDEN]
    found: list[str] = []
    for start in files:
        banned = [f"{TOP}.{b}" for layer, bs in FORBIDDEN.items() if _under(start, f"{TOP}.{layer}") for b in bs]
        if not banned:
            continue
        prev: dict[str, tuple[str, int]] = {start: ("", 0)}  # module -> (who loads it, at which line)
        queue = [start]
        while queue:
            here = queue.pop(0)
            if here != start and any(_under(here, b) for b in banned):
                if prev[here][0] == start:
                    continue  # a direct import: violations() reports it
                chain = [here]
                while prev[chain[-1]][0]:
                    chain.append(prev[chain[-1]][0])
                steps = [f"{files[prev[b][0]].relative_to(root.parent)}:{prev[b][1]}" for b in chain[:-1]]
                found.append(" -> ".join(reversed(chain)) + "  (" + ", ".join(reversed(steps)) + ")")
                break
            if here != start and any(_under(here, c) for c in constrained):
                continue  # its own check follows it further
            for imp in imports[here]:
                for _, target in imp.targets():
                    for mod in _loaded(target, modules):
                        if mod not in prev:
                            prev[mod] = (here, imp.line)
                            queue.append(mod)
    return found


def test_no_layer_imports_a_layer_above_it_at_run_time():
    bad = violations()
    assert not bad, "layering violations (see FORBIDDEN in tests/unit/test_layering.py):\n" + "\n".join(
        str(b) for b in bad)


def test_no_layer_loads_a_layer_above_it_through_a_top_level_module():
    bad = indirect_violations()
    assert not bad, "layering violations through other modules:\n" + "\n".join(bad)


def test_every_constrained_package_exists_and_is_scanned():
    """The rule would pass vacuously if a package moved or the scan found nothing."""
    assert (SRC / "__init__.py").is_file(), SRC
    scanned = {module_name(p)[0] for p in SRC.rglob("*.py")}
    for layer in FORBIDDEN:
        assert any(_under(name, f"{TOP}.{layer}") for name in scanned), layer
    edges = [(i.importer, t) for p in SRC.rglob("*.py") for i in runtime_imports(p) for _, t in i.targets()]
    assert any(_under(a, "pagelab.mm") and _under(b, "pagelab.arch") for a, b in edges)
    assert any(_under(a, "pagelab.observe") and _under(b, "pagelab.mm") for a, b in edges)


# The checker itself, on a small tree written for the purpose: it must see each kind of import.

@pytest.fixture
def fake_tree(tmp_path: Path) -> Path:
    root = tmp_path / "pagelab"
    files = {
        "__init__.py": "from .hw import mmu\n",
        "cli.py": "",
        "hw/__init__.py": "from . import mmu\nfrom .. import stats, cli\n",  # line 2: pagelab.cli only
        "hw/mmu.py": (
            "from __future__ import annotations\n"
            "import typing\n"
            "from typing import TYPE_CHECKING\n"
            "from ..stats import X\n"                      # allowed
            "if TYPE_CHECKING:\n"
            "    from ..mm.types import Vma\n"             # annotations only: allowed
            "if typing.TYPE_CHECKING:\n"
            "    import pagelab.kernel.task\n"             # annotations only: allowed
            "else:\n"
            "    import pagelab.kernel.syscalls\n"         # line 10: runs
            "def f():\n"
            "    from ..mm import fault\n"                 # line 12: runs when f is called
            "    return fault\n"
            "class C:\n"
            "    try:\n"
            "        from pagelab.observe.trace import describe\n"  # line 16
            "    except ImportError:\n"
            "        pass\n"
        ),
        "mm/__init__.py": "",
        "mm/deep/__init__.py": "from ...observe import procfs\n",  # line 1: pagelab.observe.procfs
        "mm/deep/walk.py": (
            "from . import helper\n"                       # pagelab.mm.deep.helper: allowed
            "from .. import fault\n"                       # pagelab.mm.fault: allowed
            "from ...workload.scenario import Scenario\n"  # line 3: pagelab.workload.scenario
            "from ...hw import mmu\n"                      # allowed
            "from ...observe.trace import (describe,\n"    # line 5: one statement over two lines
            "    MEANING)\n"
            "import pagelab.report.compare as rc\n"        # line 7
            "from pagelab import cli\n"                    # line 8: pagelab.cli
            "from pagelab.clinic import x\n"               # not cli: a prefix is a whole name
        ),
        "observe/__init__.py": "from ..mm import fault\n",  # observe may read mm
        "observe/procfs.py": "",
        # Indirect: a constrained module loading a banned one through top-level modules.
        "settings.py": "def parse():\n    from .observe import procfs\n",
        "clock.py": "import pagelab.machine\n",
        "machine.py": "from .mm import fault\nfrom .settings import parse\n",
        "mm/uses_settings.py": "from ..settings import parse\n",   # -> settings -> observe.procfs
        "kernel/__init__.py": "",
        "kernel/task.py": "from ..mm import uses_settings\n",    # mm.uses_settings reports it
        "hw/cpu.py": "from ..clock import X\n",                   # -> clock -> machine -> mm
    }
    for name, text in files.items():
        f = root / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    return root


def test_relative_imports_resolve_as_python_resolves_them():
    assert resolve("pagelab.mm.madvise", False, "fault", 1) == "pagelab.mm.fault"
    assert resolve("pagelab.mm.madvise", False, "observe.trace", 2) == "pagelab.observe.trace"
    assert resolve("pagelab.arch.x86.fault", False, "observe.trace", 3) == "pagelab.observe.trace"
    assert resolve("pagelab.mm.madvise", False, None, 1) == "pagelab.mm"
    assert resolve("pagelab.mm", True, None, 1) == "pagelab.mm"  # __init__: "." is the package itself
    assert resolve("pagelab.mm", True, "types", 2) == "pagelab.types"
    assert resolve("pagelab.mm.x", False, "numpy", 0) == "numpy"
    with pytest.raises(ValueError, match="beyond the top-level"):
        resolve("pagelab.mm", True, None, 3)


def test_the_checker_reports_each_violation_with_file_and_line(fake_tree: Path):
    assert [str(b) for b in violations(fake_tree)] == [
        "pagelab/hw/__init__.py:2: pagelab.hw imports cli from pagelab",
        "pagelab/hw/mmu.py:10: pagelab.hw.mmu imports pagelab.kernel.syscalls",
        "pagelab/hw/mmu.py:12: pagelab.hw.mmu imports fault from pagelab.mm",
        "pagelab/hw/mmu.py:16: pagelab.hw.mmu imports describe from pagelab.observe.trace",
        "pagelab/mm/deep/__init__.py:1: pagelab.mm.deep imports procfs from pagelab.observe",
        "pagelab/mm/deep/walk.py:3: pagelab.mm.deep.walk imports Scenario from pagelab.workload.scenario",
        "pagelab/mm/deep/walk.py:5: pagelab.mm.deep.walk imports describe, MEANING from pagelab.observe.trace",
        "pagelab/mm/deep/walk.py:7: pagelab.mm.deep.walk imports pagelab.report.compare",
        "pagelab/mm/deep/walk.py:8: pagelab.mm.deep.walk imports cli from pagelab",
    ]


def test_the_checker_follows_imports_through_top_level_modules(fake_tree: Path):
    assert indirect_violations(fake_tree) == [
        "pagelab.hw.cpu -> pagelab.clock -> pagelab.machine -> pagelab.mm  "
        "(pagelab/hw/cpu.py:1, pagelab/clock.py:1, pagelab/machine.py:1)",
        "pagelab.mm.uses_settings -> pagelab.settings -> pagelab.observe.procfs  "
        "(pagelab/mm/uses_settings.py:1, pagelab/settings.py:2)",
    ]
