"""An installed wheel carries its rule packs: the validator works outside a checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_carries_the_packs_and_validates_from_an_install(tmp_path, shared) -> None:
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "validator/rules/core.yaml" in names and "validator/rules/r4/imagingstudy.yaml" in names
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    # Run from an empty folder with only the installed copy on the path (dependencies come from
    # this environment): the packs must be found inside the installed package.
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import validator, validator.resources as r;"
        "assert str(r.rules_dir()).startswith(sys.argv[1]), r.rules_dir();"
        "from validator import Validator; res = Validator().validate_file(sys.argv[2]);"
        "print(validator.__file__, sum(len(x.issues) for x in res))"
    )
    example = shared / "examples" / "r4" / "ImagingStudy-example.json"
    run = subprocess.run(
        [sys.executable, "-c", code, str(target), str(example)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[0].startswith(str(target)) and run.stdout.split()[1] == "0"
