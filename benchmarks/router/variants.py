"""A proxy's variants (weighted, mirror) against the same proxy plain, round by round.

Every figure is a median over rounds of a ratio taken inside one round, so that load from
other work on the machine, which moves throughput up to 2× between rounds, cancels out.

``<variant>_rps_vs_plain`` / ``<variant>_cpu_vs_plain``: throughput / proxy CPU per served
request of the variant over the plain proxy's; ``<variant>_cpu_vs_weighted`` the CPU over
the weighted variant's (same weights), where one was measured. For a mirroring variant,
``<variant>_copied_share`` is the copies the shadow backend answered per request served, and
``<variant>_cpu_per_copy_vs_<base>`` what one copy costs in served requests:
(CPU per request of the variant − of ``base``) / (copied share × CPU per request of the
plain proxy), with ``base`` the plain proxy, its weighted variant (the same weights without
the mirror) or its ``-mirror-0`` variant (nginx: the mirror subrequest made and returned at
once for every request, so what is left is the copy's own proxying). The issue's bound —
mirroring 20 % of the requests costs at most 10 % — allows 0.5 served requests per copy.
"""

from __future__ import annotations

import statistics

FAMILIES = ("loopline", "nginx")


def compare(
    samples: dict[str, list[tuple[float, float]]], shares: dict[str, list[float]]
) -> dict[str, float]:
    """The figures above, from ``samples`` (mode → per round: req/s, CPU µs per request) and
    ``shares`` (mirroring mode → per round: copies per request served)."""
    out: dict[str, float] = {}
    for family in FAMILIES:
        plain = samples.get(family)
        if plain is None:
            continue
        for mode, rounds in samples.items():
            if not mode.startswith(f"{family}-"):
                continue
            p = mode.replace("-", "_")
            pairs = list(zip(rounds, plain, strict=True))
            out[f"{p}_rps_vs_plain"] = round(statistics.median(v[0] / b[0] for v, b in pairs), 3)
            out[f"{p}_cpu_vs_plain"] = round(statistics.median(v[1] / b[1] for v, b in pairs), 3)
            weighted = samples.get(f"{family}-weighted")
            if weighted is not None and mode != f"{family}-weighted":
                out[f"{p}_cpu_vs_weighted"] = round(statistics.median(
                    v[1] / b[1] for v, b in zip(rounds, weighted, strict=True)), 3)  # fmt: skip
            if mode not in shares:
                continue
            share = shares[mode]
            out[f"{p}_copied_share"] = round(statistics.median(share), 4)
            if statistics.median(share) < 0.01:  # no copies to divide by (``-mirror-0``)
                continue
            for base in (family, f"{family}-weighted", f"{family}-mirror-0"):
                if base not in samples or base == mode:
                    continue
                name = "plain" if base == family else base.removeprefix(f"{family}-")
                out[f"{p}_cpu_per_copy_vs_{name.replace('-', '_')}"] = round(statistics.median(
                    (v[1] - b[1]) / (c * pl[1])
                    for v, b, pl, c in zip(rounds, samples[base], plain, share, strict=True)
                    if c > 0
                ), 2)  # fmt: skip
    return out
