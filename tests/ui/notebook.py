"""The example notebook as the browser test opens it: its two training steps tracked.

The example stays the one in notebooks/; the copy in the lab's root gains `%load_ext`, and a
`%%mlops track` line (its training data as the run's dataset, plus a shared `accuracy` metric,
so the two runs compare on it) on the two training cells.
"""

from __future__ import annotations

import json
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "notebooks" / "02_tagged_pipeline.ipynb"
TRACKED = {  # step tag -> (run name, the cell's accuracy variable)
    "step:train-forest": ("train-forest", "forest_accuracy"),
    "step:train-logreg": ("train-logreg", "logreg_accuracy"),
}
RUNS = [name for name, _ in TRACKED.values()]
STEPS = ["load", "features", "train-forest", "train-logreg", "evaluate"]
EDGES = 6


def write_notebook(path: Path) -> Path:
    notebook = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        tracked = next((TRACKED[t] for t in tags if t in TRACKED), None)
        if cell["cell_type"] == "code" and tracked:
            name, variable = tracked
            source = "".join(cell["source"])
            cell["source"] = (f"%%mlops track {name} --metrics auto --inputs X_train\n{source}\n"
                              f"%mlops log accuracy={{{variable}}}")
    load = {"cell_type": "code", "id": "load-ext", "metadata": {"tags": ["skip"]},
            "source": "%load_ext jupyter_mlops", "outputs": [], "execution_count": None}
    notebook["cells"].insert(0, load)
    path.write_text(json.dumps(notebook, indent=1), encoding="utf-8")
    return path
