"""The policy benchmark's statistics and reports: per-policy summaries, paired differences against a reference
policy (mean, standard error, wins, budget to reach its final score), markdown tables and the plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def summarize(runs: list[dict[str, Any]], policies: list[str]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for policy in policies:
        mine = [r for r in runs if r["policy"] == policy]
        if not mine:
            continue
        n_rounds = min(len(r["rounds"]) for r in mine)
        rows = []
        for i in range(n_rounds):
            f1 = np.array([r["rounds"][i]["test_macro_f1"] for r in mine])
            acc = np.array([r["rounds"][i]["test_accuracy"] for r in mine])
            rows.append(
                {
                    "round": i,
                    "budget": int(round(float(np.mean([r["rounds"][i]["budget"] for r in mine])))),
                    "macro_f1_mean": float(f1.mean()),
                    "macro_f1_std": float(f1.std()),
                    "accuracy_mean": float(acc.mean()),
                    "accuracy_std": float(acc.std()),
                }
            )
        summary[policy] = {"rounds": rows, "seeds": [r["seed"] for r in mine]}
    return summary


def _mean_se(values) -> tuple[float, float | None]:
    a = np.asarray(values, dtype=float)
    return float(a.mean()), (float(a.std(ddof=1) / np.sqrt(len(a))) if len(a) > 1 else None)


def versus_seed_only(runs: list[dict[str, Any]], policies: list[str]) -> dict[str, Any]:
    """Per teacher policy: final test macro-F1 minus seed-only's of the same seed (paired), its mean and standard
    error, the wins, and the final macro-F1's mean and standard error; plus what the gate and harm detection
    dropped, summed over the seeds."""
    final = {(r["policy"], r["seed"]): r["rounds"][-1]["test_macro_f1"] for r in runs}
    final_val = {(r["policy"], r["seed"]): r["rounds"][-1]["val_macro_f1"] for r in runs}

    out: dict[str, Any] = {}
    for policy in policies:
        mine = [r for r in runs if r["policy"] == policy]
        if not mine:
            continue
        mean, se = _mean_se([final[(policy, r["seed"])] for r in mine])
        dropped: dict[str, int] = {}
        for r in mine:
            for reason, count in r.get("dropped", {}).items():
                dropped[reason] = dropped.get(reason, 0) + count
        row: dict[str, Any] = {
            "final_macro_f1_mean": mean,
            "final_macro_f1_se": se,
            "requested": sum(r.get("requested", 0) for r in mine),
            "accepted": sum(r.get("accepted", 0) for r in mine),
            "dropped": {k: dropped[k] for k in sorted(dropped)},
            "set_aside_rows": sum(r.get("set_aside_rows", 0) for r in mine),
        }
        paired = [r["seed"] for r in mine if ("seed_only", r["seed"]) in final]
        if policy != "seed_only" and paired:
            diffs = [final[(policy, s)] - final[("seed_only", s)] for s in paired]
            diff_mean, diff_se = _mean_se(diffs)
            row.update(
                {
                    "minus_seed_only": dict(zip(map(str, paired), diffs)),
                    "minus_seed_only_mean": diff_mean,
                    "minus_seed_only_se": diff_se,
                    "wins": sum(d > 0 for d in diffs),
                    "seeds_compared": len(diffs),
                    "at_or_above_seed_only": diff_mean >= 0,
                }
            )
            # `distill --baseline` keeps the better student on validation: the seed-only run when it scores higher
            kept = {
                s: policy if final_val[(policy, s)] >= final_val[("seed_only", s)] else "seed_only" for s in paired
            }
            kept_diffs = [final[(kept[s], s)] - final[("seed_only", s)] for s in paired]
            kept_mean, kept_se = _mean_se(kept_diffs)
            row["keep_better"] = {
                "final_macro_f1_mean": _mean_se([final[(kept[s], s)] for s in paired])[0],
                "minus_seed_only_mean": kept_mean,
                "minus_seed_only_se": kept_se,
                "kept_seed_only": sum(k == "seed_only" for k in kept.values()),
                "seeds_compared": len(paired),
            }
        out[policy] = row
    return out


def _reach(rounds: list[dict[str, Any]], target: float, key: str = "test_macro_f1") -> float | None:
    """Budget (interpolated between rounds) at which one run's test macro-F1 first reaches ``target``."""
    return budget_to_reach([{"budget": r["budget"], "macro_f1_mean": r[key]} for r in rounds], target)


