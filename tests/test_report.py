"""`reset-gui report`: one self-contained HTML file, written by the real CLI from a real run log and
opened in real headless Chromium (DOM dump and a screenshot)."""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from backend.eval_details import EvalDetails
from backend.experiments import merge_seeds
from backend.runlog import RunLog
from backend.stats import compare_details
from tests.conftest import REPO
from tests.test_gui_tabs_data import _evals, build_runlog

CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]


def _chromium() -> str:
    """Debian's chromium; installed with apt-get when missing and we are root."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], env=env, capture_output=True,
                       timeout=1200)
        exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("no chromium here and not root to install it (apt-get install chromium); "
                    ".ci/run installs it")
    return exe


def _browser(exe: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([exe, *CHROME_FLAGS, f"--user-data-dir={tmp / 'profile'}", *args],
                          capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """The GUI tests' run log (an MTL run and a ReSet run) plus two seeds of one ReSet-S experiment
    whose selection records its size next to ReSet's."""
    home = tmp_path_factory.mktemp("home")
    info = build_runlog(home, n_prompts=40)
    log = RunLog(info["path"])
    seeds = []
    for s in (1, 2):
        rid = f"20250102-00000{s}-reset-s-demo-s{s}-cccc"
        log.create_run(rid, name=f"reset-s-demo-s{s}", preset="reset_s_demo",
                       config_toml=f'name = "reset-s-demo-s{s}"\nseed = {s}\n', run_dir=str(home / rid),
                       status="succeeded", experiment="exp-20250102-reset-s")
        _evals(log, rid, 5, [("mtl", 100 + 10 * s), ("reset_s", 101 + 10 * s)], random.Random(s), 0.4, 0.62)
        log.add_selection(rid, 3, "select", {"threshold": 0.6, "per_kind_quota": {"instruction": 4},
                                             "budget": 8, "weights": {"task": 0.3},
                                             "vs_reset": {"reset_threshold": 0.45, "reset_n_selected": 24,
                                                          "n_selected": 0, "ratio": 0.0,
                                                          "reset_per_kind": {}}}, [])
        seeds.append(rid)
    log.close()
    return {**info, "home": home, "seeds": seeds}


