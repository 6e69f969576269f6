"""Refresh the web console's vendored JavaScript from the npm registry (a developer's tool).

Run it from the repository root with ``python scripts/vendor_ui.py``; it needs ``npm`` (only
here: the build, CI and the console itself never run Node). For each package below it runs
``npm pack NAME@VERSION`` into a temporary directory, copies the one distributed file it needs,
and writes ``VENDOR.json`` (name, version, file, sha256, licence, tarball integrity) next to
the files. Commit the result; ``tests/ui`` checks every file against its recorded sha256.

- ``src/loopline/ui/static/vendor``: what the console's pages load (htmx 2 and its SSE
  extension; uPlot and its stylesheet on the Monitoring screen).
- ``tests/e2e/vendor``: axe-core, injected by the browser tests only (never served).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (npm name, version, file inside the package, name on disk, destination)
PACKAGES = [
    ("htmx.org", "2.0.11", "dist/htmx.min.js", "htmx.min.js", "src/loopline/ui/static/vendor"),
    ("htmx-ext-sse", "2.2.4", "dist/sse.min.js", "htmx-ext-sse.min.js",
     "src/loopline/ui/static/vendor"),
    ("uplot", "1.6.32", "dist/uPlot.iife.min.js", "uPlot.iife.min.js",
     "src/loopline/ui/static/vendor"),
    ("uplot", "1.6.32", "dist/uPlot.min.css", "uPlot.min.css", "src/loopline/ui/static/vendor"),
    ("axe-core", "4.10.3", "axe.min.js", "axe.min.js", "tests/e2e/vendor"),
]  # fmt: skip


def pack(name: str, version: str, workdir: Path) -> tuple[Path, dict[str, str]]:
    """``npm pack`` one package; returns the tarball and npm's record of it."""
    out = subprocess.run(
        ["npm", "pack", f"{name}@{version}", "--json", "--pack-destination", str(workdir)],
        check=True,
        capture_output=True,
        text=True,
        cwd=workdir,
    )
    record = json.loads(out.stdout)[0]
    return workdir / record["filename"], record


# The first line of a LICENSE file, for packages whose package.json names none.
LICENCE_TITLES = {"BSD Zero Clause License": "0BSD", "MIT License": "MIT"}


def licence_of(tar: tarfile.TarFile, name: str) -> str:
    """The SPDX id read from the package's LICENSE file (package.json names none)."""
    member = tar.extractfile("package/LICENSE")
    title = member.readline().decode().strip() if member is not None else ""
    if title not in LICENCE_TITLES:
        raise SystemExit(f"{name}: no licence in package.json and LICENSE starts {title!r}")
    return LICENCE_TITLES[title]


def main() -> int:
    manifests: dict[Path, list[dict[str, str]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, version, inner, filename, dest in PACKAGES:
            tarball, record = pack(name, version, work)
            with tarfile.open(tarball) as tar:
                member = tar.extractfile(f"package/{inner}")
                meta = tar.extractfile("package/package.json")
                if member is None or meta is None:
                    raise SystemExit(f"{name}@{version} has no {inner}")
                data = member.read()
                licence = json.loads(meta.read()).get("license") or licence_of(tar, name)
            target = ROOT / dest
            target.mkdir(parents=True, exist_ok=True)
            (target / filename).write_bytes(data)
            manifests.setdefault(target, []).append(
                {
                    "name": name,
                    "version": version,
                    "file": filename,
                    "source": f"npm:{name}@{version}/{inner}",
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "licence": str(licence),
                    "integrity": record.get("integrity", ""),
                }
            )
            sys.stdout.write(f"{name}@{version} -> {dest}/{filename} ({len(data)} bytes)\n")
    for target, entries in manifests.items():
        (target / "VENDOR.json").write_text(json.dumps(entries, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
