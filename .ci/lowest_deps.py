"""Prove the lower bounds in pyproject.toml: install every runtime dependency (and the postgres
extra) at exactly its lowest allowed version in a fresh venv, then run a smoke subset of the suite.

    python .ci/lowest_deps.py [VENV_DIR]

A bound that is too low (code using an API a lower release lacks, such as aiohttp's
web.RequestKey before 3.14) fails here, not on a user's machine.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_TOOLS = ["pytest", "pytest-aiohttp", "pytest-asyncio", "hypothesis"]
SMOKE = ["tests/core", "tests/http", "tests/test_plugin_contract.py", "tests/test_plugin_host.py",
         "tests/test_foundations.py", "tests/store/test_store_contract.py", "-m", "not slow", "-q", "-p", "no:cacheprovider"]


def lowest_pins() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = []
    for req in [*project["dependencies"], *project["optional-dependencies"]["postgres"]]:
        m = re.match(r"^([A-Za-z0-9_.\-]+)\s*(?:\[[^\]]*\])?\s*>=\s*([0-9][^,;\s]*)", req)
        if not m:
            raise SystemExit(f"{req!r}: every runtime dependency needs a >= lower bound")
        pins.append(f"{m.group(1)}=={m.group(2)}")
    return pins


def run(*cmd: str | Path) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT)


def main() -> None:
    venv = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / ".venv-lowest"
    run(sys.executable, "-m", "venv", "--clear", venv)
    python = venv / "bin" / "python"
    pins = lowest_pins()
    constraints = venv / "lowest-constraints.txt"
    constraints.write_text("\n".join(pins) + "\n")
    print("lowest allowed versions:", ", ".join(pins), flush=True)
    run(python, "-m", "pip", "install", "-q", *pins)
    # the gateway itself, and the test tools the smoke subset needs, never moving a pinned dependency
    run(python, "-m", "pip", "install", "-q", "--no-deps", "-e", ROOT)
    run(python, "-m", "pip", "install", "-q", "-c", constraints, *TEST_TOOLS)
    run(python, "-m", "pip", "check")
    out = subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True, text=True, check=True).stdout
    installed = {line.split("==")[0].lower().replace("_", "-"): line.split("==")[1]
                 for line in out.splitlines() if "==" in line}
    def release(v: str | None) -> str | None:
        return re.sub(r"(\.0)+$", "", v) if v else v  # 3.14 == 3.14.0

    for pin in pins:
        name, version = pin.split("==")
        got = installed.get(name.lower().replace("_", "-"))
        assert release(got) == release(version), f"{pin} requested, {got} installed"
    run(python, "-m", "pytest", *SMOKE)


if __name__ == "__main__":
    main()
