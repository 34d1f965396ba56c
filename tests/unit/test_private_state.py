"""Runtime state is private: folders 0700, files 0600 from creation, child processes under umask 077.

Every test runs with this process's umask at the usual 022, so a file that
ModelLedger or a child creates without taking care shows up as 0644.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelledger.network.binaries import FabricBinaries
from modelledger.network.ca import BOOTSTRAP_ADMIN, CAServer
from modelledger.network.layout import NetworkLayout
from modelledger.network.topology import load_topology
from modelledger.runtime import private_files
from modelledger.runtime.lifecycle import claim_marked_dir
from modelledger.runtime.private_files import make_private_dir, read_or_create_secret, write_private_file
from modelledger.runtime.processes import ProcessSupervisor
from modelledger.runtime.settings import DEFAULT_TOPOLOGY
from tests.private_state import shared_entries
from tests.unit.pki_fakes import make_cert, write_pair


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_new_state_folder_and_its_parents_are_created_0700(tmp_path: Path) -> None:
    state = tmp_path / "state"
    claim_marked_dir(state / "s3", ".marker", "ours")
    assert mode(state) == 0o700 and mode(state / "s3") == 0o700
    assert mode(state / "s3" / ".marker") == 0o600


def test_claiming_a_part_folder_of_ours_tightens_it_but_leaves_existing_parents_alone(tmp_path: Path) -> None:
    part = tmp_path / "state" / "mlflow"
    part.mkdir(parents=True)
    (part / ".marker").write_text("ours\n")
    part.chmod(0o755)
    (tmp_path / "state").chmod(0o751)
    claim_marked_dir(part, ".marker", "ours")
    assert mode(part) == 0o700
    assert mode(tmp_path / "state") == 0o751  # the user's own folder (MODELLEDGER_STATE_DIR may be anywhere)


def test_private_files_are_created_0600_exclusively_never_opened_under_their_final_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[tuple[str, int, int]] = []
    real_open = os.open

    def spy(path: str | os.PathLike[str], flags: int, mode: int = 0o777, *args: object, **kwargs: object) -> int:
        opened.append((str(path), flags, mode))
        return real_open(path, flags, mode, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(private_files.os, "open", spy)
    target = tmp_path / "new" / "secret"
    write_private_file(target, "s3cr3t\n")
    write_private_file(target, b"rotated\n")
    # Each write opens a new name of its own beside the target (never the target, never a shared name).
    assert len(opened) == 2 and len({p for p, _, _ in opened}) == 2
    assert all(Path(p).parent == target.parent and Path(p).name.startswith(".secret.") for p, _, _ in opened)
    assert all(flags & os.O_CREAT and flags & os.O_EXCL and m == 0o600 for _, flags, m in opened)
    assert target.read_text() == "rotated\n" and mode(target) == 0o600 and mode(target.parent) == 0o700
    assert sorted(p.name for p in target.parent.iterdir()) == ["secret"]  # no temporary file left


def test_concurrent_writers_each_rename_their_own_complete_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Writer B starts while writer A's file is written but not yet renamed: neither touches the other's file.
    target = tmp_path / "secret"
    real_fsync = os.fsync
    started: list[str] = []

    def fsync_then_b(fd: int) -> None:
        real_fsync(fd)
        if not started:
            started.append("B")
            write_private_file(target, "written by B\n")

    monkeypatch.setattr(private_files.os, "fsync", fsync_then_b)
    write_private_file(target, "written by A\n")  # with a shared temporary name, B removed A's file: A failed
    assert target.read_text() == "written by A\n" and mode(target) == 0o600  # the last rename wins, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret"]


def test_the_first_writer_of_a_secret_wins_and_the_others_read_it(tmp_path: Path) -> None:
    # Another process creates the secret between this one's check and its write: this one must not replace it.
    target = tmp_path / "s" / "token"

    def make_while_another_wins() -> str:
        write_private_file(target, "the winner's\n")
        return "the loser's"

    assert read_or_create_secret(target, make_while_another_wins) == "the winner's"
    assert target.read_text() == "the winner's\n" and mode(target) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["token"]
    assert read_or_create_secret(target, lambda: "never") == "the winner's"


def test_make_private_dir_makes_only_missing_folders_and_refuses_a_file_in_the_way(tmp_path: Path) -> None:
    make_private_dir(tmp_path / "a" / "b" / "c")
    assert [mode(tmp_path / p) for p in ("a", "a/b", "a/b/c")] == [0o700] * 3
    (tmp_path / "f").write_text("x")
    with pytest.raises(FileExistsError):
        make_private_dir(tmp_path / "f")


def test_supervised_processes_run_with_umask_077_in_a_private_folder(tmp_path: Path) -> None:
    root = tmp_path / "bridge"
    root.mkdir(mode=0o755)
    (root / "logs").mkdir(mode=0o755)
    (root / "logs" / "child.log").write_text("an old log\n")
    sup = ProcessSupervisor(root)
    code = (
        "import os, time\n"
        "m = os.umask(0); os.umask(m); print(f'umask {m:04o}', flush=True)\n"
        "open('made-by-child', 'w').close(); os.mkdir('dir-by-child')\n"
        "time.sleep(60)\n"
    )
    sup.start("child", [sys.executable, "-c", code], dict(os.environ), cwd=root)
    try:
        for _ in range(200):
            if (root / "dir-by-child").is_dir() and "umask" in sup.log_path("child").read_text():
                break
            time.sleep(0.05)
        assert "umask 0077" in sup.log_path("child").read_text()
        assert mode(root / "made-by-child") == 0o600 and mode(root / "dir-by-child") == 0o700
    finally:
        sup.stop("child")
    assert mode(root) == 0o700  # tightened before the start
    assert mode(sup.pid_dir) == 0o700 and mode(sup.log_path("child")) == 0o600


def test_fabric_tools_run_with_umask_077(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "configtxgen"
    tool.write_text('#!/bin/sh\numask\necho block > "$1"\n')
    tool.chmod(0o755)
    out = tmp_path / "genesis.block"
    assert FabricBinaries(bin_dir, tmp_path).run("configtxgen", [str(out)]).strip() == "0077"
    assert mode(out) == 0o600


# A stand-in for `fabric-ca-server init`: it writes its config the way the real
# server does (the bootstrap password inside, the file's mode left to the umask),
# records that file's mode and its folder's at the moment it was created (before
# ModelLedger could change anything), and puts a CA certificate and key in place.
FAKE_CA_SERVER = """#!/bin/sh
set -e
here=$(dirname "$0")
home="$3"
cfg="$home/fabric-ca-server-config.yaml"
printf 'registry:\\n  identities:\\n    - name: %s\\n      pass: %s\\n' \\
  "${FABRIC_CA_SERVER_BOOT%%:*}" "${FABRIC_CA_SERVER_BOOT#*:}" > "$cfg"
