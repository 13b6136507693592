"""Refit the speed model on slmplan/data/calibration and rewrite slmplan/data/speed_model.json.

    .venv/bin/python benchmarks/fit_speed_model.py          # refit, print validation, write JSON
    .venv/bin/python benchmarks/fit_speed_model.py --check  # exit 1 if the shipped JSON is stale

Prints the decode/prefill error on the training rows and leave-one-device-out / leave-one-model-out
cross-validation (benchmarks/speed_validation.py prints the full tables quoted in the README).
"""

import json
import sys

from slmplan.estimate.fit import fit_all
from slmplan.estimate.speed import MODEL_FILE
from slmplan.fileio import write_atomic


def main() -> int:
    result = fit_all()
    text = json.dumps(result, indent=1, sort_keys=True) + "\n"
    for cls, val in result["validation"].items():
        for split, e in val.items():
            d, p = e["decode"], e["prefill"]
            print(f"{cls:5s} {split:22s} decode median |err| {d.get('median_abs_pct')}%  mean {d.get('mean_abs_pct')}%  "
                  f"prefill median {p.get('median_abs_pct')}%  (decode rows: {d.get('rows')})")
    if "--check" in sys.argv:
        if MODEL_FILE.read_text() != text:
            print(f"{MODEL_FILE} is stale: run benchmarks/fit_speed_model.py", file=sys.stderr)
            return 1
        print("shipped constants are up to date")
        return 0
    write_atomic(MODEL_FILE, text)
    print(f"wrote {MODEL_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
