"""How the READMEs write the benchmarks' numbers: a median with each seed's value, signed differences, a speedup
with its bound (≥ where the front was never reached)."""

BOUND_MARK = {"exact": "", "at_most": "≤", "at_least": "≥", None: ""}


def number(value, digits: int = 4) -> str:
    return "never" if value is None else f"{value:.{digits}f}"


def signed(values: list, digits: int = 4) -> str:
    return ", ".join("n/a" if v is None else f"{v:+.{digits}f}" for v in values)


def digits_of(result: dict) -> int:
    return 2 if result["metric"] == "bleu" else 4


def speedups(entry: dict) -> str:
    """`median (seed, seed, seed)`, each seed marked ≤ / ≥ where the front only bounds it."""
    values = [
        "–" if v is None else f"{BOUND_MARK[b]}{v:.2f}" for v, b in zip(entry["values"], entry["bounds"])
    ]
    median = "–" if entry["median"] is None else f"{entry['median']:.2f}"
    return f"{median} ({', '.join(values)})"


def seed_values(entry: dict, digits: int) -> str:
    return f"{number(entry['median'], digits)} ({', '.join('–' if v is None else f'{v:.{digits}f}' for v in entry['values'])})"


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