def test_report_cli_writes_the_figures_and_opens_in_chromium(home, tmp_path):
    out = tmp_path / "report.html"
    runs = [home["mtl"], home["reset"][:14], *home["seeds"]]  # a unique prefix works too
    res = subprocess.run([sys.executable, "-m", "backend.cli", "--home", str(home["home"]), "report",
                          *runs, "--out", str(out)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert res.returncode == 0, res.stderr
    assert str(out) in res.stdout and out.stat().st_size > 10_000
    text = out.read_text(encoding="utf-8")
    assert "<script" not in text and "http://" not in text.replace("http://www.w3.org/2000/svg", "")

    exe = _chromium()
    dom = _browser(exe, tmp_path, "--dump-dom", out.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = dom.stdout
    # four figures, drawn as SVG, each with its title
    for fig, title in (("fig1", "Fig. 1 — Trade-off"), ("fig3", "Fig. 3 — Macro-averaged scores"),
                       ("fig4", "Fig. 4 — Generation length"), ("fig5", "Fig. 5 — Faithfulness by response")):
        start = page.index(f'id="{fig}"')
        assert "<svg" in page[start:start + 400] and title in page[start:start + 6000]
    assert "North Star (1, 1)" in page
    assert page.count('class="ci"') >= 2 * 8  # interval bars: two per point in Fig. 1 at least
    # the numbers are the run log's, with their intervals
    with RunLog(home["path"], readonly=True) as log:
        rows = {(r["run_id"], r["checkpoint_tag"]): r for r in log.read_since("evals", 0)
                if r["dataset"] == "_all"}
    mtl = EvalDetails.from_row(rows[(home["mtl"], "mtl")])
    iv = mtl.intervals["faithfulness"]
    assert f"{mtl.means['faithfulness']:.3f} <span class=\"ci\">[{iv.lo:.3f}, {iv.hi:.3f}]</span>" in page
    # the differences, in words: each run's checkpoints against its own MTL
    reset = EvalDetails.from_row(rows[(home["reset"], "reset")])
    d = compare_details(EvalDetails.from_row(rows[(home["reset"], "mtl")]), reset)["faithfulness"]
    want = f"faithfulness {d.diff:+.3f} [{d.interval.lo:+.3f}, {d.interval.hi:+.3f}] — " + (
        "within noise" if d.within_noise else "outside noise, " + ("higher" if d.diff > 0 else "lower"))
    assert "Differences from MTL (mtl-demo · mtl for runs without their own)" in page and want in page
    assert "<b>reset-demo · reset</b> vs <b>reset-demo · mtl</b>" in page
    assert "<b>mtl-demo · base</b> vs <b>mtl-demo · mtl</b>" in page
    assert "within noise" in page and "outside noise" in page
    # the two seeds are pooled as one experiment
    pooled = merge_seeds([EvalDetails.from_row(rows[(s, "reset_s")]) for s in home["seeds"]])
    assert "reset-s-demo · reset_s (2 seeds)" in page
    assert f"{pooled.means['faithfulness']:.3f}" in page
    # selection statistics, judge coverage and each run's config
    assert "size vs ReSet" in page and "0% of ReSet's 24 (threshold 0.45)" in page
    assert "instruction ≤ 4" in page
    assert "faith_lexical" in page and "24 of 36" in page  # grounded items scored for faithfulness
    assert page.count("<details>") == 4 and "seed = 2" in page

    shot = tmp_path / "report.png"
    res = _browser(exe, tmp_path, "--hide-scrollbars", "--window-size=1300,2400",
                   f"--screenshot={shot}", out.as_uri())
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QColor, QImage

    img = QImage(str(shot))
    assert img.width() == 1300 and img.height() == 2400
    # the figures were drawn: pixels in the first two runs' colours (points, bars, lines)
    counts = {"#0072b2": 0, "#d55e00": 0}
    for y in range(0, img.height(), 3):
        for x in range(0, img.width(), 3):
            name = QColor(img.pixel(x, y)).name()
            if name in counts:
                counts[name] += 1
    assert all(n > 50 for n in counts.values()), counts
    keep = os.environ.get("RESET_SHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "report.png")
        shutil.copy(out, Path(keep) / "report.html")


def test_report_refuses_an_unknown_run(home, tmp_path):
    res = subprocess.run([sys.executable, "-m", "backend.cli", "--home", str(home["home"]), "report",
                          "no-such-run", "--out", str(tmp_path / "r.html")], capture_output=True,
                         text=True, cwd=REPO, timeout=120)
    assert res.returncode == 2 and "no run matching 'no-such-run'" in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "r.html").exists()


def test_report_of_runs_without_evaluations(tmp_path):
    from backend.report import write_report

    log = RunLog(tmp_path / "runlog.db")
    log.create_run("r0", name="fresh", preset="mtl_demo", config_toml="seed = 1\n", run_dir=str(tmp_path))
    out = write_report(log, ["r0"], tmp_path / "r.html")
    text = out.read_text(encoding="utf-8")
    assert "No evaluated checkpoints in these runs." in text and "No generation-length probe" in text
    assert json.dumps("fresh")[1:-1] in text
    log.close()


def test_report_markdown_pools_seeds_and_compares_with_the_pooled_mtl(home):
    res = subprocess.run([sys.executable, "-m", "backend.cli", "--home", str(home["home"]), "report",
                          *home["seeds"], "--markdown"], capture_output=True, text=True, cwd=REPO,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    text = res.stdout
    with RunLog(home["path"], readonly=True) as log:
        rows = {(r["run_id"], r["checkpoint_tag"]): r for r in log.read_since("evals", 0)
                if r["dataset"] == "_all"}
    pooled = {tag: merge_seeds([EvalDetails.from_row(rows[(s, tag)]) for s in home["seeds"]])
              for tag in ("mtl", "reset_s")}
    iv = pooled["reset_s"].intervals["faithfulness"]
    row = next(ln for ln in text.splitlines() if ln.startswith("| reset-s-demo · reset_s (2 seeds)"))
    assert f"{pooled['reset_s'].means['faithfulness']:.3f} [{iv.lo:.3f}, {iv.hi:.3f}]" in row
    d = compare_details(pooled["mtl"], pooled["reset_s"])["faithfulness"]
    line = next(ln for ln in text.splitlines()
                if ln.startswith("- reset-s-demo · reset_s (2 seeds) vs reset-s-demo · mtl (2 seeds):"))
    assert f"faithfulness {d.diff:+.3f} [{d.interval.lo:+.3f}, {d.interval.hi:+.3f}] — " + (
        "within noise" if d.within_noise else "outside noise") in line
    per_seed = ", ".join(f"{v:.3f}" for v in pooled["reset_s"].seed_means["faithfulness"])
    assert per_seed in text


def test_reset_is_compared_with_the_control_of_its_own_run(home):
    from backend.report import Checkpoint, control_comparisons

    with RunLog(home["path"], readonly=True) as log:
        rows = {(r["run_id"], r["checkpoint_tag"]): r for r in log.read_since("evals", 0)
                if r["dataset"] == "_all"}
    a, b = home["seeds"]

    def ck(run, tag, as_tag):
        return Checkpoint((run, as_tag), f"{run} · {as_tag}", "#000",
                          EvalDetails.from_row(rows[(run, tag)]), rows[(run, tag)])

    cks = [ck(a, "mtl", "control"), ck(a, "reset_s", "reset"), ck(a, "reset_s", "reset_s"),
           ck(b, "reset_s", "reset")]
    got = control_comparisons(cks)
    assert [(ctl.key, c.key) for ctl, c, _d in got] == [((a, "control"), (a, "reset")),
                                                        ((a, "control"), (a, "reset_s"))]
    assert got[0][2]["faithfulness"].diff == compare_details(cks[0].det, cks[1].det)["faithfulness"].diff
