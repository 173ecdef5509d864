"""Headless command line: everything the GUI does, for servers and clusters.

``reset-gui`` with no arguments opens the window (reset_gui.cli); with a subcommand it lands here.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from . import paths, queries
from .errors import StudioError
from .launcher import LaunchError, Studio, reconcile_log, stderr_tail
from .vocab import FINAL_STATUSES, Status

EPILOG = """examples:
  reset-gui run assets/presets/reset_demo.toml      train + ReSet on the embedded model
  reset-gui run mtl_demo --detach                   a preset by name, in the background
  reset-gui list                                    every run and its status
  reset-gui logs RUN --follow                       events of a run as they happen
  reset-gui judge answers.jsonl --output scored.jsonl
  reset-gui report RUN1 RUN2 --out report.html      figures, intervals, selections, configs
"""


def _fmt_time(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"


def _elapsed(run: dict) -> str:
    if not run.get("started_at"):
        return "-"
    end = run.get("ended_at") or time.time()
    s = int(end - run["started_at"])
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _load_config(ref: str, name: str | None, seed: int | None):
    from .config import load, load_preset

    path = Path(ref)
    cfg = load(path) if path.exists() else load_preset(ref)
    if name:
        cfg.name = name
    if seed is not None:
        cfg.seed = seed
    return cfg


def cmd_report(args) -> int:
    from .report import load_runs, render_markdown, write_report

    with Studio(args.home).open_log(readonly=True) as log:
        ids = [_resolve_run(log, ref)["id"] for ref in args.runs]
        if args.markdown:
            print(render_markdown(load_runs(log, ids)), end="")
            return 0
        out = write_report(log, ids, args.out, title=args.title)
    print(f"report of {len(ids)} run(s): {out.resolve()}")
    return 0


def _resolve_run(log, ref: str) -> dict:
    run = log.find_run(ref)
    if run is None:
        raise LaunchError(f"no run matching {ref!r} (see `reset-gui list`)")
    return run


def follow(run_id: str, studio: Studio, stream=sys.stderr) -> dict:
    """Show stage progress until the run ends; Ctrl-C cancels (twice: detach)."""
    from tqdm import tqdm

    bar = None
    bar_stage = None
    seen_event = 0
    interrupts = 0
    with studio.open_log() as log:
        while True:
            try:
                for ev in log.read_since("events", seen_event, run_id=run_id):
                    seen_event = ev["id"]
                    if ev["level"] in ("warning", "error"):
                        msg = f"[{ev['level']}] {ev['message']}"
                        (bar.write(msg, file=stream) if bar is not None else print(msg, file=stream))
                run = log.get_run(run_id)
                stages = log.get_stages(run_id)
                current = next((s for s in stages if s["idx"] == run.get("current_stage")), None)
                if current and current["idx"] != bar_stage:
                    if bar is not None:
                        bar.close()
                    bar_stage = current["idx"]
                    bar = tqdm(total=current["total"] or None, file=stream, dynamic_ncols=True,
                               desc=f"[{current['idx'] + 1}] {current['name']} ({current['type']})")
                if bar is not None and current:
                    if current["total"] and bar.total != current["total"]:
                        bar.total = current["total"]
                    bar.n = current["done"] or 0
                    bar.set_postfix_str((current["message"] or "")[:40], refresh=False)
                    bar.refresh()
                if run["status"] in FINAL_STATUSES:
                    if bar is not None:
                        bar.close()
                    return run
                if run["status"] == Status.RUNNING:
                    reconcile_log(log)
                time.sleep(1.0)
            except KeyboardInterrupt:
                interrupts += 1
                if interrupts == 1:
                    print("\ncancelling (a final checkpoint is kept); Ctrl-C again to detach",
                          file=stream)
                    try:
                        studio.cancel(run_id)
                    except LaunchError as exc:
                        print(exc, file=stream)
                else:
                    print(f"\ndetached; the run goes on. `reset-gui status {run_id}`", file=stream)
                    return log.get_run(run_id)


def _print_run_end(run: dict) -> int:
    print(f"run {run['id']}: {run['status']} after {_elapsed(run)}")
    if run["status"] in (Status.FAILED, Status.DIED):
        print(f"error: {run.get('error') or '-'}")
        tail = run.get("error_tail") or run.get("stderr_tail")
        if tail:
            print("--- last lines ---\n" + tail)
    return 0 if run["status"] == Status.SUCCEEDED else 1


def cmd_run(args) -> int:
    cfg = _with_compute_overrides(_load_config(args.config, args.name, args.seed), args)
    studio = Studio(args.home)
    exp, run_ids = studio.launch_seeds(cfg, args.seeds)
    with studio.open_log() as log:
        for run_id in run_ids:
            status = log.get_run(run_id)["status"]
            print(f"run {run_id} {'started' if status == Status.RUNNING else Status.QUEUED} "
                  f"(home {studio.home})" + (f", experiment {exp}" if exp else ""))
    codes = [_follow_unless_detached(studio, run_id, args) for run_id in run_ids]
    return max(codes)


def _seeds_arg(text: str) -> list[int]:
    from .experiments import parse_seeds

    try:
        return parse_seeds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _with_compute_overrides(cfg, args):
    """--processes / --executor replace the config's compute fields, validated like the file."""
    from .config import config_from_dict

    over = {k: v for k, v in (("processes", args.processes), ("executor", args.executor))
            if v is not None}
    if not over:
        return cfg
    data = cfg.to_dict()
    data["compute"] = {**data.get("compute", {}), **over}
    return config_from_dict(data, "(with command-line overrides)")


