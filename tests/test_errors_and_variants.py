"""Errors name the class and say what was expected and what came; variants compose."""

import pytest
import torch
from torch import nn

import lstmlens
from lstmlens import Variant
from lstmlens.variants import PRESETS, resolve_variant


def test_presets_follow_the_design_table():
    assert PRESETS["vanilla"] == Variant()
    assert PRESETS["peephole"] == Variant(peepholes=True)
    assert PRESETS["nig"].blocks == ("f", "g", "o") and PRESETS["nig"].peepholes
    assert PRESETS["nfg"].blocks == ("i", "g", "o")
    assert PRESETS["nog"].blocks == ("i", "f", "g")
    assert PRESETS["niaf"].input_activation == "identity"
    assert PRESETS["noaf"].output_activation == "identity"
    assert PRESETS["cifg"].blocks == ("i", "g", "o") and PRESETS["cifg"].peephole_gates == (
        "i",
        "o",
    )
    assert PRESETS["fgr"].full_gate_recurrence and PRESETS["fgr"].sigmoid_blocks == ("i", "f", "o")
    assert resolve_variant("CIFG") is PRESETS["cifg"]


def test_parameter_layout():
    m = lstmlens.LSTM(3, 4, variant="fgr", bidirectional=True)
    names = dict(m.named_parameters())
    assert names["weight_ih_l0"].shape == (16, 3)
    assert names["peephole_f_l0_reverse"].shape == (4,)
    assert names["weight_gate_l0"].shape == (12, 12)
    cifg = dict(lstmlens.LSTM(3, 4, variant="cifg").named_parameters())
    assert cifg["weight_hh_l0"].shape == (12, 4) and "peephole_f_l0" not in cifg
    ln = dict(lstmlens.LSTM(3, 4, layer_norm=True).named_parameters())
    assert {"ln_weight_ih_l0", "ln_weight_hh_l0", "ln_weight_c_l0", "ln_bias_c_l0"} <= set(ln)


def test_fields_compose():
    v = Variant(coupled=True)  # cifg without peepholes
    assert v.blocks == ("i", "g", "o") and not v.peepholes
    m = lstmlens.LSTM(2, 3, variant=v)
    assert m.weight_ih_l0.shape == (9, 2)
    assert m(torch.randn(4, 2))[0].shape == (4, 3)
    assert v.name == "Variant(coupled=True)"
    assert Variant(peepholes=True, coupled=True).name == "cifg"


@pytest.mark.parametrize(
    "make,match",
    [
        (
            lambda: lstmlens.LSTM(2, 3, variant="banana"),
            r"LSTM: unknown variant 'banana'; expected one of",
        ),
        (lambda: lstmlens.LSTMCell(2, 3, variant="banana"), r"LSTMCell: unknown variant"),
        (lambda: Variant(input_activation="relu"), r"Variant: input_activation must be one of"),
        (
            lambda: Variant(coupled=True, input_gate=False),
            r"Variant: coupled=True needs input_gate",
        ),
        (
            lambda: lstmlens.LSTM(2, 3, proj_size=3),
            r"LSTM: proj_size must be in \[0, hidden_size\), got 3",
        ),
        (lambda: lstmlens.LSTM(2, 3, backend="cuda"), r"LSTM: backend must be one of"),
        (lambda: lstmlens.LSTM(2, 3, zoneout=1.0), r"LSTM: zoneout must be in \[0, 1\)"),
        (
            lambda: lstmlens.RNN(2, 3, nonlinearity="gelu"),
            r"RNN: nonlinearity must be 'tanh' or 'relu'",
        ),
        (
            lambda: lstmlens.LSTM(2, 0),
            r"LSTM: input_size, hidden_size and num_layers must be positive",
        ),
    ],
)
def test_constructor_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_forward_errors():
    m = lstmlens.LSTM(3, 4, num_layers=2)
    with pytest.raises(
        ValueError,
        match=r"LSTM: Expected input to be 2D \(unbatched\) or 3D \(batched\), got 4D instead",
    ):
        m(torch.randn(1, 2, 3, 4))
    with pytest.raises(
        ValueError, match=r"LSTM: input.size\(-1\) must be equal to input_size. Expected 3, got 5"
    ):
        m(torch.randn(4, 2, 5))
    with pytest.raises(
        TypeError,
        match=r"LSTM: input dtype torch.float64 does not match the weights' dtype torch.float32",
    ):
        m(torch.randn(4, 2, 3, dtype=torch.double))
    with pytest.raises(
        ValueError, match=r"LSTM: Expected hidden\[0\] size \(2, 2, 4\), got \(1, 2, 4\)"
    ):
        m(torch.randn(4, 2, 3), (torch.zeros(1, 2, 4), torch.zeros(2, 2, 4)))
    with pytest.raises(
        ValueError, match=r"LSTM: Expected hidden\[1\] size \(2, 2, 4\), got \(2, 3, 4\)"
    ):
        m(torch.randn(4, 2, 3), (torch.zeros(2, 2, 4), torch.zeros(2, 3, 4)))
    with pytest.raises(TypeError, match=r"LSTM: hx must be a tuple \(h_0, c_0\)"):
        m(torch.randn(4, 2, 3), torch.zeros(2, 2, 4))
    with pytest.raises(
        TypeError, match=r"LSTM: expected input to be a Tensor or PackedSequence, got list"
    ):
        m([1, 2, 3])
    with pytest.raises(ValueError, match=r"GRU: Expected hidden size \(1, 2, 4\), got \(1, 4\)"):
        lstmlens.GRU(3, 4)(torch.randn(5, 2, 3), torch.zeros(1, 4))
    with pytest.raises(
        ValueError, match=r"LSTMCell: Expected input to be 1D or 2D, got 3D instead"
    ):
        lstmlens.LSTMCell(3, 4)(torch.randn(1, 2, 3))
    with pytest.raises(ValueError, match=r"LSTMCell: Expected h of size \(2, 4\), got \(2, 5\)"):
        lstmlens.LSTMCell(3, 4)(torch.randn(2, 3), (torch.zeros(2, 5), torch.zeros(2, 4)))


def test_to_torch_refuses_what_torch_cannot_do():
    with pytest.raises(
        ValueError,
        match=r"LSTM.to_torch: torch.nn.LSTM has only the vanilla variant, got variant 'cifg'",
    ):
        lstmlens.LSTM(2, 3, variant="cifg").to_torch()
    with pytest.raises(ValueError, match=r"LSTM.to_torch: torch.nn.LSTM has no layer_norm"):
        lstmlens.LSTM(2, 3, layer_norm=True).to_torch()
    with pytest.raises(TypeError, match=r"LSTM.from_torch: expected a torch.nn.LSTM, got GRU"):
        lstmlens.LSTM.from_torch(nn.GRU(2, 3))


def test_dropout_warning_like_torch():
    with pytest.warns(UserWarning, match="dropout"):
        lstmlens.LSTM(2, 3, dropout=0.5)
