#!/usr/bin/env python3
"""The include layers: every #include in src/ and preprocessing/ against the order docs/architecture.md declares.

The declaration is marked lines of docs/architecture.md (code spans, one line each):
    `Layer order: util → config → data → … → apps`
        src/<layer>/ may include its own layer and those left of it; every folder of src/ must be in it
    `Side layer: preprocessing uses util, data; used by apps`
        <name>/ at the top of the tree may include itself and the layers after "uses"; only the layers after
        "used by" may include it
Any other line of that file that spells an order starting with the first layer (the diagram) must spell the same.
Besides the order, the layers below LibTorch, toml++ and MPI must not include them (docs/architecture.md's table):
    LibTorch (<torch/…>, <ATen/…>, <c10/…>)  not in util, config, data, comm, preprocessing
    toml++ (<toml++/…>, or config/ headers: shardgan_config compiles toml++)  not in util, data, preprocessing
    MPI (<mpi.h>)                               not in util, config, data, preprocessing
An #include "…" that resolves to no file of the tree (its own folder, src/, a side layer's folder, or the generated
shardgan/config.hpp, which is on util's include path) is an error too: what cannot be placed cannot be checked.

    tests/layers/check_layers.py [--root DIR]   exit 0: no violation (a one-line summary); 1: violations (each as
                                                FILE:LINE: …); 2: the declaration is missing or malformed
    tests/layers/check_layers.py --self-test    runs the check on small trees with deliberate violations
Python 3 standard library only. CTest runs both (label layers).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

DOC = Path("docs/architecture.md")
ORDER_RE = re.compile(r"`Layer order: ([^`]+)`")
SIDE_RE = re.compile(r"`Side layer: (\w+) uses ([\w ,]+); used by ([\w ,]+)`")
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
SOURCE_SUFFIXES = {".c", ".cc", ".cpp", ".cxx", ".h", ".hh", ".hpp", ".hxx", ".inl", ".ipp", ".cu", ".cuh"}
GENERATED = {"shardgan": "util"}  # build/generated/shardgan/config.hpp (cmake/config.hpp.in): on util's include path

NO_LIBTORCH = {"util", "config", "data", "comm", "preprocessing"}
NO_TOML = {"util", "data", "preprocessing"}
NO_MPI = {"util", "config", "data", "preprocessing"}


class DeclarationError(Exception):
    pass


def read_declaration(root):
    """(order, sides, where): the layer order, {side: (uses, used_by)}, and 'docs/architecture.md:LINE'."""
    path = root / DOC
    if not path.is_file():
        raise DeclarationError(f"{DOC}: not found under {root}")
    lines = path.read_text(encoding="utf-8").splitlines()
    found = [(n, m) for n, line in enumerate(lines, 1) for m in [ORDER_RE.search(line)] if m]
    if len(found) != 1:
        raise DeclarationError(f"{DOC}: {len(found)} lines with `Layer order: …` (want exactly one)")
    line_no, match = found[0]
    order = [w.strip() for w in match.group(1).split("→")]
    if len(order) < 2 or not all(re.fullmatch(r"\w+", w) for w in order) or len(set(order)) != len(order):
        raise DeclarationError(f"{DOC}:{line_no}: malformed layer order '{match.group(1)}'")
    sides = {}
    for n, line in enumerate(lines, 1):
        for m in SIDE_RE.finditer(line):
            uses = {w.strip() for w in m.group(2).split(",") if w.strip()}
            used_by = {w.strip() for w in m.group(3).split(",") if w.strip()}
            unknown = sorted((uses | used_by) - set(order))
            if m.group(1) in order or m.group(1) in sides or unknown:
                raise DeclarationError(f"{DOC}:{n}: side layer '{m.group(1)}': duplicate or unknown layers {unknown}")
            sides[m.group(1)] = (uses, used_by)
    # The diagram (or any other spelling of an order that starts with the first layer) must agree.
    spelled = re.compile(r"^\W*" + re.escape(order[0]) + r"\s*→")
    for n, line in enumerate(lines, 1):
        if n != line_no and spelled.search(line):
            other = [w.strip(" `|") for w in line.split("→")]
            if other != order:
                raise DeclarationError(f"{DOC}:{n}: spells the order as {' → '.join(other)}, line {line_no} as "
                                       f"{' → '.join(order)}")
    return order, sides, f"{DOC}:{line_no}"


def sources(root, order, sides):
    """(path, layer) of every source file checked; raises DeclarationError for a src/ folder not in the order."""
    found = []
    src = root / "src"
    for folder in sorted(p for p in src.iterdir() if p.is_dir()):
        if folder.name not in order:
            raise DeclarationError(f"src/{folder.name}/ is not in the layer order ({DOC}): add it there")
        found += [(f, folder.name) for f in sorted(folder.rglob("*")) if f.suffix in SOURCE_SUFFIXES]
    stray = [f for f in sorted(src.iterdir()) if f.is_file() and f.suffix in SOURCE_SUFFIXES]
    if stray:
        raise DeclarationError(f"{stray[0].relative_to(root)}: a source file outside every layer's folder")
    for side in sorted(sides):
        if not (root / side).is_dir():
            raise DeclarationError(f"side layer '{side}' ({DOC}) has no folder {side}/")
        found += [(f, side) for f in sorted((root / side).rglob("*")) if f.suffix in SOURCE_SUFFIXES]
    return found


def place(root, file, kind, name, order, sides):
    """The layer of an #include's target, None for a header from outside the tree, or '?' when it cannot be placed."""
    first = name.split("/")[0]
    if kind == '"':
        resolved = (file.parent / name).resolve()
        if resolved.is_file():
            rel = resolved.relative_to(root.resolve()).parts if root.resolve() in resolved.parents else ()
            if len(rel) >= 3 and rel[0] == "src":
                return rel[1]
            if rel and rel[0] in sides:
                return rel[0]
            return "?"
    if "/" in name and first in order and (kind == '"' or (root / "src" / name).is_file()):
        return first
    if "/" in name and first in GENERATED:
        return GENERATED[first]
    if kind == '"':
        for side in sides:
            if (root / side / name).is_file():
                return side
        return "?"
    return None


