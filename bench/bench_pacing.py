"""Pacing quality: every simulated mode side by side over a grid of campaign shapes.

Each cell is one simulated day (``HOURS``) per mode with the same seed; cells run in a process
pool (2 workers). Printed per mode: occupancy as a share of its limit ``aht / (aht + wrap)`` and
the day's abandon rate (target 3 %); for predictive also the worst 1 h window. ``beats X`` says
whether predictive has higher occupancy than peer X at an equal or lower abandon rate: a peer
that abandons more than 3 % buys occupancy with abandons, one that abandons less pays for it
in idle agents, so where predictive at 3 % does not beat X outright, it is re-run with its
abandon target set around X's realised rate (a ladder, then a round of targets interpolated to
land just under it) and the best run at or under that rate is compared.
The simulator gives every mode the same customers, talk and wrap-up times (common random
numbers), so a cell's modes differ by their decisions only. The occupancy target is judged on
the mean of ``TARGET_DAYS`` simulated days, one day being too noisy for its margin.
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

from bench.common import Table
from controller.dialer.simulate import (
    SIMULATED_MODES,
    SimulationConfig,
    SimulationResult,
    simulate,
)

AGENTS = (5, 25, 100)
ANSWER_RATES = (0.1, 0.2, 0.4)
AHTS = (60.0, 180.0, 300.0)
HOURS = 8.0
WRAP = 15.0
SEED = 7
PEERS = ("vicidial-adaptive", "erlang-free-agents")
TARGET_CELL = (25, 0.2, 180.0)
# One 8 h day of 25 agents varies by about +-0.5 % of occupancy from seed to seed, as much as
# the target's margin: the target is judged on the mean of this many days (seeds SEED, SEED+1..).
TARGET_DAYS = 6
MIN_MATCHED_TARGET = 0.00002
MAX_MATCHED_TARGET = 0.9
MATCH_MARGINS = (0.5, 0.8, 0.97, 1.15, 1.4)
REFINE_AIMS = (0.96, 0.98, 0.995)


def _configs() -> list[SimulationConfig]:
    return [
        SimulationConfig(
            agents=agents, answer_rate=rate, aht=aht, wrap=WRAP, hours=HOURS, seed=SEED, mode=mode
        )
        for agents, rate, aht in itertools.product(AGENTS, ANSWER_RATES, AHTS)
        for mode in SIMULATED_MODES
    ]


def _pair(result: SimulationResult) -> str:
    return f"{result.occupancy / result.occupancy_limit:.3f} {100 * result.abandon_rate:4.1f}%"


def _cell(config: SimulationConfig) -> tuple[int, float, float]:
    return config.agents, config.answer_rate, config.aht


def _target_days() -> list[SimulationConfig]:
    agents, rate, aht = TARGET_CELL
    return [
        SimulationConfig(
            agents=agents, answer_rate=rate, aht=aht, wrap=WRAP, hours=HOURS, seed=SEED + day,
            mode="predictive",
        )
        for day in range(TARGET_DAYS)
    ]


def _target_note(days: list[SimulationResult]) -> str:
    shares = [day.occupancy / day.occupancy_limit for day in days]
    mean_share = sum(shares) / len(shares)
    worst_abandon = max(day.abandon_rate for day in days)
    verdict = "met" if mean_share >= 0.90 and worst_abandon <= 0.03 else "NOT met"
    return (
        f"target (25 agents, 20%, AHT 180) over {len(days)} days: predictive occupancy"
        f" {mean_share:.3f} of limit on average (days {min(shares):.3f}-{max(shares):.3f}),"
        f" abandon at most {100 * worst_abandon:.2f}% a day -> {verdict} (>= 0.90, <= 3%)"
    )


def _run_all(configs: list[SimulationConfig]) -> dict[SimulationConfig, SimulationResult]:
    # Heaviest cells first so the two workers finish together.
    order = sorted(configs, key=lambda c: c.agents / c.answer_rate / c.aht, reverse=True)
    with ProcessPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        return dict(zip(order, pool.map(simulate, order, chunksize=1), strict=True))


def _matched(
    config: SimulationConfig, ours: SimulationResult, peer: SimulationResult
) -> list[SimulationConfig]:
    """Predictive re-runs aiming at the peer's realised abandon rate: a user setting the
    abandon target to that rate.

    Predictive ends a little under its target (the feedback aims below it); the ratio seen in
    this cell at 3 % scales the new target, and a short ladder around it (MATCH_MARGINS) finds
    the run that lands closest under the peer's rate.
    """
    realised_share = ours.abandon_rate / config.abandon_target if ours.abandon_rate else 1.0
    aim = peer.abandon_rate / realised_share
    targets = {min(MAX_MATCHED_TARGET, max(MIN_MATCHED_TARGET, m * aim)) for m in MATCH_MARGINS}
    return [replace(config, abandon_target=target) for target in sorted(targets)]


def _refined(
    ladder: list[SimulationConfig],
    results: dict[SimulationConfig, SimulationResult],
    peer: SimulationResult,
) -> list[SimulationConfig]:
    """Where the ladder's best run still loses, targets interpolated between its closest run
    under the peer's rate and its closest run over it, aiming just under that rate (REFINE_AIMS)
    -- what a user would do next: nudge the target until the rate sits right under the limit.
    """
    under = [c for c in ladder if results[c].abandon_rate <= peer.abandon_rate]
    over = [c for c in ladder if results[c].abandon_rate > peer.abandon_rate]
    if not under or not over:
        return []
    low = max(under, key=lambda c: results[c].abandon_rate)
    high = min(over, key=lambda c: results[c].abandon_rate)
    low_rate, high_rate = results[low].abandon_rate, results[high].abandon_rate
    slope = (high.abandon_target - low.abandon_target) / (high_rate - low_rate)
    targets = {
        low.abandon_target + (aim * peer.abandon_rate - low_rate) * slope for aim in REFINE_AIMS
    }
    return [replace(low, abandon_target=t) for t in sorted(targets) if 0.0 < t < 1.0]


def _best(runs: list[SimulationResult], peer: SimulationResult) -> SimulationResult:
    """The run with the most occupancy at or under the peer's abandon rate (else the one
    abandoning least: it is shown, and loses)."""
    valid = [r for r in runs if r.abandon_rate <= peer.abandon_rate]
    if valid:
        return max(valid, key=lambda r: r.occupancy)
    return min(runs, key=lambda r: r.abandon_rate)


def _beats(ours: SimulationResult, peer: SimulationResult) -> bool:
    """More occupancy at an equal or lower abandon rate."""
    return ours.occupancy > peer.occupancy and ours.abandon_rate <= peer.abandon_rate


def _verdict(ours: SimulationResult, peer: SimulationResult) -> str:
    return f"{'yes' if _beats(ours, peer) else 'NO '} {_pair(ours)}"


def run() -> Table:
    base = _run_all(_configs())
    by_cell: dict[tuple[int, float, float], dict[str, SimulationResult]] = {}
    ours_config: dict[tuple[int, float, float], SimulationConfig] = {}
    for config, result in base.items():
        by_cell.setdefault(_cell(config), {})[config.mode] = result
        if config.mode == "predictive":
            ours_config[_cell(config)] = config
    # Where ours at 3 % does not beat a peer outright, compare at the peer's abandon rate.
    rematch = {
        (cell, peer): _matched(ours_config[cell], modes["predictive"], modes[peer])
        for cell, modes in by_cell.items()
        for peer in PEERS
        if not _beats(modes["predictive"], modes[peer])
    }
    ladders = [c for ladder in rematch.values() for c in ladder]
    target_days = _target_days()
    matched = _run_all(ladders + [c for c in target_days if c not in base])
    target_note = _target_note([base.get(c) or matched[c] for c in target_days])

    def peer_result(key: tuple[tuple[int, float, float], str]) -> SimulationResult:
        cell, peer = key
        return by_cell[cell][peer]

    def best_matched(key: tuple[tuple[int, float, float], str]) -> SimulationResult:
        return _best([matched[c] for c in rematch[key]], peer_result(key))

    refine = {
        key: _refined(ladder, matched, peer_result(key))
        for key, ladder in rematch.items()
        if not _beats(best_matched(key), peer_result(key))
    }
    matched |= _run_all([c for extra in refine.values() for c in extra])
    for key, extra in refine.items():
        rematch[key] = rematch[key] + extra
    rows: list[list[object]] = []
    cells_won = 0
    for cell in itertools.product(AGENTS, ANSWER_RATES, AHTS):
        modes = by_cell[cell]
        ours = modes["predictive"]
        verdicts = [
            _verdict(best_matched((cell, peer)) if (cell, peer) in rematch else ours, modes[peer])
            for peer in PEERS
        ]
        cells_won += all(verdict.startswith("yes") for verdict in verdicts)
        agents, rate, aht = cell
        rows.append(
            [agents, f"{rate:.0%}", int(aht)]
            + [_pair(modes[mode]) for mode in SIMULATED_MODES]
            + [f"{100 * ours.worst_hour_abandon_rate:.1f}%", *verdicts]
        )
    return Table(
        title=f"Pacing: occupancy/limit and day abandon rate ({HOURS:g} h days, wrap {WRAP:g} s)",
        columns=[
            "agents", "answer", "aht", *SIMULATED_MODES, "pred worst 1h",
            *(f"beats {peer}" for peer in PEERS),
        ],
        rows=rows,
        notes=[
            "beats X: predictive occupancy > X's at abandon <= X's; where predictive at 3 % does"
            " not beat X outright, it is re-run with its abandon target set around X's day"
            " abandon rate (a short ladder, then targets interpolated to land just under it);"
            " shown is the best run at or under X's rate.",
            target_note,
            f"predictive beats both peers in {cells_won}/{len(rows)} cells",
        ],
    )