stat -c '%a' "$cfg" "$home" > "$here/modes-at-init"
mkdir -p "$home/msp/keystore"
cp "$here/ca-cert.pem" "$home/ca-cert.pem"
cp "$here/ca.key" "$home/msp/keystore/ca_sk"
echo 'fabric-ca-server-db' > "$home/fabric-ca-server.db"
"""


def write_ca_fixture(bin_dir: Path) -> None:
    key, cert = make_cert("ca.org1.example.com", ca=True, days=1)
    write_pair(bin_dir, "ca", key, cert)
    (bin_dir / "ca.pem").rename(bin_dir / "ca-cert.pem")
    tool = bin_dir / "fabric-ca-server"
    tool.write_text(FAKE_CA_SERVER)
    tool.chmod(0o755)


def test_the_ca_config_holding_the_bootstrap_password_is_never_readable_by_others(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    write_ca_fixture(bin_dir)
    state = tmp_path / "state"
    claim_marked_dir(state / "network", ".marker", "ours")
    layout = NetworkLayout(state / "network")
    org = load_topology(DEFAULT_TOPOLOGY, port_base=20000).organizations[0]
    server = CAServer(org.ca, org, layout, FabricBinaries(bin_dir, tmp_path))

    server.initialize()

    config = layout.ca_home(org.ca) / "fabric-ca-server-config.yaml"
    password = layout.secret_file(org.name, BOOTSTRAP_ADMIN).read_text().strip()
    assert f"pass: {password}" in config.read_text()  # the stand-in wrote what the real server writes
    config_mode, home_mode = (bin_dir / "modes-at-init").read_text().split()
    assert (config_mode, home_mode) == ("600", "700"), "modes of the CA config and its folder when init wrote it"
    assert server.initialized
    assert shared_entries(state) == []
