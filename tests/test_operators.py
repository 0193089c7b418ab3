"""Tests for restore.operators: adjoints, pseudo-inverses, composition, parsing."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from restore.operators import (
    LINEAR_OPERATORS,
    Blur,
    Composed,
    Downsample,
    Grayscale,
    Identity,
    Mask,
    Operator,
    gaussian_kernel,
    make_operator,
)

SHAPE = (2, 3, 8, 8)  # (N, C, H, W); every registry operator accepts it
ADJOINT_TOL = 1e-5  # relative, float64
CG_TOL = 1e-4  # relative ||A pinv(A x) - A x|| / ||A x|| for CG pseudo-inverses
EXACT_TOL = 1e-12  # same, for closed-form pseudo-inverses (float64)


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Tiny tensors: avoid thread oversubscription on busy machines."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _rand(*shape, seed=0, dtype=torch.float64):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _asym_kernel(seed=1, size=3):
    """Random positive (size, size) kernel, far from symmetric."""
    k = torch.rand(size, size, generator=torch.Generator().manual_seed(seed)) + 0.1
    return k / k.sum()


def _assert_close(a, b, atol=1e-10, rtol=1e-7):
    # torch.testing.assert_close costs ~2 s of lazy imports on first use
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    assert torch.allclose(a, b, rtol=rtol, atol=atol), float((a - b).abs().max())


def _rel(a, b):
    return float((a - b).norm() / b.norm())


def _uses_cg(op: Operator) -> bool:
    return type(op).pinv is Operator.pinv


@pytest.mark.parametrize("name", sorted(LINEAR_OPERATORS))
def test_adjoint_identity(name):
    op = LINEAR_OPERATORS[name]()
    assert op.linear
    gen = torch.Generator().manual_seed(3)
    for seed in range(3):
        assert op.adjointness_error(_rand(*SHAPE, seed=seed), gen) < ADJOINT_TOL


@pytest.mark.parametrize("name", sorted(LINEAR_OPERATORS))
def test_pinv_inverts_on_range(name):
    op = LINEAR_OPERATORS[name]()
    y = op(_rand(*SHAPE))
    if _uses_cg(op):
        z = op(op.pinv(y, n_iter=800, tol=1e-12))
        assert _rel(z, y) < CG_TOL
    else:
        assert _rel(op(op.pinv(y)), y) < EXACT_TOL


@pytest.mark.parametrize("name", sorted(LINEAR_OPERATORS))
def test_follows_input_dtype(name):
    op = LINEAR_OPERATORS[name]()
    for dtype in (torch.float32, torch.float64):
        x = _rand(*SHAPE, dtype=dtype)
        y = op(x)
        assert y.dtype == dtype and op.adjoint(y).dtype == dtype
        assert op.adjoint(y).shape == x.shape
        assert op.pinv(y, n_iter=2).shape == x.shape
    buffers = list(op.double().buffers())
    assert all(b.dtype == torch.float64 for b in buffers)


def test_adjointness_error_detects_wrong_adjoint():
    class NoFlipBlur(Blur):  # adjoint forgets that forward is a convolution
        def adjoint(self, y):
            return self.forward(y)

    class UnscaledBox(Downsample):  # adjoint misses the 1/f^2 factor
        def adjoint(self, y):
            return self.pinv(y)

    x = _rand(*SHAPE)
    assert NoFlipBlur(_asym_kernel()).adjointness_error(x) > 1e-2
    assert UnscaledBox(2).adjointness_error(x) > 1e-2
    assert Blur(_asym_kernel()).adjointness_error(x) < ADJOINT_TOL


def test_blur_matches_dense_zero_padded_convolution():
    k = _asym_kernel(size=3).double()
    h, w = 5, 6
    kl = k.tolist()
    rows = [  # A[i, j] = k[i - j + 1], zero outside the kernel support
        [kl[i0 - j0 + 1][i1 - j1 + 1] if abs(i0 - j0) <= 1 and abs(i1 - j1) <= 1 else 0.0
         for j0 in range(h) for j1 in range(w)]
        for i0 in range(h) for i1 in range(w)
    ]
    A = torch.tensor(rows, dtype=torch.float64)
    op = Blur(k)
    x, y = _rand(1, 1, h, w, seed=1), _rand(1, 1, h, w, seed=2)
    _assert_close(op(x).flatten(), A @ x.flatten())
    _assert_close(op.adjoint(y).flatten(), A.T @ y.flatten())


def test_blur_impulse_response_is_kernel():
    k = torch.stack([_asym_kernel(seed=s, size=5) for s in range(3)])
    delta = torch.zeros(1, 3, 9, 9)
    delta[..., 4, 4] = 1.0
    _assert_close(Blur(k)(delta)[0, :, 2:7, 2:7], k)
    with pytest.raises(ValueError):
        Blur(k)(torch.zeros(1, 2, 9, 9))  # 3-channel kernel, 2-channel image
    with pytest.raises(ValueError):
        Blur(torch.ones(4, 4))  # even kernel


def test_gaussian_kernel():
    k = gaussian_kernel(2.0)
    assert k.shape == (13, 13) and k.dtype == torch.float32
    assert abs(float(k.sum()) - 1) < 1e-6
    _assert_close(k, k.flip(0))
    _assert_close(k, k.T)
    assert k.argmax() == 6 * 13 + 6
    r = torch.arange(13.0) - 6
    var = float((k.sum(1) * r**2).sum())  # marginal variance ~ sigma^2
    assert abs(var - 4.0) < 0.05
    assert gaussian_kernel(1.0, 3).shape == (3, 3)
    for bad in [(0.0, None), (-1.0, None), (1.0, 4)]:
        with pytest.raises(ValueError):
            gaussian_kernel(*bad)


def test_composition():
    A, B = Downsample(2, filter="none"), Blur(_asym_kernel())
    AB = A @ B
    assert isinstance(AB, Composed) and AB.linear
    x, y = _rand(*SHAPE), _rand(2, 3, 4, 4, seed=1)
    _assert_close(AB(x), A(B(x)))
    _assert_close(AB.adjoint(y), B.adjoint(A.adjoint(y)))
    assert AB.adjointness_error(x, torch.Generator().manual_seed(0)) < ADJOINT_TOL
    assert len(list(AB.buffers())) == 1  # the blur kernel moves with .to()
    ABC = Grayscale() @ AB
    assert ABC(x).shape == (2, 1, 4, 4)
    assert ABC.adjointness_error(x) < ADJOINT_TOL


def test_cg_pinv_is_minimum_norm():
    # Identity @ Downsample uses the generic CG pinv; the minimum-norm solution
    # is unique, so it must equal the closed form.
    y = _rand(2, 3, 4, 4)
    cg = (Identity() @ Downsample(2)).pinv(y, n_iter=50, tol=1e-14)
    _assert_close(cg, Downsample(2).pinv(y), atol=1e-10, rtol=0)


def test_cg_respects_n_iter_and_tol():
    class Counting(Blur):
        calls = 0

        def forward(self, x):
            Counting.calls += 1
            return super().forward(x)

    op = Counting(gaussian_kernel(1.0))
    y = op(_rand(*SHAPE))
    Counting.calls = 0
    op.pinv(y, n_iter=7, tol=0.0)
    assert Counting.calls == 7  # one A per iteration
    for tol in (1e-2, 1e-4):
        Counting.calls = 0
        x = op.pinv(y, n_iter=10_000, tol=tol)
        rel = op.adjoint(y - op(x)).flatten(1).norm(dim=1) / op.adjoint(y).flatten(1).norm(dim=1)
        assert bool((rel <= tol).all()) and bool((rel > tol / 5).any())  # not much stricter
        assert Counting.calls < 300  # stopped early


def test_downsample_box_pinv_exact():
    op = Downsample(2)
    x, y = _rand(*SHAPE), _rand(2, 3, 4, 4, seed=1)  # y arbitrary: A is onto
    _assert_close(op(x), F.avg_pool2d(x, 2))
    up = op.pinv(y)
    _assert_close(up, F.interpolate(y, scale_factor=2, mode="nearest"))
    assert torch.equal(op(up), y)
    _assert_close(op.pinv(op(up)), up)  # A^+ A is a projection
    with pytest.raises(ValueError):
        op(torch.zeros(1, 1, 5, 4))


def test_downsample_decimation():
    op = Downsample(3, filter="none")
    x, y = _rand(1, 2, 6, 9), _rand(1, 2, 2, 3, seed=1)
    assert torch.equal(op(x), x[..., ::3, ::3])
    up = op.pinv(y)
    assert up.shape == (1, 2, 6, 9) and torch.equal(up[..., ::3, ::3], y)
    assert float(up.abs().sum()) == pytest.approx(float(y.abs().sum()))
    assert torch.equal(op(up), y)


def test_mask_idempotent_and_deterministic():
    x = _rand(2, 3, 32, 32)
    op = Mask(p=0.3, seed=7)
    m = op(torch.ones_like(x))
    assert set(m.unique().tolist()) <= {0.0, 1.0}
    assert abs(float(m.mean()) - 0.3) < 0.05  # p = fraction kept
    assert torch.equal(m[0, 0], m[1, 2])  # shared across batch and channels
    assert torch.equal(op(op(x)), op(x))
    assert torch.equal(op.adjoint(x), op(x)) and torch.equal(op.pinv(x), op(x))
    assert torch.equal(Mask(p=0.3, seed=7)(x), op(x))
    assert not torch.equal(Mask(p=0.3, seed=8)(x), op(x))
    fixed = Mask(torch.tensor([[1, 0], [0, 1]]))
    z = _rand(1, 2, 2, 2)
    assert torch.equal(fixed(z), z * torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=z.dtype))
    assert torch.equal(fixed(fixed(z)), fixed(z))
    with pytest.raises(ValueError):
        Mask(torch.full((2, 2), 0.5))
    with pytest.raises(ValueError):
        Mask()


def test_grayscale():
    op = Grayscale()
    x = _rand(1, 3, 4, 4)
    w = torch.tensor([0.299, 0.587, 0.114]).double().view(1, 3, 1, 1)  # float32 buffer
    _assert_close(op(x), (x * w).sum(1, keepdim=True))
    y = _rand(1, 1, 4, 4, seed=1)
    _assert_close(op.pinv(y), w * y / (w**2).sum())
    _assert_close(op(op.pinv(y)), y)
    with pytest.raises(ValueError):
        op(torch.zeros(1, 1, 4, 4))


@pytest.mark.parametrize(
    "spec, cls",
    [("identity", Identity), ("grayscale", Grayscale), ("blur:sigma=2", Blur),
     ("downsample:factor=4", Downsample), ("mask:p=0.5,seed=0", Mask),
     (" Downsample : factor = 2 , filter = none ", Downsample),
     ("downsample:factor=2@blur:sigma=1", Composed)],
)
def test_make_operator_parses(spec, cls):
    assert type(make_operator(spec)) is cls


def test_make_operator_values():
    blur = make_operator("blur:sigma=2")
    _assert_close(blur.kernel[0, 0], gaussian_kernel(2.0))
    assert make_operator("blur:sigma=1,size=3").kernel.shape[-1] == 3
    down = make_operator("downsample:factor=4")
    assert down.factor == 4 and down.filter == "box"
    assert make_operator("downsample:factor=2,filter=none").filter == "none"
    mask = make_operator("mask:p=0.25,seed=3")
    assert (mask.p, mask.seed) == (0.25, 3)
    x = _rand(1, 3, 8, 8)
    sr = make_operator("downsample:factor=2@blur:sigma=1")
    _assert_close(sr(x), Downsample(2)(Blur(gaussian_kernel(1.0))(x)))


@pytest.mark.parametrize(
    "spec",
    ["", "@", "nope", "blur:sigma", "blur:radius=2", "blur:sigma=abc", "blur:sigma=0",
     "blur:sigma=inf", "blur:sigma=1,sigma=2", "blur:size=4", "downsample:factor=0",
     "downsample:factor=1.5", "downsample:filter=bicubic", "mask:p=1.5", "identity:x=1",
     "blur:sigma=1@"],
)
def test_make_operator_rejects(spec):
    with pytest.raises(ValueError) as info:
        make_operator(spec)
    assert "\n" not in str(info.value)


def test_make_operator_error_names_choices():
    with pytest.raises(ValueError, match="valid choices: blur, downsample, exposure, grayscale"):
        make_operator("deblur:sigma=1")
    with pytest.raises(ValueError, match="sigma"):
        make_operator("blur:radius=1")