def paired_versus(runs: list[dict[str, Any]], reference: str = "uniform") -> dict[str, Any]:
    """Every teacher policy against ``reference`` on the same seeds: per round and at the end, the paired difference
    of test macro-F1 (mean, standard error, wins); and per seed, the budget at which the policy first reaches the
    reference's final score of that seed, as a share of the reference's budget (a seed that never reaches it counts
    as not reached)."""
    by = {(r["policy"], r["seed"]): r for r in runs}
    out: dict[str, Any] = {}
    for policy in sorted({r["policy"] for r in runs} - {reference, "seed_only"}):
        seeds = sorted(s for p, s in by if p == policy and (reference, s) in by)
        if not seeds:
            continue
        n_rounds = min(min(len(by[(policy, s)]["rounds"]), len(by[(reference, s)]["rounds"])) for s in seeds)
        per_round = []
        for i in range(n_rounds):
            diffs = [
                by[(policy, s)]["rounds"][i]["test_macro_f1"] - by[(reference, s)]["rounds"][i]["test_macro_f1"]
                for s in seeds
            ]
            mean, se = _mean_se(diffs)
            per_round.append({"round": i, "mean": mean, "se": se, "wins": int(sum(d > 0 for d in diffs))})
        shares = []
        for s in seeds:
            ref = by[(reference, s)]["rounds"]
            budget = _reach(by[(policy, s)]["rounds"][:n_rounds], ref[n_rounds - 1]["test_macro_f1"])
            total = ref[n_rounds - 1]["budget"]
            shares.append(None if budget is None or not total else budget / total)
        reached = [x for x in shares if x is not None]
        out[policy] = {
            "reference": reference,
            "seeds": seeds,
            "per_round": per_round,
            "final": per_round[-1],
            "final_diffs": {
                str(s): by[(policy, s)]["rounds"][n_rounds - 1]["test_macro_f1"]
                - by[(reference, s)]["rounds"][n_rounds - 1]["test_macro_f1"]
                for s in seeds
            },
            "budget_share_to_reach_reference_final": dict(zip(map(str, seeds), shares)),
            "reached_reference_final": len(reached),
            "budget_share_median": float(np.median([x if x is not None else np.inf for x in shares])),
        }
    return out


def paired_table(paired: dict[str, Any]) -> str:
    if not paired:
        return ""
    n_rounds = max(len(v["per_round"]) for v in paired.values())
    lines = [
        "| paired difference (test macro-F1 points) | "
        + " | ".join(f"round {i}" for i in range(n_rounds))
        + " | budget share to reach the reference's final (median; seeds reaching it) |",
        "|" + "---|" * (n_rounds + 2),
    ]
    for policy, row in paired.items():
        n = len(row["seeds"])
        cells = [f"{_signed(r['mean'], r['se'])} ({r['wins']}/{n})" for r in row["per_round"]]
        share = row["budget_share_median"]
        share_cell = "not reached" if not np.isfinite(share) else f"{100 * share:.0f} %"
        lines.append(
            f"| {policy} − {row['reference']} | "
            + " | ".join(cells)
            + f" | {share_cell} ({row['reached_reference_final']}/{n}) |"
        )
    return "\n".join(lines)


def _signed(mean: float, se: float | None) -> str:
    return f"{100 * mean:+.1f}" + ("" if se is None else f" ± {100 * se:.1f}")


def paired_final(runs: list[dict[str, Any]], policy: str, reference: str) -> dict[str, Any] | None:
    """Final test macro-F1 of ``policy`` minus ``reference``'s on the same seeds: mean, standard error, wins."""
    final = {(r["policy"], r["seed"]): r["rounds"][-1]["test_macro_f1"] for r in runs}
    seeds = sorted(s for p, s in final if p == policy and (reference, s) in final)
    if not seeds:
        return None
    diffs = np.array([final[(policy, s)] - final[(reference, s)] for s in seeds])
    mean, se = _mean_se(diffs)
    return {"mean": mean, "se": se, "wins": int((diffs > 0).sum()), "seeds": seeds}