def _compute_line(run: dict) -> str:
    from .config import ConfigError, loads

    try:
        c = loads(run["config_toml"]).compute
    except ConfigError:
        return "-"
    text = (f"{c.executor}, {c.processes} process{'es' if c.processes > 1 else ''} x "
            f"{c.nodes} node{'s' if c.nodes > 1 else ''}")
    if c.gpus_per_process:
        text += f", {c.gpus_per_process} GPU/process"
    if c.strategy == "fsdp":
        text += ", FSDP"
    if c.executor == "slurm":
        text += f", partition {c.slurm.partition or 'default'}, time {c.slurm.time_limit}"
        from .slurm import job_info

        job = job_info(run["run_dir"]) if run.get("run_dir") else {}
        if job.get("job_id"):
            text += (f"; Slurm job {job['job_id']} {job.get('state', '?')}"
                     + (f" ({job['reason']})" if job.get("reason") not in (None, "", "None") else "")
                     + (f" on {job['node']}" if job.get("node") else "")
                     + f", attempt {job.get('attempt', 1)}")
    return text


def cmd_resume(args) -> int:
    studio = Studio(args.home)
    run_id = studio.resume(args.run, processes=args.processes)
    print(f"run {run_id} resumed")
    return _follow_unless_detached(studio, run_id, args)


def _follow_unless_detached(studio: Studio, run_id: str, args) -> int:
    if args.detach:
        return 0
    return _print_run_end(follow(run_id, studio))


def cmd_cancel(args) -> int:
    studio = Studio(args.home)
    run_id = studio.cancel(args.run)
    print(f"cancel requested for {run_id}")
    if args.wait:
        return 0 if studio.wait(run_id)["status"] == Status.CANCELLED else 1
    return 0


def cmd_list(args) -> int:
    studio = Studio(args.home)
    with studio.open_log() as log:
        reconcile_log(log)
        runs = log.list_runs()
        jobs = {r["id"]: queries.slurm_job(r) for r in runs}
        if args.json:
            print(json.dumps([{**{k: r[k] for k in ("id", "name", "preset", "status", "created_at",
                                                    "started_at", "ended_at")},
                               "slurm_job": jobs[r["id"]]} for r in runs]))
            return 0
        if not runs:
            print(f"no runs yet in {studio.home}; try `reset-gui run reset_demo`")
            return 0
        slurm = any(jobs.values())  # the job columns only when some run went through Slurm
        print(f"{'RUN':<40} {'PRESET':<28} {'STATUS':<10} {'STAGE':<16} {'ELAPSED':>8}"
              + (f" {'JOB':>10} NODE" if slurm else ""))
        for r in runs:
            stages = log.get_stages(r["id"])
            cur = next((s for s in stages if s["idx"] == r["current_stage"]), None)
            stage = f"{cur['name']} {cur['done'] or 0}/{cur['total'] or '?'}" if cur else "-"
            preset = (r["preset"] or "-") if len(r["preset"] or "-") <= 28 else r["preset"][:27] + "…"
            job = jobs[r["id"]]
            print(f"{r['id']:<40} {preset:<28} {r['status']:<10} {stage:<16} "
                  f"{_elapsed(r):>8}"
                  + (f" {job['job_id'] if job else '-':>10} {(job and job['node']) or '-'}"
                     if slurm else ""))
    return 0


