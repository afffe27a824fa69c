"""Profile packs are read (and schema-checked) up front, compiled only when a run needs them, and a
broken one is a usage error in every command (exit 2, naming the file and the field)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from validator import Validator
from validator.compile.catalog import _profiles
from validator.compile.packs import PackError
from validator.resources import profiles_dir
from validator.versions import VERSIONS

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "payloads"
IMR = "https://profiles.ihe.net/RAD/IMR/StructureDefinition/imr-imagingstudy"
ENDPOINT = "https://profiles.ihe.net/RAD/IMR/StructureDefinition/imaging-study-endpoint"


def _fresh_set(folder: Path):
    from validator.compile.catalog import _plan
    from validator.compile.plan import pack_files
    from validator.compile.profiles import compile_profiles
    from validator.resources import rules_dir

    return compile_profiles(pack_files(folder), _plan(VERSIONS["R4"], rules_dir()))


def test_a_profile_set_compiles_nothing_until_a_profile_is_asked_for() -> None:
    profile_set = _fresh_set(profiles_dir())
    assert profile_set._compiled == {}
    assert profile_set.header(IMR)["type"] == "ImagingStudy"
    assert profile_set.find("imr").url == IMR
    assert set(profile_set._compiled) == {IMR}


def test_a_run_without_profiles_compiles_none(tmp_path) -> None:
    study = tmp_path / "study.json"
    study.write_text('{"resourceType": "ImagingStudy", "id": "s", "status": "available", '
                     '"subject": {"reference": "Patient/p"}}')  # fmt: skip
    _profiles.cache_clear()  # a profile set of its own, which no earlier test has used
    validator = Validator()
    validator.validate_paths([str(study)])
    assert validator.profile_set._compiled == {}


def test_the_target_profiles_are_read_from_the_packs_without_compiling_them() -> None:
    profile_set = _fresh_set(profiles_dir())
    assert profile_set.target_profile_sets() == ((ENDPOINT,),)
    assert profile_set._compiled == {}


def test_a_profile_pack_that_loosens_its_base_is_found_when_the_profile_is_used(tmp_path) -> None:
    folder = tmp_path / "profiles"
    shutil.copytree(profiles_dir(), folder)
    pack = folder / "ihe-imr" / "imr-imagingstudy.yaml"
    pack.write_text(pack.read_text().replace("  started:\n    card: 1..1", "  started:\n    card: 0..5"))
    profile_set = _fresh_set(folder)  # read and schema-checked: fine
    with pytest.raises(PackError) as err:
        profile_set.find("imr")
    assert "imr-imagingstudy.yaml" in str(err.value) and "started" in str(err.value)


def _cli(*args: str, env_folder: Path) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "IMAGING_VALIDATOR_PROFILES": str(env_folder), "IMAGING_VALIDATOR_CACHE": "off"}
    return subprocess.run([sys.executable, "-m", "validator.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120)  # fmt: skip


@pytest.mark.parametrize("command", [["validate", str(EXAMPLES)], ["rules", "list"], ["profiles", "list"]])
def test_a_broken_profile_pack_is_a_usage_error_in_every_command(tmp_path, command) -> None:
    folder = tmp_path / "profiles"
    shutil.copytree(profiles_dir(), folder)
    pack = folder / "ihe-imr" / "imr-imagingstudy.yaml"
    pack.write_text(pack.read_text() + "  bogus: [\n")
    done = _cli(*command, env_folder=folder)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "imr-imagingstudy.yaml" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("command", [["rules", "list"], ["profiles", "list"]])
def test_a_profile_pack_that_loosens_its_base_is_a_usage_error_where_profiles_are_listed(tmp_path, command) -> None:
    folder = tmp_path / "profiles"
    shutil.copytree(profiles_dir(), folder)
    pack = folder / "ihe-imr" / "imr-imagingstudy.yaml"
    pack.write_text(pack.read_text().replace("  started:\n    card: 1..1", "  started:\n    card: 0..5"))
    done = _cli(*command, env_folder=folder)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "imr-imagingstudy.yaml" in done.stderr and "started" in done.stderr
