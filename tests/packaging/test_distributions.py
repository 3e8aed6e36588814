"""Both packages build as wheels and sdists that PyPI would accept (`twine check --strict`).

Builds run without network (`--no-build-isolation`, hatchling comes with the dev extra), so CI checks the
release artefacts on every run instead of on release day.
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NDX = ROOT / "ndx_extensions" / "ndx-ldns"


def run(*args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run("-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(out), str(ROOT), str(NDX))
    for project in (ROOT, NDX):
        run("-m", "build", "--sdist", "--no-isolation", "--outdir", str(out), str(project))
    return out


def metadata(wheel: Path) -> tuple[list[str], dict[str, list[str]]]:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        text = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    message = Parser().parsestr(text)
    return names, {key: message.get_all(key) or [] for key in set(message.keys())}


def test_twine_check_passes_on_all_four_artefacts(dist: Path) -> None:
    artefacts = sorted(dist.iterdir())
    assert [a.name for a in artefacts] == [
        "ndx_ldns-0.1.0-py3-none-any.whl",
        "ndx_ldns-0.1.0.tar.gz",
        "nwb_ldns-0.1.0-py3-none-any.whl",
        "nwb_ldns-0.1.0.tar.gz",
    ]
    output = run("-m", "twine", "check", "--strict", *map(str, artefacts))
    assert output.count("PASSED") == 4, output


def test_nwb_ldns_wheel_is_one_package_with_its_cli_and_extras(dist: Path) -> None:
    names, meta = metadata(dist / "nwb_ldns-0.1.0-py3-none-any.whl")
    top_level = {name.split("/")[0] for name in names}
    assert top_level == {"nwb_ldns", "nwb_ldns-0.1.0.dist-info"}  # no separate CLI package
    assert "nwb_ldns/cli/main.py" in names and "nwb_ldns/__main__.py" in names
    entry_points = zipfile.ZipFile(dist / "nwb_ldns-0.1.0-py3-none-any.whl").read(
        "nwb_ldns-0.1.0.dist-info/entry_points.txt"
    ).decode()
    assert "nwb-ldns = nwb_ldns.cli.main:cli" in entry_points
    assert meta["License-Expression"] == ["MIT"]
    assert "nwb_ldns-0.1.0.dist-info/licenses/LICENSE" in names
    assert {"dandi", "interop"} <= set(meta["Provides-Extra"])
    core = [req for req in meta["Requires-Dist"] if "extra ==" not in req]
    assert not any(req.startswith(("dandi", "nwbinspector", "pynapple", "spikeinterface")) for req in core), core
    assert meta["Requires-Python"] == [">=3.11"]


def test_ndx_ldns_wheel_carries_its_spec_licence_and_contact(dist: Path) -> None:
    names, meta = metadata(dist / "ndx_ldns-0.1.0-py3-none-any.whl")
    assert {"ndx_ldns/spec/ndx-ldns.namespace.yaml", "ndx_ldns/spec/ndx-ldns.extensions.yaml"} <= set(names)
    assert meta["License-Expression"] == ["MIT"]
    namespace = zipfile.ZipFile(dist / "ndx_ldns-0.1.0-py3-none-any.whl").read(
        "ndx_ldns/spec/ndx-ldns.namespace.yaml"
    ).decode()
    contact = re.search(r"contact:\n((?:\s+- .*\n)+)", namespace)
    assert contact and "http" in contact.group(1), namespace


def test_readme_on_pypi_has_no_relative_images() -> None:
    """PyPI renders the README without the repository, so a relative image path would show as broken."""
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)|<img[^>]+src=\"([^\"]+)\"", (ROOT / "README.md").read_text())
    relative = [src for pair in images for src in pair if src and not src.startswith(("https://", "http://"))]
    assert relative == []
