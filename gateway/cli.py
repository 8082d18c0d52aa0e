"""The `shadowgate` command line: serve, score, simulate, demo, review, rollout, report, replay.

User mistakes end in one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway import __version__
from gateway.errors import ConfigError, ShadowgateError
from gateway.report import cli as report_cli
from gateway.review import cli as review_cli
from gateway.rollout import cli as rollout_cli

EXIT_USAGE = 2


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _cmd_serve(args: argparse.Namespace) -> int:
    if args.data_plane:
        from gateway.serving.workers import run_data_plane

        return run_data_plane(Path(args.config), redis_url=args.redis_url)
    from gateway.serving.serve import run_serve

    return run_serve(Path(args.config), workers=args.workers)


def _workers(value: str) -> int:
    """`--workers`: a positive number, or `auto` for the cores this process may use."""
    if value == "auto":
        from gateway.serving.cores import available_cores

        return available_cores()
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"must be a positive number or auto, got {value!r}")
    return count


def _cmd_score(args: argparse.Namespace) -> int:
    from gateway.config import apply_environment, load_config
    from scoring.cli import run_score

    config = apply_environment(load_config(Path(args.config)))
    redis_url = args.redis_url or config.redis.url
    if redis_url is None:
        raise ConfigError("redis.url: a scoring worker needs a Redis URL (or --redis-url)")
    return run_score(config, redis_url=redis_url)


def _cmd_replay(args: argparse.Namespace) -> int:
    from gateway.config import ScoringConfig, apply_environment, load_config
    from scoring.replay import run_replay

    scoring = (
        apply_environment(load_config(Path(args.config))).scoring
        if args.config
        else ScoringConfig()
    )
    if args.threshold is not None:
        scoring = scoring.model_copy(update={"review_threshold": args.threshold})
    return run_replay(
        Path(args.golden),
        candidate=args.candidate,
        api_key=os.environ.get("SHADOWGATE_CANDIDATE_API_KEY"),
        config=scoring,
        max_regression_share=args.max_regressions,
    )


def _cmd_export_model(args: argparse.Namespace) -> int:
    from scoring.export import export_model

    path = export_model(args.model, Path(args.out_dir))
    print(f"set scoring.model: {path}")
    print(f"set scoring.tokenizer: {Path(args.out_dir) / 'tokenizer.json'}")
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    import uvloop

    from gateway.sim.simulator import PROFILES, serve_forever

    if args.profile not in PROFILES:
        choices = ", ".join(PROFILES)
        raise ConfigError(f"--profile: unknown profile {args.profile!r} (choose from {choices})")
    uvloop.run(serve_forever(PROFILES[args.profile], args.host, args.port))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from gateway.sim.demo import run_demo

    return run_demo(requests=args.requests, keep_running=args.keep_running)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shadowgate", description="Shadow-traffic gateway for LLM inference endpoints."
    )
    parser.add_argument("--version", action="version", version=f"shadowgate {__version__}")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway (and an embedded Redis if none is set)")
    serve.add_argument("--config", required=True, help="path of the YAML config file")
    serve.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="data-plane processes sharing the port (SO_REUSEPORT); auto: one per usable core",
    )
    # Internal: how the parent of `--workers N` starts each data-plane process.
    serve.add_argument("--data-plane", action="store_true", help=argparse.SUPPRESS)
    serve.add_argument("--redis-url", help=argparse.SUPPRESS)
    serve.set_defaults(func=_cmd_serve)

    score = sub.add_parser("score", help="run a scoring worker")
    score.add_argument("--config", required=True, help="path of the YAML config file")
    score.add_argument("--redis-url", help="overrides redis.url")
    score.set_defaults(func=_cmd_score)

    simulate = sub.add_parser("simulate", help="run a simulated OpenAI-compatible model server")
    simulate.add_argument("--profile", default="production")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=9001)
    simulate.set_defaults(func=_cmd_simulate)

    review_cli.add_parser(sub)
    rollout_cli.add_parser(sub)
    report_cli.add_parser(sub)

    export = sub.add_parser("export-model", help="export a sentence-transformers model to ONNX")
    export.add_argument("model", help="a model name or a local model directory")
    export.add_argument("out_dir", help="where model.onnx and tokenizer.json are written")
    export.set_defaults(func=_cmd_export_model)

    replay = sub.add_parser("replay", help="replay a golden set against a model")
    replay.add_argument("golden", help="JSON lines written by `shadowgate review export`")
    replay.add_argument("--candidate", required=True, help="base URL of the model under test")
    replay.add_argument("--config", help="take scoring settings from this config")
    replay.add_argument("--threshold", type=float, help="divergence above which a case regresses")
    replay.add_argument(
        "--max-regressions", type=float, default=0.05, help="allowed share (default 0.05)"
    )
    replay.set_defaults(func=_cmd_replay)

    demo = sub.add_parser("demo", help="run the whole pipeline on this machine and report")
    demo.add_argument("--requests", type=int, default=300, help="prompts to send (default 300)")
    demo.add_argument(
        "--keep-running", action="store_true", help="keep the servers up after the report"
    )
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.log_level)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"shadowgate: config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ShadowgateError as exc:
        print(f"shadowgate: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"shadowgate: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
