"""Vendor GraphiQL's files from npm: `python -m app.http.refresh_graphiql [--check]`.

The GraphiQL page loads six files that Strawberry's template takes from a CDN. They are
kept in app/http/static/vendor/, each with its package's licence, and listed in
manifest.json with their sha256 and their Subresource Integrity hash (sha384).

Without arguments, each pinned package is fetched with `npm pack` (npm checks the
tarball against the registry's sha512), the files are taken from it, and the manifest
is rewritten. A pinned version whose tarball or files differ from what the manifest
already records is refused: a published version must never change. To move to a new
version, change its pin below and run the script.

`--check` needs no network: it checks that the vendored files match the manifest.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.http.graphiql import VENDOR_DIR, sri_sha384

MANIFEST = VENDOR_DIR / "manifest.json"
LICENCE_NAMES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "LICENCE", "license")


@dataclass(frozen=True)
class Pin:
    package: str
    version: str
    # path inside the package -> name of the vendored file
    files: dict[str, str]
    # A package that ships no licence file takes it from this one (same repository).
    licence_from: str | None = None


# The versions and files of Strawberry's GraphiQL template (strawberry/static/graphiql.html),
# less js-cookie (it only reads Django's CSRF cookie).
PINS = (
    Pin("react", "18.2.0", {"umd/react.production.min.js": "react.production.min.js"}),
    Pin(
        "react-dom",
        "18.2.0",
        {"umd/react-dom.production.min.js": "react-dom.production.min.js"},
    ),
    Pin(
        "graphiql",
        "3.8.3",
        {"graphiql.min.js": "graphiql.min.js", "graphiql.min.css": "graphiql.min.css"},
    ),
    Pin(
        "@graphiql/plugin-explorer",
        "1.0.2",
        {
            "dist/index.umd.js": "plugin-explorer.umd.js",
            "dist/style.css": "plugin-explorer.css",
        },
        licence_from="graphiql",
    ),
)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def licence_file_name(package: str) -> str:
    return f"LICENSES/{package.replace('/', '__').lstrip('@')}.txt"


def read_manifest() -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads(MANIFEST.read_text())
    return manifest


def check(manifest: dict[str, Any] | None = None) -> list[str]:
    """Problems with the vendored files (empty when each matches the manifest)."""
    manifest = manifest or read_manifest()
    problems = []
    for package in manifest["packages"]:
        for entry in [*package["files"], package["licence"]]:
            path = VENDOR_DIR / entry["name"]
            if not path.is_file():
                problems.append(f"{entry['name']}: missing")
                continue
            data = path.read_bytes()
            if sha256_hex(data) != entry["sha256"]:
                problems.append(f"{entry['name']}: sha256 differs from the manifest")
            if "integrity" in entry and sri_sha384(data) != entry["integrity"]:
                problems.append(f"{entry['name']}: sha384 differs from the manifest")
    return problems


def _npm_pack(spec: str, into: Path) -> dict[str, Any]:
    """Fetch a package tarball with npm (which verifies it against the registry)."""
    completed = subprocess.run(
        ["npm", "pack", spec, "--json", "--pack-destination", str(into)],
        capture_output=True,
        text=True,
        check=True,
    )
    packed: list[dict[str, Any]] = json.loads(completed.stdout)
    return packed[0]


def _members(tarball: Path) -> dict[str, bytes]:
    members = {}
    with tarfile.open(tarball) as archive:
        for member in archive.getmembers():
            extracted = archive.extractfile(member) if member.isfile() else None
            if extracted is not None:
                members[member.name.removeprefix("package/")] = extracted.read()
    return members


def _licence(members: dict[str, bytes]) -> bytes | None:
    return next((members[n] for n in LICENCE_NAMES if n in members), None)


def _entry(name: str, data: bytes, *, integrity: bool = True) -> dict[str, str]:
    entry = {"name": name, "sha256": sha256_hex(data)}
    if integrity:
        entry["integrity"] = sri_sha384(data)
    return entry


def fetch(pin: Pin, workdir: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Pack one pinned package; its manifest entry and the files to write."""
    packed = _npm_pack(f"{pin.package}@{pin.version}", workdir)
    members = _members(workdir / packed["filename"])
    files = {name: members[source] for source, name in pin.files.items()}
    entry = {
        "package": pin.package,
        "version": pin.version,
        "tarball_integrity": packed["integrity"],
        "files": [
            {"source": source, **_entry(name, files[name])}
            for source, name in pin.files.items()
        ],
    }
    licence = _licence(members)
    if licence is not None:
        entry["licence"] = _entry(
            licence_file_name(pin.package), licence, integrity=False
        )
        files[entry["licence"]["name"]] = licence
    return entry, files


def _refuse_changed_versions(old: dict[str, Any], new: list[dict[str, Any]]) -> None:
    recorded = {(p["package"], p["version"]): p for p in old.get("packages", [])}
    for package in new:
        before = recorded.get((package["package"], package["version"]))
        if before is None:
            continue
        same = before["tarball_integrity"] == package["tarball_integrity"] and [
            f["sha256"] for f in before["files"]
        ] == [f["sha256"] for f in package["files"]]
        if not same:
            sys.exit(
                f"{package['package']}@{package['version']} differs from the manifest: "
                "a published version changed; refusing to vendor it"
            )


def refresh() -> None:
    packages: list[dict[str, Any]] = []
    contents: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as workdir:
        for pin in PINS:
            entry, files = fetch(pin, Path(workdir))
            packages.append(entry)
            contents.update(files)
    by_name = {p["package"]: p for p in packages}
    for pin, package in zip(PINS, packages, strict=True):
        if "licence" not in package:
            donor = by_name[pin.licence_from] if pin.licence_from else None
            if donor is None or "licence" not in donor:
                sys.exit(f"{pin.package}@{pin.version} ships no licence file")
            package["licence"] = {**donor["licence"], "from": donor["package"]}
    old = read_manifest() if MANIFEST.exists() else {}
    _refuse_changed_versions(old, packages)
    for name, data in contents.items():
        path = VENDOR_DIR / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    manifest = {
        "about": "Files of the GraphiQL page, vendored by python -m app.http.refresh_graphiql",
        "packages": packages,
    }
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    problems = check(manifest)
    if problems:
        sys.exit("\n".join(problems))
    for package in packages:
        print(f"vendored {package['package']}@{package['version']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="only check the files against the manifest"
    )
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            return 1
        print("the vendored GraphiQL files match manifest.json")
        return 0
    refresh()
    return 0


if __name__ == "__main__":
    sys.exit(main())