def cmd_status(args) -> int:
    if not args.run:
        return cmd_list(args)
    with Studio(args.home).open_log() as log:
        reconcile_log(log)
        run = _resolve_run(log, args.run)
        stages = log.get_stages(run["id"])
        if args.json:
            print(json.dumps({"run": {k: v for k, v in run.items() if k != "config_toml"},
                              "stages": stages}, default=str))
            return 0
        print(f"run      {run['id']}  ({run['name']}, preset {run['preset']})")
        print(f"status   {run['status']}   pid {run['pid'] or '-'}   exit {run['exit_code']}"
              f"{'   signal ' + str(run['signal']) if run['signal'] else ''}")
        print(f"started  {_fmt_time(run['started_at'])}   elapsed {_elapsed(run)}   "
              f"heartbeat {_fmt_time(run['heartbeat_at'])}")
        print(f"folder   {run['run_dir']}")
        print(f"compute  {_compute_line(run)}")
        for s in stages:
            prog = f"{s['done'] or 0}/{s['total']}" if s["total"] else f"{s['done'] or 0}"
            print(f"  [{s['idx'] + 1}] {s['name']:<14} {s['type']:<9} {s['status']:<12} {prog:<10} "
                  f"{s['message'] or ''}")
        evals = [e for e in queries.evals(log, run["id"]) if e["dataset"] == "_all"]
        if evals:
            print("evaluation (faithfulness / instruction following / task / mean length):")
            for e in evals:
                f = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
                print(f"  {e['checkpoint_tag']:<16} {f(e['faithfulness'])}  "
                      f"{f(e['instruction_following'])}  {f(e['task_score'])}  "
                      f"{e['mean_length'] or 0:.1f}")
        if run["error"]:
            print(f"error    {run['error']}")
            tail = run.get("error_tail") or run.get("stderr_tail")
            if tail:
                print(tail)
    return 0


def cmd_logs(args) -> int:
    with Studio(args.home).open_log() as log:
        run = _resolve_run(log, args.run)
        if args.stderr:
            print(stderr_tail(run["run_dir"], lines=args.lines))
            return 0
        last = 0
        while True:
            for ev in log.read_since("events", last, run_id=run["id"]):
                last = ev["id"]
                stage = f"[{ev['stage_idx'] + 1}] " if ev["stage_idx"] is not None else ""
                print(f"{_fmt_time(ev['time'])} {ev['level']:<7} {stage}{ev['message']}", flush=True)
            if not args.follow or log.get_run(run["id"])["status"] not in (Status.RUNNING, Status.QUEUED):
                return 0
            time.sleep(1.0)


def cmd_judge(args) -> int:
    from .judge_file import judge_file, judge_list_text

    settings = {"nli_model": args.nli_model} if args.nli_model else {}
    if args.prepare:
        return _prepare_factcc()
    if args.list:
        print(judge_list_text(settings))
        return 0
    if not args.input or not args.output:
        raise SystemExit("reset-gui judge: give INPUT.jsonl and --output OUT.jsonl (or --list)")
    judges = args.judges.split(",") if args.judges else "auto"
    try:
        weights = json.loads(args.weights) if args.weights else None
    except json.JSONDecodeError as exc:
        raise StudioError(f"--weights is not valid JSON ({exc}); e.g. "
                         '\'{"task": 0.3, "faithfulness": 0.4, "instruction_following": 0.3}\'') from None
    summary = judge_file(args.input, args.output, judges=judges, weights=weights, settings=settings)
    print(json.dumps(summary, indent=2, default=str))
    return 0


