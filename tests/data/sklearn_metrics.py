#!/usr/bin/python3
"""Writes sklearn_metrics.json: small data sets, labellings and scikit-learn's scores for them.

tests/test_metrics.cpp checks icp's metrics against these stored numbers. Run once (with Debian's
/usr/bin/python3, which has scikit-learn) and commit the JSON; rerun only when adding cases:

    /usr/bin/python3 tests/data/sklearn_metrics.py > tests/data/sklearn_metrics.json

Data are float32 values (so the C++ test holds exactly the same numbers) written as float64.
"""
import json
import sys

import numpy as np
import sklearn
from sklearn.metrics import (adjusted_rand_score, calinski_harabasz_score,
                             davies_bouldin_score, silhouette_score)
from sklearn.utils import check_random_state


def case(name, x, labels, k, sample_size, random_state):
    x = np.asarray(x, dtype=np.float32)
    x64 = x.astype(np.float64)
    labels = np.asarray(labels, dtype=np.int32)
    # The rows silhouette_score(sample_size=..., random_state=...) draws (same code path as
    # sklearn.metrics.cluster._unsupervised.silhouette_score in 1.2).
    indices = check_random_state(random_state).permutation(x.shape[0])[:sample_size]
    return {
        "name": name,
        "k": k,
        "rows": int(x.shape[0]),
        "cols": int(x.shape[1]),
        "x": [float(v) for v in x64.ravel()],
        "labels": [int(v) for v in labels],
        "calinski_harabasz": calinski_harabasz_score(x64, labels),
        "davies_bouldin": davies_bouldin_score(x64, labels),
        "silhouette": silhouette_score(x64, labels),
        "sample_size": sample_size,
        "sample_rows": [int(v) for v in indices],
        "silhouette_sampled": silhouette_score(x64, labels, sample_size=sample_size,
                                               random_state=random_state),
    }


def main():
    rng = np.random.RandomState(20261123)
    cases = []
    # Three blobs in 2-D with a few rows relabelled into the wrong blob.
    centres = np.array([[0.0, 0.0], [4.0, 0.5], [1.5, 5.0]])
    x = np.vstack([c + rng.normal(scale=1.0, size=(20, 2)) for c in centres])
    labels = np.repeat(np.arange(3), 20)
    labels[[3, 25, 47]] = [1, 2, 0]
    cases.append(case("blobs_2d", x, labels, 3, 25, 0))
    # Random labels on 4-D data, with label 2 of 0..4 unused (an empty cluster for icp).
    x = rng.normal(size=(50, 4)) * np.array([1.0, 2.0, 0.5, 3.0]) + 10.0
    labels = rng.choice([0, 1, 3, 4], size=50)
    cases.append(case("random_4d_gap", x, labels, 5, 30, 7))
    # A singleton cluster (silhouette 0 for its row) and uneven sizes in 3-D.
    x = rng.normal(size=(31, 3))
    x[30] = [8.0, -8.0, 8.0]
    labels = np.where(x[:, 0] > 0.3, 1, 0)
    labels[30] = 2
    cases.append(case("singleton_3d", x, labels, 3, 31, 1))

    ari = []
    a = rng.randint(0, 4, size=200)
    b = a.copy()
    b[:40] = rng.randint(0, 4, size=40)
    ari.append({"a": a.tolist(), "b": b.tolist()})                       # mostly agree
    ari.append({"a": a.tolist(), "b": rng.randint(0, 6, size=200).tolist()})  # independent
    ari.append({"a": a.tolist(), "b": ((a + 1) % 4 * 10).tolist()})        # renamed: 1
    ari.append({"a": [0] * 20 + [1] * 10, "b": [5] * 15 + [2] * 15})       # nested-ish
    for p in ari:
        p["ari"] = adjusted_rand_score(p["a"], p["b"])

    json.dump({"generator": "tests/data/sklearn_metrics.py",
               "sklearn_version": sklearn.__version__, "numpy_version": np.__version__,
               "cases": cases, "ari": ari}, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
