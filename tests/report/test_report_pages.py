"""``report`` and ``ui``: the pages' content, user errors, and the pages in a real headless
Chromium (no console error, no request outside the file or the ui, every chart drawn)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from report_testlib import MODEL, REGRESSOR, requests_of

from framework.report.compare import Predictions, deltas, metric


def report(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "framework", "report", "--registry",
                           str(project / "registry"), *args], cwd=project, capture_output=True,
                          text=True, timeout=300)


def charts(page: str) -> int:
    return len(re.findall(r'<div class="chart" data-chart=', page))


def test_the_bootstrap_interval_covers_the_true_difference() -> None:
    """Paired deltas from per-row predictions: the interval holds the difference of the two
    models' population accuracies in about 95% of test sets, and resampling apart is wider."""
    rng = np.random.default_rng(1)
    covered, widths_paired, widths_apart = 0, [], []
    for trial in range(60):
        n = 400
        y = rng.integers(0, 2, n)
        right_a = rng.random(n) < 0.80
        right_b = right_a | (rng.random(n) < 0.25)  # b fixes a quarter of a's mistakes: +0.05
        pred_a, pred_b = np.where(right_a, y, 1 - y), np.where(right_b, y, 1 - y)
        a = Predictions(y, pred_a, None, [0, 1], "t")
        b = Predictions(y, pred_b, None, [0, 1], "t")
        d = next(x for x in deltas(a, b, resamples=400, seed=trial) if x.metric == "accuracy")
        assert d.paired and d.delta == pytest.approx(metric("accuracy", b) -
                                                     metric("accuracy", a))
        covered += d.low <= 0.05 <= d.high
        widths_paired.append(d.high - d.low)
        apart = Predictions(y, pred_b, None, [0, 1], "other test set")
        e = next(x for x in deltas(a, apart, resamples=400, seed=trial) if x.metric == "accuracy")
        widths_apart.append(e.high - e.low)
    assert covered >= 51, f"{covered} of 60 intervals hold the true difference"
    assert np.mean(widths_apart) > 1.5 * np.mean(widths_paired)


