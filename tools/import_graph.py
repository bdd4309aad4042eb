"""The import graph of ctsentinel: packages and who imports whom, and any cycle between modules.

    python tools/import_graph.py            # package graph: "importer -> imported (number of imports)"
    python tools/import_graph.py --check    # exit 1 listing every cycle between modules (make lint runs it)

The layers themselves are checked by import-linter (pyproject.toml); this adds what it does not check: a
cycle inside one package (a module importing its package's __init__, which imports the module back).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

import grimp

ROOT = "ctsentinel"


def package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def module_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    modules = sorted(m for m in graph.modules if m == ROOT or m.startswith(ROOT + "."))
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & set(modules)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in modules:
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            targets = edges[node]
            if child < len(targets):
                work.append((node, child + 1))
                target = targets[child]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def package_edges(graph: grimp.ImportGraph) -> Counter[tuple[str, str]]:
    edges: Counter[tuple[str, str]] = Counter()
    for module in graph.modules:
        if not module.startswith(ROOT + "."):
            continue
        for imported in graph.find_modules_directly_imported_by(module):
            if imported.startswith(ROOT + ".") and package_of(imported) != package_of(module):
                edges[package_of(module), package_of(imported)] += 1
    return edges


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail on any cycle between modules")
    args = parser.parse_args()
    graph = grimp.build_graph(ROOT, cache_dir=None)
    if args.check:
        cycles = module_cycles(graph)
        for cycle in cycles:
            print("import cycle: " + " <-> ".join(cycle), file=sys.stderr)
        return 1 if cycles else 0
    for (importer, imported), count in sorted(package_edges(graph).items()):
        print(f"{importer.removeprefix(ROOT + '.')} -> {imported.removeprefix(ROOT + '.')} ({count})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