def external_rule(name, target, layer):
    """What a layer may not include from outside, or None."""
    if layer in NO_LIBTORCH and name.startswith(("torch/", "ATen/", "c10/")):
        return "LibTorch"
    if layer in NO_TOML and (name.startswith("toml++/") or name == "toml.hpp" or target == "config"):
        return "toml++" if target != "config" else "config/ (shardgan_config compiles toml++)"
    if layer in NO_MPI and (name in ("mpi.h", "mpi-ext.h") or name.startswith("openmpi/")):
        return "MPI"
    return None


def order_violation(layer, target, order, sides):
    """Why `layer` may not include `target` (both layers), or None."""
    if target == layer:
        return None
    if layer in sides:
        uses, _ = sides[layer]
        if target in uses:
            return None
        return f"{layer} may include only {', '.join(sorted(uses | {layer}))} ({DOC}: Side layer)"
    if target in sides:
        _, used_by = sides[target]
        if layer in used_by:
            return None
        return f"only {', '.join(sorted(used_by))} may include {target} ({DOC}: Side layer)"
    if order.index(target) > order.index(layer):
        return f"{target} is above {layer} in the layer order"
    return None


def check(root):
    order, sides, where = read_declaration(root)
    files = sources(root, order, sides)
    violations = []
    includes = own = 0
    for file, layer in files:
        rel = file.relative_to(root)
        for n, line in enumerate(file.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            m = INCLUDE_RE.match(line)
            if not m:
                continue
            includes += 1
            kind, name = m.groups()
            text = f"<{name}>" if kind == "<" else f'"{name}"'
            target = place(root, file, kind, name, order, sides)
            if target == "?":
                violations.append(f"{rel}:{n}: {layer} includes {text}, which is no file of the tree (cannot check it)")
                continue
            why = None
            if target is not None:
                own += 1
                why = order_violation(layer, target, order, sides)
                if why:
                    violations.append(f"{rel}:{n}: {layer} includes {text} ({target}): {why}")
                    continue
            banned = external_rule(name, target, layer)
            if banned:
                violations.append(f"{rel}:{n}: {layer} includes {text}: no {banned} in {layer}")
    side_text = "".join(f"; beside it {s} (uses {', '.join(sorted(u))}; used by {', '.join(sorted(b))})"
                        for s, (u, b) in sorted(sides.items()))
    summary = f"order ({where}): {' → '.join(order)}{side_text}"
    return violations, len(files), includes, own, summary


def main_check(root):
    try:
        violations, files, includes, own, summary = check(root)
    except DeclarationError as e:
        print(f"check_layers: {e}", file=sys.stderr)
        return 2
    if violations:
        for v in violations:
            print(v)
        print(f"check_layers: {len(violations)} violation(s) in {files} files; {summary}", file=sys.stderr)
        return 1
    print(f"check_layers: {files} files, {includes} #includes ({own} of the tree's own headers): no violation; "
          f"{summary}")
    return 0


# --- self-test: the checker on small trees, with and without deliberate violations -------------------------------

DOC_TEXT = """# Architecture
`Layer order: util → config → data → comm → model → train → apps`
`Side layer: preprocessing uses util, data; used by apps`

```
 util → config → data → comm → model → train → apps
```
A step → another step (not an order: does not start with util).
"""

CLEAN = {
    "src/util/a.hpp": '#include <vector>\n#include "util/b.hpp"\n',
    "src/util/b.hpp": "#pragma once\n",
    "src/util/b.cpp": '#include "b.hpp"\n#include "shardgan/config.hpp"\n',
    "src/config/c.hpp": '#include <toml++/toml.h>\n#include "util/a.hpp"\n',
    "src/data/d.hpp": '#include "util/a.hpp"\n#include <hdf5.h>\n',
    "src/comm/x.hpp": '#include <mpi.h>\n#include "data/d.hpp"\n',
    "src/model/m.hpp": '#include <torch/torch.h>\n#include "comm/x.hpp"\n#include "config/c.hpp"\n',
    "src/train/t.hpp": '#include "model/m.hpp"\n  #  include "util/a.hpp"\n// #include "apps/nothing.hpp"\n',
    "src/apps/main.cpp": '#include "p.hpp"\n#include "train/t.hpp"\n',
    "preprocessing/p.hpp": '#include "q.hpp"\n#include "data/d.hpp"\n#include "util/a.hpp"\n',
    "preprocessing/q.hpp": "#include <opencv2/core.hpp>\n",
}

# file: (text, [(line, words the violation's line must contain)])
VIOLATIONS = {
    "src/util/torch.hpp": ("#include <c10/util/Exception.h>\n", [(1, "no LibTorch in util")]),
    "src/util/mpi.cpp": ("#include <vector>\n#include <mpi.h>\n", [(2, "no MPI in util")]),
    "src/util/up.cpp": ('#include "data/d.hpp"\n', [(1, "data is above util")]),
    "src/data/toml.cpp": ('#include "config/c.hpp"\n#include <toml++/toml.h>\n#include <ATen/ATen.h>\n',
                          [(1, "no config/"), (2, "no toml++ in data"), (3, "no LibTorch in data")]),
    "src/comm/torch.cpp": ("#include <torch/types.h>\n", [(1, "no LibTorch in comm")]),
    "src/model/up.cpp": ('#include <c10/core/Device.h>\n#include "train/t.hpp"\n', [(2, "train is above model")]),
    "src/train/pre.cpp": ('#include "p.hpp"\n', [(1, "only apps may include preprocessing")]),
    "src/data/lost.cpp": ('#include "nowhere.hpp"\n', [(1, "no file of the tree")]),
    "preprocessing/r.cpp": ('#include "comm/x.hpp"\n#include "config/c.hpp"\n',
                            [(1, "preprocessing may include only"), (2, "preprocessing may include only")]),
    "preprocessing/s.cpp": ("#include <torch/torch.h>\n", [(1, "no LibTorch in preprocessing")]),
}


def write_tree(root, files, doc=DOC_TEXT):
    (root / "docs").mkdir(parents=True, exist_ok=True)
    (root / DOC).write_text(doc, encoding="utf-8")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")


def run_on(root):
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--root", str(root)], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def self_test():
    failures = []
    cases = 0

    def expect(cond, what, out=""):
        nonlocal cases
        cases += 1
        if not cond:
            failures.append(f"{what}\n{out}")

    with tempfile.TemporaryDirectory() as tmp:
        clean = Path(tmp) / "clean"
        write_tree(clean, CLEAN)
        rc, out, err = run_on(clean)
        expect(rc == 0 and "no violation" in out and "11 files" in out, "a clean tree passes", out + err)

        bad = Path(tmp) / "bad"
        write_tree(bad, {**CLEAN, **{name: text for name, (text, _) in VIOLATIONS.items()}})
        rc, out, err = run_on(bad)
        expect(rc == 1, f"a tree with violations fails (exit {rc})", out + err)
        reported = out.splitlines()
        want = [(name, line, words) for name, (_, found) in VIOLATIONS.items() for line, words in found]
        for name, line, words in want:
            hits = [r for r in reported if r.startswith(f"{name}:{line}: ")]
            expect(len(hits) == 1 and words in hits[0], f"{name}:{line} reported once with '{words}'", out)
        expect(len(reported) == len(want), f"{len(want)} violations reported, not {len(reported)}", out)

        for label, doc, files in [
            ("no `Layer order:` line", DOC_TEXT.replace("`Layer order:", "`Order:"), CLEAN),
            ("a diagram that disagrees", DOC_TEXT.replace("\n util → config", "\n util → data → config"), CLEAN),
            ("a src/ folder not in the order", DOC_TEXT, {**CLEAN, "src/extra/e.hpp": "\n"}),
            ("a side layer without its folder", DOC_TEXT.replace("preprocessing uses", "tools uses"), CLEAN),
        ]:
            tree = Path(tmp) / label.replace(" ", "_").replace("`", "")
            write_tree(tree, files, doc)
            rc, out, err = run_on(tree)
            expect(rc == 2 and "check_layers:" in err, f"{label}: exit 2 with a reason (exit {rc})", out + err)

    for f in failures:
        print(f"check_layers --self-test: FAILED: {f}", file=sys.stderr)
    print(f"check_layers --self-test: {cases - len(failures)} of {cases} checks passed")
    return 1 if failures else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, help="the checkout (default: the one this script is in)")
    parser.add_argument("--self-test", action="store_true", help="check the checker on small trees")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    return main_check(args.root or Path(__file__).resolve().parent.parent.parent)


if __name__ == "__main__":
    sys.exit(main())
