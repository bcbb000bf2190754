"""Vectorized four-vector helpers (pt, eta, phi, m) for the HH -> 4b toy."""

from __future__ import annotations

import numpy as np

__all__ = ["delta_phi", "pair_quantities", "to_cartesian", "two_body_jets", "wrap_phi"]


def wrap_phi(phi: np.ndarray) -> np.ndarray:
    """Wrap angles into ``[-pi, pi)``."""
    return (np.asarray(phi) + np.pi) % (2.0 * np.pi) - np.pi


def delta_phi(phi1: np.ndarray, phi2: np.ndarray) -> np.ndarray:
    """Absolute azimuthal difference in ``[0, pi]``."""
    return np.abs(wrap_phi(np.asarray(phi1) - np.asarray(phi2)))


def to_cartesian(pt, eta, phi, m) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(px, py, pz, E)`` from ``(pt, eta, phi, m)``."""
    px = pt * np.cos(phi)
    py = pt * np.sin(phi)
    pz = pt * np.sinh(eta)
    e = np.sqrt((pt * np.cosh(eta)) ** 2 + m * m)
    return px, py, pz, e


def pair_quantities(pt1, eta1, phi1, m1, pt2, eta2, phi2, m2) -> dict[str, np.ndarray]:
    """Invariant mass, transverse momentum, |Delta eta| and |Delta phi| of a pair.

    Returns
    -------
    dict
        ``m_hh``, ``pt_hh``, ``deta_hh``, ``dphi_hh``.
    """
    px1, py1, pz1, e1 = to_cartesian(pt1, eta1, phi1, m1)
    px2, py2, pz2, e2 = to_cartesian(pt2, eta2, phi2, m2)
    px, py, pz, e = px1 + px2, py1 + py2, pz1 + pz2, e1 + e2
    m2sum = np.maximum(e * e - px * px - py * py - pz * pz, 0.0)
    return {
        "m_hh": np.sqrt(m2sum),
        "pt_hh": np.hypot(px, py),
        "deta_hh": np.abs(np.asarray(eta1) - np.asarray(eta2)),
        "dphi_hh": delta_phi(phi1, phi2),
    }


def two_body_jets(rng: np.random.Generator, pt, eta, phi, m) -> dict[str, np.ndarray]:
    """Decay each candidate isotropically into two massless jets; summarize the jets.

    Parameters
    ----------
    rng : numpy.random.Generator
    pt, eta, phi, m : numpy.ndarray
        Candidate kinematics.

    Returns
    -------
    dict
        ``jet_pt_lead``, ``jet_pt_sublead`` and ``dr_jj`` (Delta R of the two jets).
    """
    n = np.shape(pt)[0]
    px, py, pz, e = to_cartesian(pt, eta, phi, m)
    bx, by, bz = px / e, py / e, pz / e
    b2 = bx * bx + by * by + bz * bz
    gamma = e / m
    cos_t = rng.uniform(-1.0, 1.0, n)
    sin_t = np.sqrt(1.0 - cos_t * cos_t)
    phi_s = rng.uniform(-np.pi, np.pi, n)
    q = 0.5 * m
    qx, qy, qz = q * sin_t * np.cos(phi_s), q * sin_t * np.sin(phi_s), q * cos_t
    jets = []
    for sign in (1.0, -1.0):
        kx, ky, kz = sign * qx, sign * qy, sign * qz
        bq = bx * kx + by * ky + bz * kz
        coef = (gamma - 1.0) * bq / np.where(b2 > 0, b2, 1.0) + gamma * q
        lx, ly, lz = kx + coef * bx, ky + coef * by, kz + coef * bz
        jpt = np.hypot(lx, ly)
        jeta = np.arcsinh(lz / np.maximum(jpt, 1e-12))
        jets.append((jpt, jeta, np.arctan2(ly, lx)))
    (pt_a, eta_a, phi_a), (pt_b, eta_b, phi_b) = jets
    dr = np.hypot(eta_a - eta_b, delta_phi(phi_a, phi_b))
    return {
        "jet_pt_lead": np.maximum(pt_a, pt_b),
        "jet_pt_sublead": np.minimum(pt_a, pt_b),
        "dr_jj": dr,
    }
