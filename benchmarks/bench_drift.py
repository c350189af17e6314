"""Drift benchmark: the whole drift report on 1,000,000 rows a side of 50 numeric and 5
categorical columns, against Evidently 0.7.23's DataDriftPreset with the same tests on the same
data; and the capture of a reference profile of 100,000 x 50 with its predictions (the model
predicting on a seeded sample of 50,000 rows, as a tracked cell's capture does).

`.venv/bin/python -m benchmarks drift`. The data is generated once (seeded) into
benchmarks/.work/drift/*.parquet and read by both sides. Evidently is installed into
benchmarks/.work/evidently (a venv of its own, never a dependency of the package) on first use,
with pandas below 3 (evidently 0.7.23 imports a function pandas 3 removed); when it cannot be
installed, that is printed instead of its figures.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work"
DATA = WORK / "drift"
EVIDENTLY_VENV = WORK / "evidently"
EVIDENTLY_VERSION = "0.7.23"
ROWS = 1_000_000
NUMERIC, CATEGORICAL = 50, 5
REPEATS = 3  # warm reports per median
PROFILE_ROWS, PROFILE_REPEATS = 100_000, 20

EVIDENTLY_RUN = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

reference, current = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
definition = DataDefinition(
    numerical_columns=[c for c in reference.columns if c.startswith("x")],
    categorical_columns=[c for c in reference.columns if c.startswith("c")])
figures = {}
for label, numeric, categorical in (("ks/chi2", "ks", "chisquare"), ("psi", "psi", "psi")):
    start, cpu = time.perf_counter(), time.process_time()
    snapshot = Report([DataDriftPreset(num_method=numeric, cat_method=categorical)]).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition))
    drifted = snapshot.dict()["metrics"][0]["value"]["count"]
    figures[label] = [time.perf_counter() - start, time.process_time() - cpu, drifted]
print(json.dumps(figures))
"""


def frames() -> tuple[Path, Path]:
    """Reference and current Parquet files: a third of the numeric columns shifted by 0.1
    standard deviation, two categorical columns with their frequencies reversed."""
    import numpy as np
    import pandas as pd

    paths = DATA / "reference.parquet", DATA / "current.parquet"
    if all(path.exists() for path in paths):
        return paths
    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(17)
    colours = np.array(["red", "green", "blue", "amber", "violet", "teal"])
    shares = np.array([0.3, 0.25, 0.2, 0.15, 0.07, 0.03])
    for path, drifted in zip(paths, (False, True), strict=True):
        columns = {f"x{i:02d}": rng.normal(0.1 if drifted and i % 3 == 0 else 0.0, 1.0, ROWS)
                   for i in range(NUMERIC)}
        for j in range(CATEGORICAL):
            p = shares[::-1] if drifted and j < 2 else shares
            columns[f"c{j}"] = pd.array(colours[rng.choice(len(colours), ROWS, p=p)], dtype="str")
        pd.DataFrame(columns).to_parquet(path)
    return paths


def ours(reference_path: Path, current_path: Path) -> dict[str, tuple[float, float]]:
    """The first report in this process (scipy.stats imported by it) and the warm median."""
    import pandas as pd

    from jupyter_mlops.monitoring.drift import compute_drift

    reference, current = pd.read_parquet(reference_path), pd.read_parquet(current_path)
    figures, warm = {}, []
    for repeat in range(REPEATS + 1):
        start, cpu = time.perf_counter(), time.process_time()
        report = compute_drift(current, reference)
        timing = (time.perf_counter() - start, time.process_time() - cpu)
        if repeat == 0:
            figures["first report"] = timing
            drifted = sum(f.band != "stable" or f.p_value < 0.05 for f in report.features)
            print(f"  ours: {drifted} of {len(report.features)} features flagged (p < 0.05 or "
                  f"PSI >= 0.1); notes: {report.notes[0]}")
        else:
            warm.append(timing)
    figures["warm report (median)"] = (statistics.median(t[0] for t in warm),
                                       statistics.median(t[1] for t in warm))
    return figures


