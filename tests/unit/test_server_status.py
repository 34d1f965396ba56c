"""One status record for every server, and the bridge under the one server lifecycle (without MLflow or Fabric)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelledger.mlops.bridge.service import BridgeError
from modelledger.mlops.cli.app import app
from modelledger.mlops.servers.bridge_server import STATE_MARKER, BridgeProcess
from modelledger.runtime.processes import ProcessSupervisor
from modelledger.runtime.settings import BridgeSettings
from modelledger.runtime.status import ServerStatus


def _status(**kw: object) -> ServerStatus:
    base: dict[str, object] = {"name": "minio", "address": "127.0.0.1:9000", "running": True, "healthy": True}
    return ServerStatus(**{**base, "detail": "ready", **kw})  # type: ignore[arg-type]


def test_ok_needs_running_healthy_and_no_problem() -> None:
    assert _status().ok
    assert not _status(running=False, healthy=False).ok
    assert not _status(healthy=False).ok
    assert not _status(problems=("bucket anchored is not as configured",)).ok


def test_to_dict_is_flat_with_the_details_beside_the_fields() -> None:
    st = _status(pid=7, rss_kib=2048, details={"endpoint": "https://127.0.0.1:9000", "bucket": {"ok": True}})
    doc = st.to_dict()
    assert json.loads(json.dumps(doc)) == doc
    assert doc["ok"] is True and doc["pid"] == 7 and doc["detail"] == "ready" and doc["problems"] == []
    assert doc["endpoint"] == "https://127.0.0.1:9000" and doc["bucket"] == {"ok": True}


def test_details_may_not_hide_a_field() -> None:
    with pytest.raises(ValueError, match="reuse field names: ok, pid"):
        _status(details={"pid": 1, "ok": False})


def test_observe_checks_health_only_while_the_process_runs(tmp_path: Path) -> None:
    sup = ProcessSupervisor(tmp_path)
    calls: list[int] = []

    def health() -> tuple[bool, str]:
        calls.append(1)
        return False, "starting"

    st = ServerStatus.observe(sup, "sleeper", "127.0.0.1:1", health, {"kind": "test"})
    assert (st.running, st.healthy, st.detail, st.pid, calls) == (False, False, "not running", None, [])
    assert st.log == str(sup.log_path("sleeper")) and st.details == {"kind": "test"}
    info = sup.start("sleeper", [sys.executable, "-c", "import time; time.sleep(30)"], dict(os.environ))
    try:
        st = ServerStatus.observe(sup, "sleeper", "127.0.0.1:1", health)
        assert (st.running, st.healthy, st.detail, st.pid, calls) == (True, False, "starting", info.pid, [1])
        assert st.rss_kib > 0 and st.peak_rss_kib >= st.rss_kib
    finally:
        sup.stop("sleeper")


# --------------------------------------------------------------------------- the bridge's state folder
def _bridge(tmp_path: Path) -> BridgeProcess:
    return BridgeProcess(BridgeSettings(state_dir=tmp_path, port=31971))


def test_bridge_clean_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    bridge = _bridge(tmp_path)
    precious = bridge.settings.bridge_dir / "keep.txt"
    precious.parent.mkdir()
    precious.write_text("not ours")
    bridge.settings.secret_file.write_text("a secret\n")  # even beside files the bridge would write
    with pytest.raises(BridgeError, match=r"refusing to delete .*bridge: it has no \.modelledger-bridge marker"):
        bridge.clean()
    assert precious.read_text() == "not ours"
    with pytest.raises(BridgeError, match="was not made by ModelLedger"):
        bridge.up()
    assert not (bridge.settings.bridge_dir / STATE_MARKER).exists()


def test_bridge_up_needs_the_webhook_secret_first(tmp_path: Path) -> None:
    with pytest.raises(BridgeError, match=r"no webhook secret .* run `modelledger bridge install` first"):
        _bridge(tmp_path).up()


def test_a_bridge_folder_from_before_markers_is_claimed_and_can_be_cleaned(tmp_path: Path) -> None:
    bridge = _bridge(tmp_path)
    s = bridge.settings
    (s.bridge_dir / "logs").mkdir(parents=True)
    (s.bridge_dir / "logs" / "bridge.log").write_text("old log\n")
    s.outbox_file.write_bytes(b"SQLite format 3\x00")
    s.secret_file.write_text("a secret\n")
    bridge.claim_state_dir()
    assert (s.bridge_dir / STATE_MARKER).is_file()
    assert s.secret_file.read_text() == "a secret\n" and s.outbox_file.exists()
    assert stat.S_IMODE(s.bridge_dir.stat().st_mode) == 0o700
    assert bridge.clean() == []
    assert not s.bridge_dir.exists()


def test_a_marker_less_bridge_folder_with_only_logs_and_pids_is_not_taken_for_ours(tmp_path: Path) -> None:
    bridge = _bridge(tmp_path)
    s = bridge.settings
    (s.bridge_dir / "logs").mkdir(parents=True)
    (s.bridge_dir / "pids").mkdir()
    (s.bridge_dir / "logs" / "other.log").write_text("someone else's log\n")
    with pytest.raises(BridgeError, match="was not made by ModelLedger"):
        bridge.claim_state_dir()
    with pytest.raises(BridgeError, match=r"refusing to delete .*bridge: it has no \.modelledger-bridge marker"):
        bridge.clean()
    assert (s.bridge_dir / "logs" / "other.log").is_file() and not (s.bridge_dir / STATE_MARKER).exists()
    s.secret_file.write_text("a secret\n")  # what only the bridge writes: now the folder is its own
    bridge.claim_state_dir()
    assert (s.bridge_dir / STATE_MARKER).is_file()


def test_bridge_serve_without_s3_credentials_fails_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelledger.mlops.servers.tracking_auth import ensure_user_files
    from modelledger.runtime.settings import MlflowSettings

    monkeypatch.setenv("MODELLEDGER_STATE_DIR", str(tmp_path))
    monkeypatch.setattr("modelledger.mlops.cli.bridge.configure_logging", lambda: None)
    monkeypatch.setattr("signal.signal", lambda *_: None)
    settings = BridgeSettings(state_dir=tmp_path)
    settings.bridge_dir.mkdir()
    settings.secret_file.write_text("a secret\n")
    ensure_user_files(MlflowSettings(state_dir=tmp_path))  # the bridge's MLflow user is there, its S3 key is not
    result = CliRunner().invoke(app, ["bridge", "serve"])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    message = result.output.replace("\n", "")  # one message (rich wraps it at the terminal's width), no traceback
    assert message.startswith("error: no S3 credentials for bridge at ") and message.endswith("run `make s3-up` first")


def test_bridge_install_marks_the_folder_before_it_writes_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELLEDGER_STATE_DIR", str(tmp_path))
    seen: list[bool] = []

    def fake_install(settings: BridgeSettings, _mlflow: object, rotate: bool = False) -> str:
        seen.append((settings.bridge_dir / STATE_MARKER).is_file())
        settings.secret_file.write_text("a secret\n")
        return "created webhook 1"

    monkeypatch.setattr("modelledger.mlops.cli.bridge.install_webhook", fake_install)
    result = CliRunner().invoke(app, ["bridge", "install", "--json"])
    assert result.exit_code == 0, result.output
    assert seen == [True]
    result = CliRunner().invoke(app, ["bridge", "clean", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"stopped": [], "removed": str(tmp_path / "bridge")}


def test_bridge_status_of_a_running_but_unhealthy_process(tmp_path: Path) -> None:
    bridge = _bridge(tmp_path)
    bridge.claim_state_dir()
    argv = [sys.executable, "-c", "import time; time.sleep(30)"]
    info = bridge.supervisor.start("bridge", argv, dict(os.environ), tag="127.0.0.1:31971")
    try:
        st = bridge.status()
        assert (st.name, st.address, st.running, st.healthy, st.pid) == (
            "bridge",
            "127.0.0.1:31971",
            True,
            False,
            info.pid,
        )
        # The ledger follower: only its checkpoint (none yet) while the bridge does not answer.
        want = {"url": "http://127.0.0.1:31971/webhooks/mlflow", "follower": {"block": None}}
        assert st.details == want and not st.ok
    finally:
        assert bridge.down() == ["bridge"]
    assert bridge.status().detail == "not running"


@pytest.mark.parametrize(("group", "address_key"), [("bridge", "url"), ("mlflow", "tracking_uri"), ("s3", "endpoint")])
def test_status_json_of_a_stopped_server_keeps_its_keys_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, group: str, address_key: str
) -> None:
    monkeypatch.setenv("MODELLEDGER_STATE_DIR", str(tmp_path))
    result = CliRunner().invoke(app, [group, "status", "--json"])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert (doc["ok"], doc["running"], doc["healthy"], doc["detail"], doc["pid"]) == (
        False,
        False,
        False,
        "not running",
        None,
    )
    assert {"rss_kib", "peak_rss_kib", "log", address_key} <= set(doc)
