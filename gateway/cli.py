"""`llm-gateway serve | check-config` (plus the tracking and evaluation commands when present)."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence

from gateway.auth import open_access_warning
from gateway.config import CONFIG_ENV_VARS, config_path_from_env, load_config
from gateway.errors import ConfigError
from gateway.server import ACCESS_LOG_ENV

# Other packages add their commands through register(subparsers).
COMMAND_MODULES = ("tracking.cli", "evaluation.cli")
OWN_COMMANDS = frozenset({"serve", "check-config"})


def _config_path(args: argparse.Namespace) -> str | None:
    return args.config or config_path_from_env()


def cmd_check_config(args: argparse.Namespace) -> int:
    path = args.file or _config_path(args)
    if path is None:
        print("error: give a config file (or set LLM_GATEWAY_CONFIG)", file=sys.stderr)
        return 2
    try:
        config = load_config(path, strict=args.strict)
    except ConfigError as exc:
        print(f"{path}: invalid config\n{exc}", file=sys.stderr)
        return 1
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{path}: OK (version {config.version}, {len(config.endpoints)} endpoint(s))")
    for ep in config.endpoints:
        state = f"unavailable: {config.unavailable[ep.name]}" if ep.name in config.unavailable else "available"
        print(f"  {ep.name:<24} {ep.endpoint_type:<20} {ep.model.provider}/{ep.model.name or '-'}  [{state}]")
    return 0


def private_metrics_dir() -> str:
    """A fresh directory for this gateway's workers' metric files (two gateways on one host never mix)."""
    from gateway.metrics import MULTIPROC_ENV

    path = tempfile.mkdtemp(prefix="llm-gateway-metrics-")
    os.environ[MULTIPROC_ENV] = path  # inherited by the workers, read when they import prometheus_client
    return path


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.lifecycle import serve

    path = _config_path(args)
    if path is None:
        print(f"error: --config FILE is required (or set one of {', '.join(CONFIG_ENV_VARS)})", file=sys.stderr)
        return 2
    try:
        config = load_config(path, strict=args.strict)  # fail fast, before any worker starts
    except ConfigError as exc:
        print(f"{path}: invalid config\n{exc}", file=sys.stderr)
        return 1
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("gateway")
    for warning in config.warnings:
        log.warning("config: %s", warning)
    if (exposed := open_access_warning(args.host, config.auth)) is not None:
        log.warning(exposed)
    os.environ["LLM_GATEWAY_CONFIG"] = os.path.abspath(path)
    os.environ["LLM_GATEWAY_STRICT"] = "1" if args.strict else "0"
    os.environ[ACCESS_LOG_ENV] = "json" if args.access_log == "json" else "off"
    options = dict(
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        access_log=args.access_log == "text",
        server_header=False,  # "server: uvicorn" tells a scanner what to try; the gateway's headers say enough
        log_level=args.log_level,
        timeout_graceful_shutdown=args.graceful_timeout,
    )
    if args.workers > 1:
        metrics_dir = private_metrics_dir()
        try:
            uvicorn.run("gateway.server:create_app", **options)  # type: ignore[arg-type]
        finally:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        return 0
    # One process: our server, so a second signal forces the exit and a clean drain exits 0.
    return serve(uvicorn.Config("gateway.server:create_app", **options))  # type: ignore[arg-type]


def build_parser(*, plugins: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llm-gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", help="config file (default: $LLM_GATEWAY_CONFIG or MLflow's variables)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=5000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--strict", action="store_true", help="refuse to start when a credential is not set")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    serve.add_argument(
        "--access-log",
        nargs="?",
        const="text",
        choices=["text", "json"],
        help="log every call: uvicorn's text line, or one JSON line per call with timings and tokens (no content)",
    )
    serve.add_argument("--graceful-timeout", type=int, default=30, help="seconds in-flight calls get on shutdown")
    serve.set_defaults(func=cmd_serve)

    check = sub.add_parser("check-config", help="validate a config file and list its endpoints")
    check.add_argument("file", nargs="?")
    check.add_argument("--config", help=argparse.SUPPRESS)
    check.add_argument("--strict", action="store_true")
    check.set_defaults(func=cmd_check_config)

    for name in COMMAND_MODULES if plugins else ():
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # The server's own commands don't load the others' modules (evaluation pulls in numpy: ~20 MB
    # of RSS in every gateway process for nothing).
    plugins = not (argv and argv[0] in OWN_COMMANDS)
    args = build_parser(plugins=plugins).parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
