"""Calibration: thresholds at false-match rates, and scores as likelihood ratios."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facelens.errors import CalibrationError, InputError
from facelens.gallery.store import TemplateMatrix
from facelens.match.calibration import calibration_for, fit_calibration, operating_point
from facelens.match.decide import identify_faces
from facelens.match.evidence import cllr, fit_logistic_llr
from facelens.models.registry import DEFAULT_EMBEDDER


def _synthetic(n_genuine: int = 20_000, n_impostor: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(0.6, 0.1, n_genuine), rng.normal(0.0, 0.1, n_impostor)


def test_thresholds_give_the_promised_rates() -> None:
    genuine, impostor = _synthetic()
    calibration = fit_calibration("m", genuine, impostor, dataset="synthetic", command="test")
    assert calibration.fmr[-1] == 1e-5  # 1e-6 needs a million impostor pairs: not offered
    for target in (1e-1, 1e-2, 1e-3, 1e-4):
        threshold = calibration.threshold_for(target)
        assert (impostor >= threshold).mean() <= target
        assert (impostor >= threshold).mean() >= target * 0.9
        assert calibration.fmr_at(threshold) == pytest.approx(target, rel=1e-6)
    assert calibration.threshold_for(3e-3) > calibration.threshold_for(1e-2)
    with pytest.raises(CalibrationError, match="below what"):
        calibration.threshold_for(1e-7)
    with pytest.raises(CalibrationError):
        calibration.threshold_for(1.5)


def test_operating_point_resolution() -> None:
    genuine, impostor = _synthetic()
    calibration = fit_calibration("m", genuine, impostor, dataset="synthetic", command="test")
    by_rate = operating_point(calibration, fmr=1e-3)
    assert by_rate.fmr == 1e-3
    by_threshold = operating_point(calibration, threshold=by_rate.threshold)
    assert by_threshold.fmr == pytest.approx(1e-3, rel=1e-6)
    assert operating_point(calibration).fmr == 1e-4
    with pytest.raises(CalibrationError, match="not both"):
        operating_point(calibration, fmr=1e-3, threshold=0.3)
    assert operating_point(calibration, threshold=1.0).threshold == 1.0  # never matches: allowed
    for impossible in (7.0, -1.5, math.nan):  # a cosine cannot reach them: refused, not "1e-6"
        with pytest.raises(CalibrationError, match="between -1 and 1"):
            operating_point(calibration, threshold=impossible)


def test_identify_refuses_a_candidate_list_shorter_than_one() -> None:
    """top_k below 1 is refused in words, on an empty gallery and on a full one alike."""
    genuine, impostor = _synthetic()
    calibration = fit_calibration("m", genuine, impostor, dataset="synthetic", command="test")
    point = operating_point(calibration)
    vectors = np.eye(3, 128, dtype=np.float32)
    people = TemplateMatrix(
        template_ids=np.arange(1, 4, dtype=np.int64),
        person_ids=np.arange(1, 4, dtype=np.int64),
        vectors=vectors,
        names={1: "a", 2: "b", 3: "c"},
        qualities=np.ones(3),
    )
    empty = TemplateMatrix(
        np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 128), np.float32), {}, np.ones(0)
    )
    for gallery in (people, empty):
        for top_k in (0, -3):
            with pytest.raises(InputError, match=f"at least 1, not {top_k}"):
                identify_faces([], gallery, point, calibration, top_k=top_k)
        assert identify_faces([], gallery, point, calibration, top_k=1) == []


def test_logistic_llr_recovers_the_true_likelihood_ratio() -> None:
    genuine, impostor = _synthetic()
    line = fit_logistic_llr(genuine, impostor)
    # Equal-variance Gaussians: ln LR(s) = (mu_g - mu_i) / sigma^2 * s - (mu_g^2 - mu_i^2) / (2 sigma^2)
    true_slope = 0.6 / 0.01 / math.log(10)
    true_intercept = -(0.36 / 0.02) / math.log(10)
    assert line.slope == pytest.approx(true_slope, rel=0.05)
    assert line.intercept == pytest.approx(true_intercept, rel=0.05)
    assert line.llr(0.3) == pytest.approx(0.0, abs=0.1)  # midway: no evidence either way


def test_cllr_bounds() -> None:
    assert cllr(np.zeros(10), np.zeros(10)) == pytest.approx(1.0)  # says nothing
    assert cllr(np.full(10, 5.0), np.full(10, -5.0)) < 1e-3  # right and sure
    assert cllr(np.full(10, -5.0), np.full(10, 5.0)) > 10  # wrong and sure


def test_shipped_calibration_is_sane() -> None:
    calibration = calibration_for(DEFAULT_EMBEDDER)
    assert calibration.impostor_pairs > 1_000_000 and calibration.genuine_pairs > 10_000
    assert list(calibration.thresholds) == sorted(calibration.thresholds)
    assert calibration.tar[calibration.fmr.index(1e-3)] > 0.99
    assert calibration.llr is not None and calibration.llr.slope > 0
    assert calibration.cllr is not None and calibration.cllr < 0.2
    # A score at the default threshold is strong evidence for the same person.
    assert calibration.llr.llr(calibration.threshold_for(1e-4)) > 1
