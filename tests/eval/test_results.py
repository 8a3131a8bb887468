"""eval.json through its typed results: written strictly, read forgivingly."""

import math

from replab.eval.parts import RESULT_TYPES
from replab.eval.parts.knn import KnnResult
from replab.eval.parts.probe_curves import ProbeScore, probe_table
from replab.eval.results import EvalResult


def test_malformed_parts_are_noted_and_unknown_entries_kept():
    result = EvalResult.from_json(
        {
            "method": "vae",
            "dataset": "digits",
            "knn": {"accuracy": None},
            "clustering": "broken",
            "disentanglement": {"mig": "NaN", "sap": 0.5},
            "calibration": {"ece": 0.07},
            "seconds": {"knn": 1.5},
        },
        RESULT_TYPES,
    )
    assert math.isnan(result.get(KnnResult).accuracy)
    assert "clustering" not in result.parts and result.problems[0].startswith("clustering")
    assert math.isnan(result.parts["disentanglement"].scores["mig"])
    assert result.other == {"calibration": {"ece": 0.07}}
    out = result.to_json()
    assert out["knn"] == {"accuracy": None} and out["disentanglement"]["mig"] is None
    assert out["calibration"] == {"ece": 0.07}  # written back as it was read


def test_the_probe_table_sits_beside_its_baselines():
    curve = {"0.1": ProbeScore(0.5, 0.1), "1.0": ProbeScore(0.8)}
    baselines = {"pixels": {"1.0": ProbeScore(0.6)}}
    table = probe_table(curve, baselines)
    assert table.columns == ["label fraction", "representation", "pixels"]
    assert [row[0] for row in table.rows] == ["10%", "100%"]
    assert table.rows[0][2] is None and table.rows[1][2].mean == 0.6
