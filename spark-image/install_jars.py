"""Puts the jars of jars.lock into Spark's jars/ folder, each checked against its SHA-256.

A jar is taken from the folder given with --from (the dev cluster's build mounts the Maven cache of
tests/setup-spark.sh there, without network) when it is there, else downloaded from Maven Central (a plain
`docker build`). Either way a jar whose digest differs from the lock stops the build.
Usage: python3 install_jars.py LOCK DEST [--from DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import urllib.request
from pathlib import Path

MAVEN_CENTRAL = "https://repo1.maven.org/maven2/"


def read_lock(text: str) -> list[tuple[str, str, str]]:
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 3 or len(parts[1]) != 64 or "/" in parts[0] or ".." in parts[2]:
            raise ValueError(f"jars.lock line {number}: expected NAME SHA256 MAVEN-PATH, got {line!r}")
        entries.append((parts[0], parts[1].lower(), parts[2]))
    return entries


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def install(lock: Path, dest: Path, source: Path | None) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for name, digest, maven_path in read_lock(lock.read_text()):
        target = dest / name
        tmp = dest / f".{name}.tmp"
        local = source / name if source is not None else None
        if local is not None and local.is_file():
            shutil.copyfile(local, tmp)
            origin = str(local)
        else:
            origin = MAVEN_CENTRAL + maven_path
            with urllib.request.urlopen(origin, timeout=120) as response, tmp.open("wb") as out:
                shutil.copyfileobj(response, out, 1 << 20)
        actual = sha256(tmp)
        if actual != digest:
            tmp.unlink()
            raise SystemExit(f"install_jars: {name} from {origin} has SHA-256 {actual}, jars.lock says {digest}")
        os.replace(tmp, target)
        print(f"install_jars: {name} from {origin}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lock", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--from", dest="source", type=Path, default=None)
    args = parser.parse_args(argv)
    install(args.lock, args.dest, args.source)


if __name__ == "__main__":
    main()