def profile_capture() -> tuple[dict[str, tuple[float, float]], int]:
    """Median capture of a 100,000 x 50 profile with a logistic regression's predictions on
    its sample, and of that model's predict_proba alone (the model's time, not the capture's;
    on one BLAS thread, as in the capture); the JSON size of a 100-column profile."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import ThreadpoolController

    from jupyter_mlops.monitoring.profile import SEED, build_profile, sample_rows
    from jupyter_mlops.monitoring.reference import PREDICT_ROWS, capture

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(PROFILE_ROWS, 100)),
                         columns=[f"feature_{i:03d}" for i in range(100)])
    predictions = rng.random(PROFILE_ROWS)
    size = len(build_profile(frame, predictions).to_json().encode())
    half = frame.iloc[:, :50].copy()
    model = LogisticRegression().fit(half.iloc[:2_000], half["feature_000"].iloc[:2_000] > 0)
    sample = half.iloc[sample_rows(PROFILE_ROWS, PREDICT_ROWS, SEED)]
    blas = ThreadpoolController()

    def predict() -> None:  # as the capture runs it: on one BLAS thread, beside the profile
        with blas.limit(limits=1, user_api="blas"):
            model.predict_proba(sample)

    steps = {"capture": lambda: capture(model, {"X_train": half}),
             "model's predict_proba": predict}
    figures = {}
    for label, step in steps.items():
        step()
        times = []
        for _ in range(PROFILE_REPEATS):
            start, cpu = time.perf_counter(), time.process_time()
            step()
            times.append((time.perf_counter() - start, time.process_time() - cpu))
        figures[label] = (statistics.median(t[0] for t in times),
                          statistics.median(t[1] for t in times))
    wall, cpu = (a - b for a, b in zip(figures["capture"], figures["model's predict_proba"],
                                        strict=True))
    figures["capture less the model's time"] = (wall, cpu)
    return figures, size


def evidently_python() -> Path | None:
    """Evidently's interpreter, installing it into its own venv the first time."""
    python = EVIDENTLY_VENV / "bin" / "python"
    packages = EVIDENTLY_VENV / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    packages = packages / "site-packages"
    if ((packages / f"evidently-{EVIDENTLY_VERSION}.dist-info").exists()
            and any(packages.glob("pandas-2.*.dist-info"))):
        return python
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q",
                        f"evidently=={EVIDENTLY_VERSION}", "pandas<3"], check=True, timeout=1800)
    except (subprocess.SubprocessError, OSError) as error:
        print(f"evidently {EVIDENTLY_VERSION} could not be installed: {error}")
        return None
    return python


def evidently(reference_path: Path, current_path: Path) -> dict[str, list[float]] | None:
    python = evidently_python()
    if python is None:
        return None
    out = subprocess.run([str(python), "-c", EVIDENTLY_RUN, str(reference_path),
                          str(current_path)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    captures, size = profile_capture()
    for label, (wall, cpu) in captures.items():
        print(f"profile {label}, {PROFILE_ROWS:,} x 50, predictions on a sample of 50,000: "
              f"{wall * 1000:.1f} ms wall, {cpu * 1000:.1f} ms CPU")
    print(f"  target: the capture less the model's time <= 50 ms; 100 columns: "
          f"{size / 1000:.1f} KB of JSON (target <= 100 KB)")
    paths = frames()
    figures = ours(*paths)
    for label, (wall, cpu) in figures.items():
        print(f"ours, {label}: {wall:.2f} s wall, {cpu:.2f} s CPU (target <= 3 s)")
    theirs = evidently(*paths)
    if theirs:
        base = figures["warm report (median)"]
        for label, (wall, cpu, drifted) in theirs.items():
            print(f"evidently {EVIDENTLY_VERSION} DataDriftPreset ({label}): {wall:.1f} s wall, "
                  f"{cpu:.1f} s CPU, {drifted:.0f} columns drifted -> ours {wall / base[0]:.0f}x "
                  f"faster (wall), {cpu / base[1]:.0f}x (CPU)")
        both = sum(t[0] for t in theirs.values())
        print(f"  both presets together (PSI and KS/chi2, as our one report): {both:.1f} s "
              f"-> ours {both / base[0]:.0f}x faster (wall)")


if __name__ == "__main__":
    main()
