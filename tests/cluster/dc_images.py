"""Builds the cluster's images without Docker or a registry, cached by content.

pause   a static C program, committed by buildah from scratch.
base    `debootstrap --variant=minbase bookworm` plus python3, committed by buildah.
runner  runner-image/Dockerfile built by `buildah bud` on the base, offline,
        with a wheelhouse prepared on the host by pip.
spark   (build_spark, `build-images --spark`) spark-image/Dockerfile on a second
        debootstrap base that adds Debian's Java runtime, offline, with the runner's
        wheelhouse, a pyspark wheelhouse and the Maven cache of tests/setup-spark.sh.
console (build_console, `build-images --console`) runner-image/Dockerfile's target
        console on a third debootstrap base that adds Graphviz, with the same wheelhouse.
Each ends up as a docker-archive under the cache, which `ctr images import`
loads into containerd's k8s.io namespace.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tomllib
from pathlib import Path

from dc_common import (
    BASE_IMAGE,
    CONSOLE_BASE_IMAGE,
    CONSOLE_IMAGE,
    HERE,
    PAUSE_IMAGE,
    REPO,
    RUNNER_IMAGE,
    SPARK_BASE_IMAGE,
    SPARK_IMAGE,
    Paths,
    log,
    run,
    sha12,
)

BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
# The Spark image's base: the same, plus Debian's Java 17 runtime (debootstrap resolves its dependencies).
SPARK_BASE_PACKAGES = (*BASE_PACKAGES, "openjdk-17-jre-headless")
# The console's: plus Graphviz, whose dot lays the pipeline graphs out.
CONSOLE_BASE_PACKAGES = (*BASE_PACKAGES, "graphviz")
BASE_SUITE = "bookworm"
# Bump to rebuild the base when the recipe below changes.
BASE_RECIPE = "1"
BASE_TRIM = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
             "usr/share/info", "usr/share/locale", "var/log")


def _buildah_argv(paths: Paths) -> list[str | os.PathLike[str]]:
    # Its own storage under the cache (a clean machine is `rm -rf` of the cache); the
    # run root (locks, mounts) is per storage, as containers-storage expects.
    runroot = f"/run/kdp-buildah-{sha12(str(paths.buildah_root))}"
    return ["buildah", "--root", paths.buildah_root, "--runroot", runroot, "--storage-driver", "overlay"]


def buildah(paths: Paths, *args: str | os.PathLike[str], capture: bool = False) -> str:
    proc = run([*_buildah_argv(paths), *args], capture=capture)
    return proc.stdout.strip() if capture else ""


def _has_image(paths: Paths, name: str) -> bool:
    proc = run([*_buildah_argv(paths), "inspect", "--type", "image", name], check=False, capture=True)
    return proc.returncode == 0


def _push_archive(paths: Paths, image: str, archive: Path) -> None:
    tmp = archive.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    buildah(paths, "push", "--quiet", image, f"docker-archive:{tmp}:{image}")
    tmp.rename(archive)


def build_pause(paths: Paths) -> Path:
    source = HERE / "pause" / "pause.c"
    out = paths.images / f"pause-{sha12(source.read_bytes(), PAUSE_IMAGE)}"
    archive = out / "image.tar"
    if archive.exists():
        return archive
    log(f"building {PAUSE_IMAGE}")
    out.mkdir(parents=True, exist_ok=True)
    binary = out / "pause"
    run(["gcc", "-static", "-Os", "-s", "-Wall", "-o", binary, source])
    ctr = buildah(paths, "from", "scratch", capture=True)
    try:
        buildah(paths, "copy", ctr, binary, "/pause")
        buildah(paths, "config", "--entrypoint", '["/pause"]', "--user", "65535:65535", ctr)
        buildah(paths, "commit", "--quiet", ctr, PAUSE_IMAGE)
    finally:
        buildah(paths, "rm", ctr)
    _push_archive(paths, PAUSE_IMAGE, archive)
    return archive


def debian_mirror() -> str:
    """The Debian mirror this machine's apt already uses (never a name of our own choosing)."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        if path.is_file():
            mirror = _mirror_in(path.read_text(errors="replace"))
            if mirror:
                return mirror
    raise RuntimeError(f"no Debian '{BASE_SUITE}' source in /etc/apt/sources.list{{,.d/*}} for debootstrap")


def _mirror_in(text: str) -> str | None:
    # One-line format: deb [opts] URI SUITE COMPONENTS...
    for line in text.splitlines():
        m = re.match(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s", line)
        if m and m.group(2) == BASE_SUITE:
            return m.group(1)
    # deb822 format: stanzas separated by blank lines.
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, flags=re.M))
        if "deb" in fields.get("Types", "").split() and BASE_SUITE in fields.get("Suites", "").split():
            return fields["URIs"].split()[0]
    return None