def _prepare_factcc() -> int:
    """Train the FactCC judge into the cache now (a few minutes on a CPU), not at its first use."""
    from .judges import factcc

    print("faith_factcc: preparing the cross-encoder (cached after the first time)", flush=True)
    try:
        folder = factcc.prepare(log=lambda line: print(line, flush=True))
    except RuntimeError as exc:  # the bundled MiniLM to start from is missing
        raise StudioError(str(exc)) from None
    meta = json.loads((folder / "factcc.json").read_text())
    print(f"faith_factcc: ready at {folder} ({meta.get('steps')} steps on {meta.get('train_pairs')} "
          f"pairs, trained in {meta.get('train_seconds')} s)", flush=True)
    return 0


def cmd_export(args) -> int:
    from . import export

    if args.run_pos and args.run and args.run_pos != args.run:
        raise SystemExit(f"reset-gui export: two runs given ({args.run_pos}, --run {args.run})")
    args.run = args.run or args.run_pos
    with Studio(args.home).open_log() as log:
        run = _resolve_run(log, args.run) if args.run else None
        rid = run["id"] if run else None
        if args.what != "evals" and rid is None:
            raise SystemExit(f"reset-gui export {args.what}: give the run (RUN or --run)")
        if args.what in ("tensorboard", "mlflow"):  # the run log's figures into a tracker
            from . import trackers

            out = (trackers.export_tensorboard if args.what == "tensorboard"
                   else trackers.export_mlflow)(log, rid, args.out)
            if args.what == "mlflow":
                out = f"MLflow run {out} in {trackers.mlflow_uri(args.out)}"
        elif args.what == "adapter":
            out = export.export_adapter(log, rid, args.tag, args.out)
        elif args.what == "merged":
            out = export.export_merged(log, rid, args.tag, args.out)
        elif args.what == "selection":  # a .jsonl file, or a data set folder (TRL / LLaMA-Factory)
            fn = (export.export_selection_jsonl if str(args.out).endswith(".jsonl")
                  else export.export_selection_dataset)
            out = fn(log, rid, args.selection, args.out)
        else:
            out = export.export_evals_csv(log, rid, args.out)
    print(f"wrote {out}")
    return 0


def cmd_presets(args) -> int:
    from .config import list_presets, load

    if args.show:
        # the preset with `extends` and `stage_defaults` worked out: a config that stands alone
        import tomli_w

        from .config import config_from_dict
        from .presets import preset_path, resolve_file

        path = Path(args.show) if Path(args.show).is_file() else preset_path(args.show)
        data = resolve_file(path)
        cfg = config_from_dict(data, str(path))  # fails here, not at launch, if it is invalid
        print(cfg.to_toml() if args.full else tomli_w.dumps(data), end="")
        return 0
    for name, path in list_presets().items():
        cfg = load(path)
        plan = " → ".join(s.name for s in cfg.stages)
        print(f"{name:<44} {plan}\n    {cfg.description}")
    return 0


