"""The "nflows or zuko flow object" recipe of docs/own_models.md runs as written and does what it says."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

DOC = Path(__file__).resolve().parents[1] / "docs" / "own_models.md"


def _recipe(heading: str) -> str:
    text = DOC.read_text()
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_flow_object_recipe(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(_recipe("## An nflows or zuko flow object"), str(DOC), "exec"), ns)
    flow, scaler, x, mgg = ns["flow"], ns["scaler"], ns["x"], ns["mgg"]
    # log p(x | mgg) = nflows log p(T(x) | mgg) + log|T'(x)|, T = logit then standardize, by hand
    logdet = np.sum(-np.log(x[:5] * (1 - x[:5])) - np.log(scaler[-1].scale_), axis=1)
    with torch.no_grad():
        want = flow.double().log_prob(torch.as_tensor(scaler.transform(x[:5])),
                                      context=torch.as_tensor(mgg[:5])).numpy()
    np.testing.assert_allclose(ns["log_p"], want + logdet, rtol=0, atol=1e-9)
    events = ns["events"]
    assert events.shape == (1000, 2) and np.all((events > 0) & (events < 1))
    pdf = ns["pdf"]
    assert pdf.ClassName() == "RooFlowPdf"
    variables = {v.GetName(): v for v in pdf.getVariables()}
    for name, value in zip(["x1", "x2", "mgg"], [*x[0], mgg[0, 0]]):
        variables[name].setVal(value)
    assert np.log(pdf.getVal()) == pytest.approx(ns["log_p"][0], abs=1e-9)
    nsf = ns["nsf"]
    xz = np.random.default_rng(2).normal(size=(50, 2))
    cz = np.random.default_rng(3).normal(size=(50, 1))
    with torch.no_grad():
        want = nsf.double()(torch.as_tensor(cz)).log_prob(torch.as_tensor(xz)).numpy()
    np.testing.assert_allclose(ns["zuko_model"].log_prob(xz, cz), want, rtol=1e-12, atol=1e-9)