def build_base(paths: Paths, image: str = BASE_IMAGE, packages: tuple[str, ...] = BASE_PACKAGES,
               prefix: str = "base") -> str:
    """Returns the base image's key; builds the rootfs tarball and the buildah image if missing."""
    key = sha12(BASE_SUITE, ",".join(packages), BASE_RECIPE)
    out = paths.images / f"{prefix}-{BASE_SUITE}-{key}"
    rootfs_tar = out / "rootfs.tar"
    if not rootfs_tar.exists():
        _debootstrap(out, rootfs_tar, packages)
    stamp = out / "buildah.stamp"
    if not (stamp.exists() and _has_image(paths, image)):
        log(f"committing {image}")
        ctr = buildah(paths, "from", "scratch", capture=True)
        try:
            buildah(paths, "add", ctr, rootfs_tar, "/")
            buildah(paths, "config", "--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "--env", "LANG=C.UTF-8", "--cmd", '["python3"]', ctr)
            buildah(paths, "commit", "--quiet", ctr, image)
        finally:
            buildah(paths, "rm", ctr)
        stamp.write_text(key)
    return key


def _debootstrap(out: Path, rootfs_tar: Path, packages: tuple[str, ...]) -> None:
    mirror = debian_mirror()
    rootfs = out / "rootfs"
    log(f"debootstrap --variant=minbase {BASE_SUITE} (+{','.join(packages)}) from {mirror}")
    shutil.rmtree(rootfs, ignore_errors=True)
    rootfs.mkdir(parents=True)
    run(["debootstrap", "--variant=minbase", f"--include={','.join(packages)}",
         BASE_SUITE, rootfs, mirror])
    for rel in BASE_TRIM:
        target = rootfs / rel
        if target.is_dir():
            for child in target.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    # /dev, /proc and /sys are provided by the runtime; device nodes do not belong in a layer.
    tmp = rootfs_tar.with_suffix(".tmp")
    run(["tar", "--numeric-owner", "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*",
         "-C", rootfs, "-cf", tmp, "."])
    tmp.rename(rootfs_tar)
    shutil.rmtree(rootfs)


CONSTRAINTS = REPO / "runner-image" / "constraints.txt"


def _requirements() -> list[str]:
    """The runner's dependencies and the console's extra (the console target installs both from here)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps: list[str] = [*project["dependencies"], *project["optional-dependencies"]["console"]]
    return [*deps, "setuptools>=69", "wheel"]


def build_wheelhouse(paths: Paths) -> Path:
    """Wheels for the image's dependencies, fetched on the host (its pip config, proxy and CA apply)."""
    reqs = _requirements()
    out = paths.wheels / sha12(*reqs, CONSTRAINTS.read_text(), f"py{sys.version_info[0]}.{sys.version_info[1]}")
    if (out / ".complete").exists():
        return out
    if sys.version_info[:2] != (3, 11):
        log(f"warning: host python is {sys.version.split()[0]}; image python is 3.11, wheels may not fit")
    log(f"pip wheel {len(reqs)} requirements into {out}")
    out.mkdir(parents=True, exist_ok=True)
    # The constraints pin the closure: without them pip backtracks through botocore's
    # hundreds of releases for many minutes.
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", out, "-c", CONSTRAINTS, *reqs],
        capture=True)
    (out / ".complete").write_text("\n".join(reqs))
    return out


def _stage_context(dest: Path, spark: bool = False) -> None:
    """The build context: only what the Dockerfile copies (the same files a docker build would send)."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    shutil.copy2(REPO / "pyproject.toml", dest)
    shutil.copy2(REPO / "README.md", dest)
    shutil.copytree(REPO / "operator", dest / "operator",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"))
    shutil.copytree(REPO / "runner-image", dest / "runner-image")
    if spark:
        shutil.copytree(REPO / "spark-image", dest / "spark-image", ignore=shutil.ignore_patterns("__pycache__"))


def _tree_digest(root: Path) -> str:
    parts: list[bytes | str] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        parts += [str(path.relative_to(root)), path.read_bytes()]
    return sha12(*parts)


def build_runner(paths: Paths) -> Path:
    """Builds the project image if its inputs changed; returns its docker-archive."""
    base_key = build_base(paths)
    wheels = build_wheelhouse(paths)
    context = paths.images / "runner-context"
    _stage_context(context)
    key = sha12(_tree_digest(context), base_key, wheels.name, RUNNER_IMAGE)
    archive = paths.images / f"runner-{key}.tar"
    if archive.exists() and _has_image(paths, RUNNER_IMAGE):
        return archive
    log(f"buildah bud {RUNNER_IMAGE} (context {key})")
    buildah(paths, "bud", "--quiet", "--layers", "--pull=never", "--network=none",
            "--build-arg", f"BASE_IMAGE={BASE_IMAGE}",
            "--build-arg", "PIP_INSTALL_OPTS=--no-index --find-links /wheels",
            "--volume", f"{wheels}:/wheels:ro",
            "-f", context / "runner-image" / "Dockerfile", "-t", RUNNER_IMAGE, context)
    for old in paths.images.glob("runner-*.tar"):
        old.unlink()
    _push_archive(paths, RUNNER_IMAGE, archive)
    return archive


SPARK_CONSTRAINTS = REPO / "spark-image" / "constraints.txt"
SPARK_SETUP = REPO / "tests" / "setup-spark.sh"


def build_spark_wheelhouse(paths: Paths) -> Path:
    """pyspark and py4j as pinned by spark-image/constraints.txt (pip builds pyspark's wheel from its sdist)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    reqs: list[str] = list(project["project"]["optional-dependencies"]["spark"])
    out = paths.wheels / f"spark-{sha12(*reqs, SPARK_CONSTRAINTS.read_text())}"
    if (out / ".complete").exists():
        return out
    log(f"pip wheel {' '.join(reqs)} into {out}")
    out.mkdir(parents=True, exist_ok=True)
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", out, "-c", SPARK_CONSTRAINTS,
         *reqs, "py4j"], capture=True)
    (out / ".complete").write_text("\n".join(reqs))
    return out