def cmd_validate(args) -> int:
    cfg = _load_config(args.config, None, None)
    problems = Studio(args.home).preflight(cfg)
    if problems:
        print("config is valid but cannot run:\n  " + "\n  ".join(problems))
        return 1
    print(f"ok: {cfg.name} ({len(cfg.stages)} stages, {len(cfg.data)} data sets)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="reset-gui", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="ReSet Studio. With no command: open the window. Commands run headless.")
    ap.add_argument("--home", default=None,
                    help=f"where runs and the run log live (default: ${paths.ENV_HOME} or the "
                         "per-user data folder)")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", help="start a run from a config file or preset name")
    p.add_argument("config", help="TOML config path or preset name (see `presets`)")
    p.add_argument("--detach", action="store_true", help="return at once; the run goes on")
    p.add_argument("--name", help="override the run name")
    p.add_argument("--seed", type=int, help="override the seed")
    p.add_argument("--seeds", type=_seeds_arg,
                   help="comma-separated seeds, e.g. 1,2,3: one run per seed, grouped as one "
                        "experiment (overrides the config's seeds)")
    p.add_argument("--processes", type=int, help="data-parallel processes per node (compute.processes)")
    p.add_argument("--executor", choices=["local", "slurm"], help="compute.executor")
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("status", help="one run in detail (or all runs)")
    p.add_argument("run", nargs="?")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_status)

    p = sub.add_parser("list", help="all runs with their status")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_list)

    p = sub.add_parser("cancel", help="stop a run gracefully (final checkpoint kept)")
    p.add_argument("run")
    p.add_argument("--wait", action="store_true")
    p.set_defaults(fn=cmd_cancel)

    p = sub.add_parser("resume", help="continue a stopped run (finished stages are skipped)")
    p.add_argument("run")
    p.add_argument("--detach", action="store_true")
    p.add_argument("--processes", type=int,
                   help="continue with this many data-parallel processes (compute.processes)")
    p.set_defaults(fn=cmd_resume)

    p = sub.add_parser("logs", help="a run's events (or the worker's stderr)")
    p.add_argument("run")
    p.add_argument("--follow", "-f", action="store_true")
    p.add_argument("--stderr", action="store_true", help="the worker's stderr tail")
    p.add_argument("--lines", type=int, default=60)
    p.set_defaults(fn=cmd_logs)

    p = sub.add_parser("judge", help="score responses in a JSONL file with the judges")
    p.add_argument("input", nargs="?")
    p.add_argument("--output", "-o")
    p.add_argument("--judges", help="comma-separated judge names (default: auto)")
    p.add_argument("--weights", help='JSON, e.g. \'{"task":0.3,"faithfulness":0.4,'
                                     '"instruction_following":0.3}\'')
    p.add_argument("--nli-model", help="local NLI model folder for SummaC-ZS")
    p.add_argument("--list", action="store_true", help="list judges and whether they can run here")
    p.add_argument("--prepare", action="store_true",
                   help="train the faith_factcc judge into the cache now (a few minutes, once)")
    p.set_defaults(fn=cmd_judge)

    p = sub.add_parser("report", help="one HTML file: the paper's figures with intervals, "
                                      "selections, judge coverage and configs of some runs")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run ids (or unique prefixes)")
    p.add_argument("--out", "-o", default="report.html", help="HTML file to write")
    p.add_argument("--title", help="the report's title")
    p.add_argument("--markdown", action="store_true",
                   help="print the scores, intervals and differences as Markdown instead")
    p.set_defaults(fn=cmd_report)

    p = sub.add_parser("export", help="export an adapter, merged model, selection, eval table, "
                                      "or a run into TensorBoard / MLflow")
    p.add_argument("what", choices=["adapter", "merged", "selection", "evals", "tensorboard", "mlflow"])
    p.add_argument("run_pos", nargs="?", metavar="RUN", help="the run (or --run)")
    p.add_argument("--run")
    p.add_argument("--tag", help="checkpoint tag (default: the run's last)")
    p.add_argument("--selection", help="selection name (default: the run's select stage)")
    p.add_argument("--out", required=True, help="file or folder; for mlflow a folder (its "
                   "mlflow.db), a .db file or a tracking URI")
    p.set_defaults(fn=cmd_export)

    p = sub.add_parser("presets", help="list the shipped stage-plan presets")
    p.add_argument("--show", metavar="NAME", help="print one preset (or config file) resolved: "
                                                  "`extends` and `stage_defaults` filled in")
    p.add_argument("--full", action="store_true", help="with --show: every value, defaults too")
    p.set_defaults(fn=cmd_presets)

    p = sub.add_parser("validate", help="check a config (and its checkpoint and files) without running")
    p.add_argument("config")
    p.set_defaults(fn=cmd_validate)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.home:
        os.environ[paths.ENV_HOME] = str(Path(args.home).resolve())
    if not getattr(args, "fn", None):
        build_parser().print_help()
        return 0
    try:
        return args.fn(args)
    except StudioError as exc:  # every module's error says what and where
        print(f"reset-gui {args.command}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # disk full, permissions, a file size limit
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"reset-gui {args.command}: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
