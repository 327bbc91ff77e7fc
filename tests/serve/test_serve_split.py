"""A/B and shadow traffic: ``serve NAME --split champion=50,challenger=50``, ``serve NAME@champion
--shadow challenger``, and ``monitor compare`` with its sequential test and promotion."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from serve_testlib import MODEL, Data, fit, register, server_env, start, wait_rows

from framework.errors import ConfigError
from framework.monitor.ab import msprt
from framework.monitor.policy import AB, parse


def _flipped(data: Data) -> Any:
    """A model that predicts (nearly) the opposite of the bundled one."""
    return fit(Data(data.columns, data.rows, [1 - t for t in data.target]))


@pytest.fixture()
def two_versions(tmp_path: Path, data: Data, features_schema: dict[str, Any]) -> Path:
    """v1 champion, v2 challenger (the flipped model), v3 a version whose artifact is broken."""
    from framework.registry import open_registry

    root = tmp_path / "registry"
    register(root, fit(data), features_schema, 0.99)
    register(root, _flipped(data), features_schema, 0.98)
    with open_registry(root) as reg:
        reg.set_alias(MODEL, 2, "challenger", actor="tests")
    return root


def _post(client: Any, data: Data, i: int, request_id: str) -> Any:
    return client.post("/invocations", json={"dataframe_split": {
        "columns": data.columns, "data": [data.rows[i]]}}, headers={"x-request-id": request_id})


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "framework", *args], cwd=cwd, env=server_env(),
                          capture_output=True, text=True, timeout=120)


def test_split_assigns_by_weight_sticks_by_key_says_who_answered_and_logs_it(
        two_versions: Path, data: Data, tmp_path: Path) -> None:
    s = start(MODEL, "--split", "champion=50,challenger=50", "--registry", str(two_versions),
              "--poll-interval", "0.2", cwd=tmp_path)
    try:
        assert "split champion v1 50%, challenger v2 50% (by x-request-id)" in s.ready_line
        answered: dict[str, tuple[str, str]] = {}
        with s.client() as c:
            for i in range(200):
                r = _post(c, data, i, f"user-{i}")
                assert r.status_code == 200
                answered[f"user-{i}"] = (r.headers["x-model-alias"], r.headers["x-model-version"])
            # the same key meets the same arm every time
            for i in (3, 17, 101):
                for _ in range(3):
                    r = _post(c, data, i, f"user-{i}")
                    assert (r.headers["x-model-alias"], r.headers["x-model-version"]) == \
                        answered[f"user-{i}"]
            meta = c.get("/metadata").json()
        assert {v for v in answered.values()} == {("champion", "breast_cancer/1"),
                                                   ("challenger", "breast_cancer/2")}
        n_champion = sum(a == "champion" for a, _ in answered.values())
        assert 65 <= n_champion <= 135  # 50% of 200, far beyond 4 standard deviations
        assert [(a["alias"], a["version"], a["share"]) for a in meta["split"]] == \
            [("champion", 1, 0.5), ("challenger", 2, 0.5)]
        table = wait_rows(two_versions, 209)
        log = table.to_pandas()
        first = log.drop_duplicates("request_id", keep="first").set_index("request_id")
        for rid, (alias, tag) in answered.items():
            assert first.loc[rid, "alias"] == alias
            assert f"breast_cancer/{first.loc[rid, 'version']}" == tag
        assert not log["shadow"].any() and (log["latency_ms"] > 0).all()
    finally:
        s.stop()


def test_a_split_follows_alias_moves_and_never_gives_traffic_to_a_broken_version(
        two_versions: Path, data: Data, tmp_path: Path, features_schema: dict[str, Any]) -> None:
    from framework.registry import open_registry

    v3 = register(two_versions, fit(data, C=0.3), features_schema, 0.97)
    with open_registry(two_versions) as reg:
        artifact = Path(reg.get(MODEL, v3).artifact_path)
    artifact.chmod(0o644)
    artifact.write_bytes(b"not a model")
    s = start(MODEL, "--split", "champion=1,challenger=1", "--registry", str(two_versions),
              "--poll-interval", "0.2", cwd=tmp_path)
    try:
        with open_registry(two_versions) as reg:
            reg.set_alias(MODEL, v3, "challenger", actor="tests")  # a version that cannot load
        time.sleep(1.0)
        with s.client() as c:
            tags = {_post(c, data, i, f"k{i}").headers["x-model-version"] for i in range(60)}
            meta = c.get("/metadata").json()
        assert tags == {"breast_cancer/1", "breast_cancer/2"}  # v3 never answers
        challenger = meta["split"][1]
        assert challenger["version"] == 2 and "v3" in challenger["last_switch_error"]
        with open_registry(two_versions) as reg:
            reg.set_alias(MODEL, 1, "challenger", actor="tests")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with s.client() as c:
                if c.get("/metadata").json()["split"][1]["version"] == 1:
                    break
            time.sleep(0.1)
        with s.client() as c:
            tags = {_post(c, data, i, f"k{i}").headers["x-model-version"] for i in range(40)}
        assert tags == {"breast_cancer/1"}  # the moved alias is followed
    finally:
        s.stop()


def test_a_shadow_scores_every_request_off_the_answer_and_both_are_logged(
        two_versions: Path, data: Data, tmp_path: Path) -> None:
    s = start(f"{MODEL}@champion", "--shadow", "challenger", "--registry", str(two_versions),
              cwd=tmp_path)
    try:
        assert "shadow challenger v2" in s.ready_line
        with s.client() as c:
            for i in range(40):
                r = _post(c, data, i, f"r{i}")
                assert r.status_code == 200 and r.headers["x-model-version"] == "breast_cancer/1"
            deadline = time.monotonic() + 10
            while "framework_serve_shadow_scored_total 40" not in c.get("/metrics").text:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        log = wait_rows(two_versions, 80).to_pandas()
        shadow = log[log["shadow"]]
        answered = log[~log["shadow"]]
        assert sorted(shadow["request_id"]) == sorted(answered["request_id"]) == \
            sorted(f"r{i}" for i in range(40))
        assert set(shadow["version"]) == {2} and set(shadow["alias"]) == {"challenger"}
        assert set(answered["version"]) == {1} and set(answered["alias"]) == {"champion"}
    finally:
        s.stop()


def test_a_failing_shadow_never_fails_the_answer(two_versions: Path, data: Data,
                                                 tmp_path: Path,
                                                 features_schema: dict[str, Any]) -> None:
    """The shadow's schema refuses a mean radius above 15, the champion's does not: those
    requests fail for the shadow alone (counted), the others it scores in batches, and every
    answer is the champion's 200."""
    strict = json.loads(json.dumps(features_schema))
    strict["properties"]["mean_radius"]["maximum"] = 15
    v3 = register(two_versions, fit(data), strict, 0.97)
    j = data.columns.index("mean_radius")
    refused = sum(row[j] > 15 for row in data.rows[:60])
    assert 0 < refused < 60
    s = start(f"{MODEL}@champion", "--shadow", str(v3), "--registry", str(two_versions),
              cwd=tmp_path)
    try:
        with s.client() as c:
            codes = [_post(c, data, i, f"q{i}").status_code for i in range(60)]
            want = {f"framework_serve_shadow_failed_total {refused}",
                    f"framework_serve_shadow_scored_total {60 - refused}"}
            deadline = time.monotonic() + 20
            while True:  # both counters settle: the batches finish in their own thread
                lines = set(c.get("/metrics").text.splitlines())
                if want <= lines:
                    break
                assert time.monotonic() < deadline, sorted(
                    line for line in lines if "shadow" in line and not line.startswith("#"))
                time.sleep(0.05)
        assert codes == [200] * 60
        log = wait_rows(two_versions, 120 - refused).to_pandas()
        assert (log["shadow"] & (log["version"] == v3)).sum() == 60 - refused
    finally:
        s.stop()


