"""Soak version of the fault suite: kill the worker N times at random moments across all stages
of a tiny ReSet run, resume after each, then compare with an uninterrupted run of the same seed.

    .venv/bin/python scripts/soak_kill_resume.py --kills 20 [--seed 1] [--home /tmp/soak]
"""
from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.launcher import Studio  # noqa: E402
from tests.helpers import run_content, tiny_reset_config  # noqa: E402
from tests.test_kill_resume import kill_resume_until_done  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--home", default=None)
    ap.add_argument("--max-delay", type=float, default=16.0,
                    help="kill at a random moment 2..MAX seconds after each (re)start")
    args = ap.parse_args()
    root = Path(args.home or tempfile.mkdtemp(prefix="soak-"))
    shutil.rmtree(root, ignore_errors=True)
    clean_home, killed_home = root / "clean", root / "killed"
    clean_studio, killed_studio = Studio(clean_home), Studio(killed_home)
    t0 = time.time()
    clean = clean_studio.launch(tiny_reset_config("clean"))
    assert clean_studio.wait(clean)["status"] == "succeeded"
    t_clean = time.time() - t0
    print(f"clean run: {t_clean:.0f} s")
    killed = killed_studio.launch(tiny_reset_config("killed"))
    rng = random.Random(args.seed)
    notes = []
    while len(notes) < args.kills:
        got = kill_resume_until_done(killed, killed_home, args.kills - len(notes), rng,
                                     delay=(2.0, args.max_delay))
        notes += got
        status = killed_studio.open_log().get_run(killed)["status"]
        if status == "succeeded" or not got:
            break
    final = killed_studio.wait(killed)
    print(f"killed run: {final['status']} after {len(notes)} kills, {time.time() - t0 - t_clean:.0f} s")
    with clean_studio.open_log() as a, killed_studio.open_log() as b:
        want, got = run_content(a, clean), run_content(b, killed)
    bad = [t for t in want if want[t] != got[t]]
    for t in want:
        print(f"  {t:<12} {len(want[t]):>5} rows  {'EQUAL' if t not in bad else 'DIFFERENT'}")
    print("RESULT:", "PASS" if not bad and final["status"] == "succeeded" else f"FAIL {bad}")
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
