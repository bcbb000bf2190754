"""Mass-plane regions of the HH -> 4b toy (re-exported by :mod:`rooml.data.hh4b`).

* Signal region (SR): ``X_HH < 1.6`` with
  ``X_HH = sqrt(((m1 - 124)/(0.1 m1))^2 + ((m2 - 117)/(0.1 m2))^2)``.
* Validation region (VR): not SR and
  ``sqrt((m1 - 1.03*124)^2 + (m2 - 1.03*117)^2) < 30 GeV``.
* Control region (CR): not SR, not VR and
  ``sqrt((m1 - 1.05*124)^2 + (m2 - 1.05*117)^2) < 45 GeV``.
* Shifted signal regions: the SR ellipse (same ``X_HH < 1.6`` form, resolution
  ``0.1 m``) around a centre moved by 25 GeV in one of four directions, minus
  the nominal SR so they never unblind it: ``m1_up`` (149, 117),
  ``m1_down`` (99, 117), ``m2_up`` (124, 142), ``m2_down`` (124, 92). The
  shifted centres lie outside the nominal SR; the regions overlap it partly
  and that overlap is removed.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = [
    "CR_CENTRE",
    "CR_RADIUS",
    "REGIONS",
    "SHIFTED_CENTRES",
    "SR_CENTRE",
    "SR_XHH_CUT",
    "VR_CENTRE",
    "VR_RADIUS",
    "in_control_region",
    "in_shifted_signal_region",
    "in_signal_region",
    "in_validation_region",
    "region_mask",
    "x_hh",
]

SR_CENTRE = (124.0, 117.0)
SR_XHH_CUT = 1.6
VR_CENTRE = (1.03 * 124.0, 1.03 * 117.0)
VR_RADIUS = 30.0
CR_CENTRE = (1.05 * 124.0, 1.05 * 117.0)
CR_RADIUS = 45.0
SHIFT = 25.0
SHIFTED_CENTRES = {
    "m1_up": (124.0 + SHIFT, 117.0),
    "m1_down": (124.0 - SHIFT, 117.0),
    "m2_up": (124.0, 117.0 + SHIFT),
    "m2_down": (124.0, 117.0 - SHIFT),
}
REGIONS = ("SR", "VR", "CR", *(f"SR_{k}" for k in SHIFTED_CENTRES))


def x_hh(m1: np.ndarray, m2: np.ndarray, centre: tuple[float, float] = SR_CENTRE) -> np.ndarray:
    """Return ``X_HH`` (resolution ``0.1 m``) around ``centre``.

    Parameters
    ----------
    m1, m2 : numpy.ndarray
        Leading and subleading Higgs-candidate masses in GeV.
    centre : tuple of float
        ``(c1, c2)``; the nominal SR uses (124, 117).

    Returns
    -------
    numpy.ndarray
    """
    m1 = np.asarray(m1, dtype=float)
    m2 = np.asarray(m2, dtype=float)
    return np.hypot((m1 - centre[0]) / (0.1 * m1), (m2 - centre[1]) / (0.1 * m2))


def in_signal_region(m1: np.ndarray, m2: np.ndarray) -> np.ndarray:
    """Return ``X_HH < 1.6``."""
    return x_hh(m1, m2) < SR_XHH_CUT


def in_validation_region(m1: np.ndarray, m2: np.ndarray) -> np.ndarray:
    """Return the VR mask (ring around the SR, 30 GeV around 1.03 x centre)."""
    r = np.hypot(np.asarray(m1) - VR_CENTRE[0], np.asarray(m2) - VR_CENTRE[1])
    return (r < VR_RADIUS) & ~in_signal_region(m1, m2)


def in_control_region(m1: np.ndarray, m2: np.ndarray) -> np.ndarray:
    """Return the CR mask (45 GeV around 1.05 x centre, outside SR and VR)."""
    r = np.hypot(np.asarray(m1) - CR_CENTRE[0], np.asarray(m2) - CR_CENTRE[1])
    return (r < CR_RADIUS) & ~in_signal_region(m1, m2) & ~in_validation_region(m1, m2)


def in_shifted_signal_region(m1: np.ndarray, m2: np.ndarray, direction: str) -> np.ndarray:
    """Return the shifted-SR mask for ``direction`` in :data:`SHIFTED_CENTRES` (nominal SR excluded)."""
    try:
        centre = SHIFTED_CENTRES[direction]
    except KeyError:
        raise ValueError(f"unknown shift {direction!r}; choose one of {tuple(SHIFTED_CENTRES)}") from None
    return (x_hh(m1, m2, centre) < SR_XHH_CUT) & ~in_signal_region(m1, m2)


def region_mask(x: Mapping[str, np.ndarray], region: str) -> np.ndarray:
    """Mask of events in a named region.

    Parameters
    ----------
    x : mapping of str to numpy.ndarray
        Needs ``m_h1`` and ``m_h2``.
    region : str
        One of :data:`REGIONS`: ``"SR"``, ``"VR"``, ``"CR"``, ``"SR_m1_up"``,
        ``"SR_m1_down"``, ``"SR_m2_up"``, ``"SR_m2_down"``; ``"not_SR"`` is the
        complement of the SR (what a blinded fit sees).

    Returns
    -------
    numpy.ndarray of bool
    """
    m1, m2 = x["m_h1"], x["m_h2"]
    if region == "SR":
        return in_signal_region(m1, m2)
    if region == "not_SR":
        return ~in_signal_region(m1, m2)
    if region == "VR":
        return in_validation_region(m1, m2)
    if region == "CR":
        return in_control_region(m1, m2)
    if region.startswith("SR_") and region[3:] in SHIFTED_CENTRES:
        return in_shifted_signal_region(m1, m2, region[3:])
    raise ValueError(f"unknown region {region!r}; choose one of {(*REGIONS, 'not_SR')}")
