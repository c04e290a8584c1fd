"""platform/ holds scripts only: a package of that name would shadow the standard library."""

import platform
import subprocess
import sys
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_standard_library_platform_is_not_shadowed_in_process():
    assert uuid.uuid4()
    assert platform.system()


def test_standard_library_platform_is_not_shadowed_from_the_repo_root():
    result = subprocess.run(
        [sys.executable, "-c", "import uuid, platform; uuid.uuid4(); print(platform.system())"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == platform.system()


def test_platform_directory_is_not_a_package():
    assert not (REPO / "platform" / "__init__.py").exists()