def spark_jars() -> Path:
    """The Maven cache of tests/setup-spark.sh (run once; it prints its folder)."""
    proc = run(["bash", SPARK_SETUP], capture=True, env={**os.environ, "PYTHON": sys.executable})
    return Path(proc.stdout.strip().splitlines()[-1]) / "jars"


def build_spark(paths: Paths) -> Path:
    """The Spark image (spark-image/Dockerfile), if its inputs changed; returns its docker-archive."""
    base_key = build_base(paths, SPARK_BASE_IMAGE, SPARK_BASE_PACKAGES, prefix="spark-base")
    wheels = build_wheelhouse(paths)
    spark_wheels = build_spark_wheelhouse(paths)
    jars = spark_jars()
    context = paths.images / "spark-context"
    _stage_context(context, spark=True)
    # The jars are pinned by jars.lock (in the context) and checked in the build: their names suffice here.
    key = sha12(_tree_digest(context), base_key, wheels.name, spark_wheels.name, SPARK_IMAGE)
    archive = paths.images / f"spark-{key}.tar"
    if archive.exists() and _has_image(paths, SPARK_IMAGE):
        return archive
    log(f"buildah bud {SPARK_IMAGE} (context {key})")
    buildah(paths, "bud", "--quiet", "--layers", "--pull=never", "--network=none",
            "--build-arg", f"BASE_IMAGE={SPARK_BASE_IMAGE}",
            "--build-arg", "PIP_INSTALL_OPTS=--no-index --find-links /wheels --find-links /spark-wheels",
            "--build-arg", "JARS_FROM=--from /jars",
            "--volume", f"{wheels}:/wheels:ro", "--volume", f"{spark_wheels}:/spark-wheels:ro",
            "--volume", f"{jars}:/jars:ro",
            "-f", context / "spark-image" / "Dockerfile", "-t", SPARK_IMAGE, context)
    for old in paths.images.glob("spark-*.tar"):
        old.unlink()
    _push_archive(paths, SPARK_IMAGE, archive)
    return archive


def build_console(paths: Paths) -> Path:
    """The console image (runner-image/Dockerfile, target console), if its inputs changed; its docker-archive."""
    base_key = build_base(paths)  # the runner's stages (deps, wheel) build on the plain base
    console_base_key = build_base(paths, CONSOLE_BASE_IMAGE, CONSOLE_BASE_PACKAGES, prefix="console-base")
    wheels = build_wheelhouse(paths)
    context = paths.images / "console-context"
    _stage_context(context)
    key = sha12(_tree_digest(context), base_key, console_base_key, wheels.name, CONSOLE_IMAGE)
    archive = paths.images / f"console-{key}.tar"
    if archive.exists() and _has_image(paths, CONSOLE_IMAGE):
        return archive
    log(f"buildah bud --target console {CONSOLE_IMAGE} (context {key})")
    buildah(paths, "bud", "--quiet", "--layers", "--pull=never", "--network=none", "--target", "console",
            "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "--build-arg", f"CONSOLE_BASE_IMAGE={CONSOLE_BASE_IMAGE}",
            "--build-arg", "PIP_INSTALL_OPTS=--no-index --find-links /wheels",
            "--volume", f"{wheels}:/wheels:ro",
            "-f", context / "runner-image" / "Dockerfile", "-t", CONSOLE_IMAGE, context)
    for old in paths.images.glob("console-*.tar"):
        old.unlink()
    _push_archive(paths, CONSOLE_IMAGE, archive)
    return archive


def build_all(paths: Paths, spark: bool = False) -> dict[str, Path]:
    images = {PAUSE_IMAGE: build_pause(paths), RUNNER_IMAGE: build_runner(paths)}
    if spark:
        images[SPARK_IMAGE] = build_spark(paths)
    return images
