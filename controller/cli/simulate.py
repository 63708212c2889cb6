"""``callctl simulate``: play a working day of outbound dialing in seconds, with the real pacing.

Lets a supervisor see what a campaign shape (agents, answer rate, talk and wrap-up times) gives
in occupancy and abandon rate under each pacing mode before dialing a single customer. Needs no
config, store or controller: it runs :mod:`controller.dialer.simulate` in-process.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from controller.cli.common import EXIT_USAGE, CliError, add_json_flag, print_json, print_table
from controller.dialer.simulate import (
    INFORMED_MODES,
    SIMULATED_MODES,
    SimulationConfig,
    SimulationResult,
    simulate,
)

ALL_MODES = "all"

# (label, field, format) of the rows printed for people; --json prints every field.
_REPORT = (
    ("occupancy (talk / logged-in)", "occupancy", "{:.3f}"),
    ("occupancy limit aht/(aht+wrap)", "occupancy_limit", "{:.3f}"),
    ("abandon rate, day", "abandon_rate", "{:.2%}"),
    ("abandon rate, worst 1 h", "worst_hour_abandon_rate", "{:.2%}"),
    ("abandon rate incl. AMD false positives", "abandon_rate_with_amd_fp", "{:.2%}"),
    ("calls", "calls", "{}"),
    ("answers (human + machine)", "answers", "{}"),
    ("live answers (to an agent)", "live_answers", "{}"),
    ("abandons", "abandons", "{}"),
    ("machines detected", "machines_detected", "{}"),
    ("AMD false positives (humans hung up)", "amd_false_positives", "{}"),
    ("agent wait between calls (s)", "agent_wait_seconds", "{:.1f}"),
)


def _fraction(text: str) -> float:
    """A share given as 0.2 or 20%."""
    try:
        value = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number or percentage: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (or 0% and 100%): {text!r}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    defaults = SimulationConfig()
    parser = sub.add_parser(
        "simulate",
        help="simulate a dialing day with the real pacing code",
        description=(
            "Discrete-event simulation of an outbound day: agents, customers (answer rate, "
            "ring time, answering machines, AMD accuracy) and the pacing mode. Prints "
            "occupancy, abandon rate over the day and the worst hour, calls, answers and "
            "agent wait. An abandon is a live answer with no agent within 2 s."
        ),
    )
    parser.add_argument("--agents", type=int, default=defaults.agents, help="agents logged in")
    parser.add_argument(
        "--answer-rate", type=_fraction, default=defaults.answer_rate,
        help="share of calls answered, human or machine (0.2 or 20%%)",
    )
    parser.add_argument(
        "--aht", type=float, default=defaults.aht, help="mean talk time in seconds"
    )
    parser.add_argument(
        "--wrap", type=float, default=defaults.wrap, help="mean wrap-up time in seconds"
    )
    parser.add_argument("--hours", type=float, default=defaults.hours, help="day length")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed")
    parser.add_argument(
        "--mode", choices=(*SIMULATED_MODES, *INFORMED_MODES, ALL_MODES),
        default=defaults.mode,
        help=(
            f"pacing mode, or '{ALL_MODES}' for every pacer side by side; talk-known and"
            " calls-known are predictive told when each talk ends or which calls in flight"
            " will connect (what a perfect forecast of either would be worth)"
        ),
    )
    parser.add_argument(
        "--machine-share", type=_fraction, default=defaults.machine_share,
        help="share of answers that are answering machines",
    )
    parser.add_argument(
        "--amd-accuracy", type=_fraction, default=defaults.amd_accuracy,
        help="share of answers AMD classifies right",
    )
    parser.add_argument(
        "--ring-timeout", type=float, default=defaults.ring_timeout,
        help="seconds an unanswered call rings (>= 15)",
    )
    parser.add_argument(
        "--abandon-target", type=_fraction, default=defaults.abandon_target,
        help="abandon rate predictive pacing keeps under",
    )
    parser.add_argument("--line-cap", type=int, default=defaults.line_cap, help="trunk lines")
    parser.add_argument(
        "--cps-cap", type=float, default=defaults.cps_cap, help="trunk calls per second"
    )
    add_json_flag(parser)
    parser.set_defaults(func=run_simulate)


def _config(args: argparse.Namespace) -> SimulationConfig:
    try:
        config = SimulationConfig(
            agents=args.agents,
            answer_rate=args.answer_rate,
            aht=args.aht,
            wrap=args.wrap,
            hours=args.hours,
            seed=args.seed,
            mode=SIMULATED_MODES[0] if args.mode == ALL_MODES else args.mode,
            machine_share=args.machine_share,
            amd_accuracy=args.amd_accuracy,
            ring_timeout=args.ring_timeout,
            abandon_target=args.abandon_target,
            line_cap=args.line_cap,
            cps_cap=args.cps_cap,
        )
        config.pacing_settings()  # checks the pacing knobs (ring timeout, caps) too
    except ValueError as error:
        raise CliError(f"simulate: {error}", status=EXIT_USAGE) from None
    return config


def run_simulate(args: argparse.Namespace) -> int:
    config = _config(args)
    modes = SIMULATED_MODES if args.mode == ALL_MODES else (args.mode,)
    results: list[SimulationResult] = [simulate(replace(config, mode=mode)) for mode in modes]
    if args.json:
        print_json([result.as_dict() for result in results])
        return 0
    print(
        f"{config.agents} agents, answer rate {config.answer_rate:.0%}, AHT {config.aht:g} s, "
        f"wrap {config.wrap:g} s, {config.hours:g} h, seed {config.seed}"
    )
    rows = [
        {"metric": label, **{r.mode: fmt.format(getattr(r, name)) for r in results}}
        for label, name, fmt in _REPORT
    ]
    print_table(rows, ["metric", *modes])
    return 0