def test_split_and_shadow_usage_errors_are_exit_2(two_versions: Path, tmp_path: Path) -> None:
    reg = ["--registry", str(two_versions), "--port", "0"]
    for args, needle in (
            ([MODEL, "--split", "champion=90"], "at least two different aliases"),
            ([MODEL, "--split", "champion=90,challenger=x"], "ALIAS=WEIGHT"),
            ([f"{MODEL}@champion", "--split", "champion=1,challenger=1"], "name the model alone"),
            ([MODEL, "--split", "champion=1,nobody=1"], "nobody"),
            ([f"{MODEL}@champion", "--shadow", "challenger", "--split", "a=1,b=1"],
             "do not go together"),
            ([f"{MODEL}@champion", "--shadow", "ghost"], "ghost")):
        done = _cli("serve", *args, *reg, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        assert needle in done.stderr, (args, done.stderr)


def test_compare_tests_the_challenger_on_labels_and_promotes_a_winner(
        two_versions: Path, data: Data, tmp_path: Path) -> None:
    s = start(MODEL, "--split", "champion=50,challenger=50", "--registry", str(two_versions),
              "--poll-interval", "0.2", cwd=tmp_path)
    try:
        flipped = _flipped(data)
        with s.client() as c:
            for i in range(300):
                assert _post(c, data, i, f"u{i}").status_code == 200
        wait_rows(two_versions, 300)
        # the ground truth agrees with the challenger: it wins by a wide margin
        truth = flipped.predict(pd.DataFrame(data.rows[:300], columns=data.columns))
        labels = tmp_path / "labels.csv"
        labels.write_text("request_id,target\n" + "".join(
            f"u{i},{int(t)}\n" for i, t in enumerate(truth)))
        assert _cli("monitor", "label", str(labels), "--registry", str(two_versions),
                    cwd=tmp_path).returncode == 0
        shown = _cli("monitor", "compare", MODEL, "--registry", str(two_versions), cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        assert "challenger v2 beats champion v1" in shown.stdout
        assert "independent samples, mSPRT" in shown.stdout
        done = _cli("monitor", "compare", MODEL, "--promote", "--json", "--registry",
                    str(two_versions), cwd=tmp_path)
        result = json.loads(done.stdout)
        groups = {g["label"]: g for g in result["groups"]}
        assert groups["challenger v2"]["metric"] == 1.0
        assert groups["champion v1"]["metric"] < 0.2
        assert groups["champion v1"]["requests"] + groups["challenger v2"]["requests"] == 300
        assert result["test"]["verdict"] == "challenger wins" and result["promoted"] == 2
        # the running server follows the move: the champion arm now answers with v2
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with s.client() as c:
                if c.get("/metadata").json()["split"][0]["version"] == 2:
                    break
            time.sleep(0.1)
        else:
            raise AssertionError("the champion arm did not follow the promotion")
    finally:
        s.stop()
    from framework.registry import open_registry

    with open_registry(two_versions) as reg:
        move = reg.store.history(MODEL)[-1]
        assert (move.alias, move.to_version, move.actor) == ("champion", 2, "monitor-ab")


def test_the_sequential_test_finds_a_real_difference_and_stays_valid_under_peeking() -> None:
    rng = np.random.default_rng(0)
    a = (rng.random(3000) < 0.80).astype(float)
    b = (rng.random(3000) < 0.88).astype(float)
    ta, tb = np.arange(3000) * 2, np.arange(3000) * 2 + 1
    d, p, (lo, hi), _, _ = msprt(a, b, ta, tb, tau=0.05, alpha=0.05)
    assert p < 0.01 and lo > 0 and abs(d - (b.mean() - a.mean())) < 1e-12
    # A/A: the p-value is the smallest over every prefix (peeking after each row), and still
    # at most alpha of the experiments ever cross it
    false = 0
    for i in range(300):
        r = np.random.default_rng(100 + i)
        x, y = (r.random(800) < 0.7).astype(float), (r.random(800) < 0.7).astype(float)
        for bernoulli in (False, True):
            false += msprt(x, y, ta[:800], tb[:800], tau=0.05, alpha=0.05,
                           bernoulli=bernoulli)[1] <= 0.05
    assert false / 600 <= 0.06
    # an arm right on every row against one wrong on every row is evidence, not "no variance"
    ones, zeros = np.ones(150), np.zeros(150)
    assert msprt(zeros, ones, ta[:150], tb[:150], tau=0.05, alpha=0.05, bernoulli=True)[1] < 1e-6
    # paired differences: the same rows scored by both
    diff = (rng.random(2000) < 0.1).astype(float) - (rng.random(2000) < 0.02).astype(float)
    d, p, (lo, hi), _, _ = msprt(diff, None, tau=0.05, alpha=0.05)
    assert p < 0.01 and lo > 0 < d


def test_the_ab_policy_is_checked_naming_the_key() -> None:
    assert parse({"ab": {"key": "X-User-ID", "confidence": 0.99}}).ab == \
        AB(key="X-User-ID", confidence=0.99)
    with pytest.raises(ConfigError, match=r"monitor\.ab\.metric: unknown metric 'acuracy'"):
        parse({"ab": {"metric": "acuracy"}})
    with pytest.raises(ConfigError, match=r"monitor\.ab\.challenger"):
        parse({"ab": {"challenger": "champion"}})
    with pytest.raises(ConfigError, match=r"monitor\.ab\.key"):
        parse({"ab": {"key": "bad header!"}})
