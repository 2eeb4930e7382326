"""Distinctiveness: does a CLIP neighbour stand out from the rest of the query's neighbourhood?

A re-upload of a registered photo is far nearer to that photo than to anything else in the banks. A
*new* photo of a product is not: it is about as near to every photo of similar products, of this
brand's other bank and of other brands, and a weak backbone puts some of them above the match
similarity (EfficientNet-Lite0: unrelated products drawn alike reach 0.70–0.76 against a match
similarity of 0.65). The copy-detection literature normalises a match's similarity by the query's
neighbourhood for this reason (the ISC21 descriptor-track winners subtract the mean similarity to the
query's nearest background images); here the background is the query's nearest neighbours *of other
banks* — another bank's or brand's photos — so several photos of one product registered in one bank
do not hide each other.

``distinctiveness = similarity − mean(the NEIGHBOURHOOD most similar neighbours of other banks)``

A CLIP neighbour below the model's ``min_distinctiveness`` (its profile, ``scoring.profile_fit``: the 1st
percentile over the profile's transformed copies that clear the match similarity) is *crowded*: it is
not copy evidence by CLIP alone. PDQ and keypoint verification still make it one; the brands'
look-alike classifiers handle new photos of known designs.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

NEIGHBOURHOOD = 4  # other banks' nearest neighbours averaged into the background
DEPTH = 10  # CLIP neighbours searched for it, whatever ``k`` a caller asked for
PERCENTILE = 1.0  # of the profile copies' distinctiveness: the model's ``min_distinctiveness``


def background(other_similarities: Sequence[float]) -> float:
    """Mean of the ``NEIGHBOURHOOD`` highest similarities of other banks' neighbours (0 with none: nothing
    to stand out from)."""
    top = sorted(other_similarities, reverse=True)[:NEIGHBOURHOOD]
    return float(np.mean(top)) if top else 0.0


def min_distinctiveness(copy_distinctiveness: np.ndarray) -> float:
    """The model's bar, from its profile copies' distinctiveness (floored to 0.01)."""
    if len(copy_distinctiveness) == 0:
        return 0.0
    return max(0.0, float(np.floor(np.percentile(copy_distinctiveness, PERCENTILE) * 100) / 100))