def annotate_comparisons(runs: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """--source annotate: guided selection against random and margin selection and the generate path (paired)."""
    out = {}
    lines = ["| comparison | final test macro-F1 difference (paired) | wins |", "|---|---|---|"]
    pairs = (("guided", "random"), ("guided", "generate"), ("guided", "margin"), ("margin", "random"))
    for policy, reference in pairs:
        row = paired_final(runs, policy, reference)
        if row is None:
            continue
        out[f"{policy}_minus_{reference}"] = row
        se = "" if row["se"] is None else f" ± {100 * row['se']:.1f}"
        lines.append(f"| {policy} - {reference} | {100 * row['mean']:+.1f}{se} | {row['wins']}/{len(row['seeds'])} |")
    return out, "\n".join(lines)


def versus_table(rows: dict[str, Any]) -> str:
    lines = [
        "| policy | final test macro-F1 | minus seed only (paired) | wins | keeping the better on validation: minus "
        "seed only (seed-only kept) | gate and verification dropped | set aside by harm |",
        "|---|---|---|---|---|---|---|",
    ]
    for policy, row in rows.items():
        se = row["final_macro_f1_se"]
        f1 = f"{100 * row['final_macro_f1_mean']:.1f}" + ("" if se is None else f" ± {100 * se:.1f}")
        diff = wins = kept = ""
        if "minus_seed_only_mean" in row:
            diff = _signed(row["minus_seed_only_mean"], row["minus_seed_only_se"])
            wins = f"{row['wins']}/{row['seeds_compared']}"
        if "keep_better" in row:
            k = row["keep_better"]
            kept = _signed(k["minus_seed_only_mean"], k["minus_seed_only_se"])
            kept += f" ({k['kept_seed_only']}/{k['seeds_compared']})"
        dropped = ", ".join(f"{k}: {v}" for k, v in row["dropped"].items()) or "–"
        if policy != "seed_only" and not row["requested"]:
            dropped = "not recorded"  # results written before the benchmark recorded requests and drops
        elif policy != "seed_only":
            dropped = f"{sum(row['dropped'].values())} of {row['requested']} ({dropped})"
        else:
            dropped = "–"
        aside = str(row["set_aside_rows"]) if policy != "seed_only" else "–"
        lines.append(f"| {policy} | {f1} | {diff} | {wins} | {kept} | {dropped} | {aside} |")
    return "\n".join(lines)


def budget_to_reach(rows: list[dict[str, Any]], target: float) -> float | None:
    """Smallest budget (interpolated linearly between rounds) at which the mean macro-F1 reaches ``target``."""
    previous = None
    for row in rows:
        if row["macro_f1_mean"] >= target - 1e-12:
            if previous is None or row["macro_f1_mean"] == previous["macro_f1_mean"]:
                return float(row["budget"])
            frac = (target - previous["macro_f1_mean"]) / (row["macro_f1_mean"] - previous["macro_f1_mean"])
            return float(previous["budget"] + max(0.0, frac) * (row["budget"] - previous["budget"]))
        previous = row
    return None


def markdown_table(summary: dict[str, Any], reach: dict[str, Any], ceiling: dict[str, Any] | None) -> str:
    policies = list(summary)
    n_rounds = max(len(v["rounds"]) for v in summary.values())
    header = "| policy | " + " | ".join(f"round {i}" for i in range(n_rounds)) + " | budget to reach uniform's final |"
    lines = [header, "|" + "---|" * (n_rounds + 2)]
    for policy in policies:
        cells = []
        for row in summary[policy]["rounds"]:
            cells.append(f"{100 * row['macro_f1_mean']:.1f} ± {100 * row['macro_f1_std']:.1f}")
        cells += [""] * (n_rounds - len(cells))
        value = reach.get(policy)
        reach_cell = "not reached" if value is None else f"{value:.0f}"
        if policy == "seed_only":
            reach_cell = "n/a (no teacher)" if value is None else reach_cell
        lines.append(f"| {policy} | " + " | ".join(cells) + f" | {reach_cell} |")
    budgets = [row["budget"] for row in summary.get("uniform", next(iter(summary.values())))["rounds"]]
    lines.append("| budget (samples) | " + " | ".join(str(b) for b in budgets) + " | |")
    if ceiling:
        lines.append(
            f"| full data ({ceiling['train_examples']} examples) | "
            + " | ".join([""] * (n_rounds - 1) + [f"{100 * ceiling['macro_f1']:.1f}"])
            + " | |"
        )
    return "\n".join(lines)


def plot(summary: dict[str, Any], ceiling: dict[str, Any] | None, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, name in ((axes[0], "macro_f1", "macro-F1"), (axes[1], "accuracy", "accuracy")):
        for policy, data in summary.items():
            x = [r["budget"] for r in data["rounds"]]
            y = [100 * r[f"{key}_mean"] for r in data["rounds"]]
            e = [100 * r[f"{key}_std"] for r in data["rounds"]]
            if policy == "seed_only":  # no teacher: drawn at the same training steps as uniform's rounds
                x = [r["budget"] for r in summary.get("uniform", data)["rounds"]][: len(y)]
            ax.errorbar(x, y, yerr=e, marker="o", capsize=3, label=policy)
        if ceiling:
            ax.axhline(100 * ceiling[key], color="gray", linestyle="--", label="full data")
        ax.set_xlabel("teacher samples requested (seed only: same training steps)")
        ax.set_ylabel(f"test {name} (%)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
