"""PNG plots of an evaluation: ROC, precision-recall, reliability diagram, similarity histograms."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from training.evaluate import QueryOutcome
from training.metrics import reliability_curve


def write_plots(outcomes: Sequence[QueryOutcome], scorer_names: Sequence[str], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_curve

    out.mkdir(parents=True, exist_ok=True)
    in_bank = [o for o in outcomes if o.item.label != "distractor"]
    truth = np.array([o.item.label == "counterfeit" for o in in_bank], dtype=int)
    written = []

    def save(fig, name: str) -> None:
        path = out / name
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        written.append(path)

    fig, (roc_ax, pr_ax, rel_ax) = plt.subplots(1, 3, figsize=(15, 4.5))
    for name in scorer_names:
        p = np.array([o.results[name][0] for o in in_bank])
        fpr, tpr, _ = roc_curve(truth, p)
        roc_ax.plot(fpr, tpr, label=name)
        precision, recall, _ = precision_recall_curve(truth, p)
        pr_ax.plot(recall, precision, label=name)
        mean_p, observed, _ = reliability_curve(p, truth)
        rel_ax.plot(mean_p, observed, marker="o", label=name)
    roc_ax.plot([0, 1], [0, 1], "k:", linewidth=1)
    rel_ax.plot([0, 1], [0, 1], "k:", linewidth=1)
    for ax, title, xlabel, ylabel in (
        (roc_ax, "ROC (counterfeit score)", "false positive rate", "true positive rate"),
        (pr_ax, "Precision-recall", "recall", "precision"),
        (rel_ax, "Reliability", "predicted probability", "observed counterfeit share"),
    ):
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(loc="lower right" if ax is not pr_ax else "lower left")
    save(fig, "curves.png")

    fig, ax = plt.subplots(figsize=(7, 4.5))
    bins = np.linspace(-0.5, 1.0, 31)
    for label, colour in (("counterfeit", "tab:red"), ("authentic", "tab:green"), ("distractor", "tab:grey")):
        values = [o.top_similarity for o in outcomes if o.item.label == label]
        ax.hist(values, bins=bins, alpha=0.5, color=colour, label=f"{label} queries ({len(values)})")
    ax.set_title("Best CLIP similarity to any reference, by query truth")
    ax.set_xlabel("centred cosine similarity")
    ax.legend()
    save(fig, "similarity_histogram.png")
    return written