def test_the_index_shows_every_live_version_and_hides_the_archived(project: Path,
                                                                   tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    proc = report(project, "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    page = out.read_text()
    live = page.split("<details>")[0]
    assert live.count("<tr><td class=\"num\">") + live.count("<tr class") >= 3
    assert "1 archived versions" in page
    assert "Alias history" in page and "Monitoring" in page
    assert "sweep 20261201-100000-abcd" in page and "Failed trials (1)" in page
    assert "only &#x27;l2&#x27; penalties" in page  # the failed trial's error, escaped
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)


def test_a_comparison_has_deltas_curves_matrices_plots_and_lineage(project: Path,
                                                                   tmp_path: Path) -> None:
    out = tmp_path / "compare.html"
    proc = report(project, MODEL, "2", "3", "4", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    page = out.read_text()
    assert "v3 − v2 (95% CI)" in page and "v4 − v2 (95% CI)" in page
    assert re.search(r"[+-]\d\.\d{4} \[[+-]\d\.\d{4}, [+-]\d\.\d{4}\]", page)
    assert "paired (the same test rows)" in page
    assert "model.C" in page and "Params that differ" in page
    for section in ("Curves (test set)", "Confusion matrices (test set)", "The pipeline's plots", "Gates", "Lineage that differs"):
        assert section in page, section
    # 2 curve charts + 2 confusion charts per version + 2 pipeline plots per version
    assert charts(page) == 2 + 3 * 2 + 3 * 2


def test_unknown_names_are_user_errors_with_a_did_you_mean(project: Path) -> None:
    for args, named in ((("celss",), "did you mean 'cells'"),
                        ((MODEL, "2", "99"), "no version 99"),
                        ((MODEL, "2", "x"), "version numbers"),
                        ((MODEL, "2"), "two or more"),
                        (("--sweep", "nope"), "no sweep 'nope'")):
        proc = report(project, *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert named in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr


def _wait_drawn(driver: Any, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = driver.execute_script(
            "var c=document.querySelectorAll('[data-chart]');"
            "var d=document.querySelectorAll('[data-chart][data-drawn=\"1\"]');"
            "var e=document.querySelectorAll('[data-drawn=\"error\"]');"
            "var s=0;c.forEach(function(x){if(x.querySelector('svg'))s++;});"
            "return {charts:c.length,drawn:d.length,errors:e.length,svg:s,"
            "loaded:document.readyState==='complete'};")
        if state["loaded"] and (state["drawn"] + state["errors"] == state["charts"]):
            return state
        time.sleep(0.1)
    return state


def _legend(driver: Any, label: str) -> list[str]:
    return driver.execute_script(
        "var el=document.querySelector('[data-label=\"'+arguments[0]+'\"]');"
        "if(!el)return [];return Array.prototype.map.call(el.querySelectorAll('svg text'),"
        "function(t){return t.textContent;});", label)


def test_the_comparison_in_a_real_browser(project: Path, tmp_path: Path, browser: Any,
                                          artifacts: Path) -> None:
    out = tmp_path / "compare.html"
    assert report(project, MODEL, "2", "3", "4", "-o", str(out)).returncode == 0
    browser.get_log("browser")
    requests_of(browser)
    browser.get(out.resolve().as_uri())
    state = _wait_drawn(browser)
    assert state["errors"] == 0 and state["drawn"] == state["charts"] == 14, state
    assert state["svg"] == 14
    texts = _legend(browser, "roc curves")
    assert sum(t.startswith(("v2 (AUC", "v3 (AUC", "v4 (AUC")) for t in texts) == 3, texts
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    outside = [u for u in requests_of(browser) if not u.startswith(("file://", "data:"))]
    assert not outside, outside
    rows = browser.execute_script(
        "return Array.prototype.map.call(document.querySelectorAll('h2 + table'),"
        "function(t){return t.tBodies[0].rows.length;})")
    assert rows == [3, 1, 1], rows  # metrics, params that differ, gates (same lineage)
    browser.save_screenshot(str(artifacts / "report-compare.png"))


def test_the_versions_table_sorts_and_filters(project: Path, tmp_path: Path,
                                              browser: Any) -> None:
    out = tmp_path / "model.html"
    assert report(project, MODEL, "-o", str(out)).returncode == 0
    browser.get(out.resolve().as_uri())
    _wait_drawn(browser)
    first_column = ("return Array.prototype.map.call(document.querySelector('table[data-table]')"
                    ".tBodies[0].rows, function(r){return r.style.display==='none'?null:"
                    "r.cells[0].textContent;}).filter(function(x){return x!==null;});")
    assert browser.execute_script(first_column) == ["4", "3", "2"]  # newest first
    browser.execute_script("document.querySelector('table[data-table] th').click()")
    assert browser.execute_script(first_column) == ["2", "3", "4"]
    browser.execute_script(
        "var b=document.querySelector('.tools input');b.value='champion';"
        "b.dispatchEvent(new Event('input'));")
    assert len(browser.execute_script(first_column)) == 1


@pytest.fixture(scope="module")
def ui(project: Path) -> Any:
    proc = subprocess.Popen([sys.executable, "-m", "framework", "ui", "--port", "0",
                             "--registry", str(project / "registry")], cwd=project,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("ui on "):
        proc.kill()
        raise AssertionError(f"ui did not start: {line}{proc.stderr.read() if proc.stderr else ''}")
    url = line.split()[2]
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_the_ui_serves_each_page_and_refuses_what_is_not_there(ui: str) -> None:
    with httpx.Client(base_url=ui, timeout=30) as c:
        for path in ("/", f"/models/{MODEL}", f"/models/{MODEL}/compare?v=2,3",
                     "/sweeps/latest", "/sweeps/20261201"):
            r = c.get(path)
            assert r.status_code == 200, (path, r.text[:300])
            assert "default-src 'none'" in r.headers["content-security-policy"]
        assert "/assets/vega-" in c.get("/").text
        for path, status, text in (("/models/celss", 404, "did you mean"),
                                   (f"/models/{MODEL}/compare?v=2,99", 404, "no version 99"),
                                   (f"/models/{MODEL}/compare?v=2", 400, "two or more"),
                                   (f"/models/{MODEL}/compare?v=2,abc", 400, "version"),
                                   ("/sweeps/nope", 404, "no sweep"),
                                   ("/nothing/here", 404, "no page"),
                                   ("/assets/evil.js", 404, "no such file")):
            r = c.get(path)
            assert r.status_code == status and text in r.text, (path, r.status_code, r.text)
            assert "Traceback" not in r.text
        assert c.post("/").status_code == 405  # read-only
        # a page elsewhere cannot reach it through DNS rebinding: the Host must be this server
        assert c.get("/", headers={"host": "attacker.example"}).status_code == 400


def test_ui_pages_in_a_real_browser_stay_on_127_0_0_1(ui: str, browser: Any,
                                                      artifacts: Path) -> None:
    browser.get_log("browser")
    requests_of(browser)
    browser.get(f"{ui}/models/{MODEL}/compare?v=2,3,4")
    state = _wait_drawn(browser)
    assert state["errors"] == 0 and state["drawn"] == state["charts"] > 0, state
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    outside = [u for u in requests_of(browser) if not u.startswith((ui, "data:"))]
    assert not outside, outside
    browser.save_screenshot(str(artifacts / "ui-compare.png"))


def test_a_sweep_page_draws_every_trial_against_its_dotted_parameter(
        project: Path, tmp_path: Path, browser: Any) -> None:
    """Swept keys have dots (``model.C``), which Vega-Lite would read as nested fields: each
    chart must still draw one point per successful trial."""
    out = tmp_path / "sweep.html"
    assert report(project, "--sweep", "latest", "-o", str(out)).returncode == 0
    browser.get(out.resolve().as_uri())
    state = _wait_drawn(browser)
    assert state["errors"] == 0 and state["drawn"] == state["charts"] == 2, state
    points = browser.execute_script(
        "return Array.prototype.map.call(document.querySelectorAll('[data-chart]'),"
        "function(c){return c.querySelectorAll('g.mark-symbol.role-mark path').length;})")
    assert points == [11, 11], points  # 12 trials, one failed
    winner = browser.execute_script("return document.querySelector('tr.winner td').textContent")
    assert winner.strip() != ""


def test_a_regressor_comparison_draws_its_residuals(project: Path, tmp_path: Path,
                                                    browser: Any) -> None:
    out = tmp_path / "regression.html"
    assert report(project, REGRESSOR, "1", "2", "-o", str(out)).returncode == 0
    page = out.read_text()
    assert "Residuals (test set)" in page and "Confusion" not in page and "ROC" not in page
    assert "rmse" in page and "r2" in page  # deltas of the regression metrics
    browser.get(out.resolve().as_uri())
    state = _wait_drawn(browser)
    assert state["errors"] == 0 and state["drawn"] == state["charts"] == 2, state
    points = browser.execute_script(
        "return Array.prototype.map.call(document.querySelectorAll('[data-chart]'),"
        "function(c){return c.querySelectorAll('g.mark-symbol.role-mark path').length;})")
    assert points == [133, 133], points  # every test row of the 442
