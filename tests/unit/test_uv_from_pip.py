"""tools/uv_from_pip.py: uv gets pip's index, wheel folders, hosts, CA bundle and timeout, as pip reads them."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "uv_from_pip.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("uv_from_pip", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def exports_for(monkeypatch: pytest.MonkeyPatch, listing: str) -> list[str]:
    """The script's lines when ``pip config list`` prints ``listing``."""
    module = load()
    monkeypatch.setattr(module.subprocess, "run", lambda *a, **k: SimpleNamespace(stdout=listing))
    return module.uv_exports(module.pip_settings())


def test_nothing_configured_gives_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert exports_for(monkeypatch, "") == []


def test_the_environment_wins_over_install_over_global(monkeypatch: pytest.MonkeyPatch) -> None:
    listing = "\n".join(
        [
            "global.index-url='https://global.example/simple'",
            ":env:.index-url='https://env.example/simple'",
            "install.index-url='https://install.example/simple'",
            "global.extra-index-url='https://a.example/simple\\nhttps://b.example/simple'",
        ]
    )
    assert exports_for(monkeypatch, listing) == [
        "export UV_EXTRA_INDEX_URL='https://a.example/simple https://b.example/simple'",
        "export UV_INDEX_URL=https://env.example/simple",
    ]


def test_each_option_gets_uvs_name_and_separator(monkeypatch: pytest.MonkeyPatch) -> None:
    listing = "\n".join(
        [
            ":env:.find-links='/opt/wheels /srv/wheels'",
            "global.cert='/etc/ssl/certs/ca-certificates.crt'",
            ":env:.default-timeout='180'",
            "global.trusted-host='mirror.local other.local'",
            ":env:.no-index='1'",
            "global.disable-pip-version-check='1'",  # nothing of uv's
            "not a setting",
        ]
    )
    assert exports_for(monkeypatch, listing) == [
        "export SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
        "export UV_HTTP_TIMEOUT=180",
        "export UV_FIND_LINKS=/opt/wheels,/srv/wheels",  # uv separates folders with commas
        "export UV_NO_INDEX=1",
        "export UV_INSECURE_HOST='mirror.local other.local'",
    ]


def test_a_false_flag_sets_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert exports_for(monkeypatch, ":env:.no-index='0'\nglobal.no-index='false'") == []


def test_the_lines_are_shell_that_sets_exactly_those_values(tmp_path: Path) -> None:
    # The real pip of this interpreter, with only the environment's settings: the shell reads back each value.
    env = {"PATH": "/usr/bin:/bin", "PIP_CONFIG_FILE": "/dev/null", "PIP_FIND_LINKS": "/x y/wheels /z"}
    out = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, check=True).stdout
    shown = subprocess.run(
        ["bash", "-c", out + 'printf "%s" "$UV_FIND_LINKS"'], capture_output=True, text=True, check=True
    ).stdout
    # pip itself splits find-links at spaces: a folder with a space cannot be given to pip either.
    assert shown == "/x,y/wheels,/z"
