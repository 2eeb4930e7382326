"""Which scorer and default thresholds checks use now: the active calibration where it was fitted for the
served model, else the documented default (``fused``, the settings' thresholds); a brand's policy overrides
the thresholds. Re-read each poll: ``counterfeit train calibrate`` or a model swap changes them."""

from __future__ import annotations

import logging

from scoring.calibration import CalibrationMismatch, CalibrationStore
from scoring.scorers import MarginScorer, Scorer, Thresholds
from service.checks.policies import PolicyStore
from service.serving.runner import ServingSlot
from service.settings import Settings

log = logging.getLogger(__name__)


class ActiveScoring:
    def __init__(
        self, *, settings: Settings, calibrations: CalibrationStore, policies: PolicyStore, slot: ServingSlot
    ):
        self.settings = settings
        self.calibrations = calibrations
        self.policies = policies
        self.slot = slot
        self._stamp: tuple | None = None
        self.default_scorer = self._default_scorer()
        self.scorer: Scorer = self.default_scorer
        self.default_thresholds = self._settings_thresholds()
        self.refresh()

    def thresholds_for(self, brand: str | None) -> Thresholds:
        return self.policies.thresholds(brand, self.default_thresholds)

    def refresh(self) -> None:
        """Use the active calibration if it was fitted for the served model; else the documented default."""
        fingerprint = self.slot.current.runner.info.fingerprint()
        stamp = (self.calibrations.stamp(), fingerprint)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        # The default scorer's notion of a copy is the served model's (a swap may bring another model).
        self.default_scorer = self._default_scorer()
        try:
            artefact = self.calibrations.load_active(fingerprint)
        except CalibrationMismatch as exc:
            log.error("Not using the active calibration: %s", exc)
            artefact = None
        if artefact is None:
            self.scorer = self.default_scorer
            self.default_thresholds = self._settings_thresholds()
        else:
            log.info("Using calibration %s", artefact.version)
            self.scorer = artefact.scorer()
            self.default_thresholds = Thresholds(**artefact.thresholds)

    def _default_scorer(self) -> MarginScorer:
        return MarginScorer(
            self.slot.current.min_match_similarity,
            self.settings.score_temperature,
            use_local=self.settings.local_features,
        )

    def _settings_thresholds(self) -> Thresholds:
        return Thresholds(self.settings.counterfeit_threshold, self.settings.authentic_threshold)
