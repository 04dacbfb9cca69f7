import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss as tv_focal_loss

from retina_edu.boxes import BoxCoder
from retina_edu.losses import alpha_balanced_cross_entropy, retinanet_loss, sigmoid_focal_loss
from retina_edu.matching import BACKGROUND, IGNORED


@pytest.mark.parametrize("alpha,gamma", [(0.25, 2.0), (0.5, 1.0), (0.75, 0.0), (None, 5.0)])
def test_focal_loss_equals_torchvision_value_and_gradient(gen, alpha, gamma):
    logits = (torch.randn(64, 5, generator=gen) * 3).requires_grad_()
    targets = (torch.rand(64, 5, generator=gen) < 0.2).float()
    ours = sigmoid_focal_loss(logits, targets, alpha, gamma, reduction="sum")
    (g_ours,) = torch.autograd.grad(ours, logits)
    theirs = tv_focal_loss(logits, targets, -1 if alpha is None else alpha, gamma, reduction="sum")
    (g_theirs,) = torch.autograd.grad(theirs, logits)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(g_ours, g_theirs)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 5.0])
def test_focal_loss_finite_for_huge_logits(gamma):
    logits = torch.tensor([1e4, -1e4, 1e4, -1e4, 0.0], requires_grad=True)
    targets = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0])
    loss = sigmoid_focal_loss(logits, targets, 0.25, gamma)
    (grad,) = torch.autograd.grad(loss.sum(), logits)
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
    # confident and right → 0; confident and wrong → about 1e4 · α_t
    torch.testing.assert_close(loss[:2], torch.zeros(2))
    torch.testing.assert_close(loss[2:4], torch.tensor([0.75e4, 0.25e4]))


def test_gradcheck_float64(gen):
    logits = torch.randn(6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    targets = (torch.rand(6, 3, generator=gen) < 0.4).double()
    for gamma in (0.5, 2.0):
        assert torch.autograd.gradcheck(lambda x, g=gamma: sigmoid_focal_loss(x, targets, 0.25, g), (logits,))


def test_gamma_zero_no_alpha_is_cross_entropy(gen):
    logits = torch.randn(100, generator=gen) * 4
    targets = (torch.rand(100, generator=gen) < 0.5).float()
    expected = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    torch.testing.assert_close(sigmoid_focal_loss(logits, targets, alpha=None, gamma=0.0), expected)
    torch.testing.assert_close(alpha_balanced_cross_entropy(logits, targets, alpha=0.5), 0.5 * expected)


def test_focal_loss_by_hand():
    # p = sigmoid(0) = 0.5, y = 1: FL = -0.25 · 0.5² · log 0.5
    value = sigmoid_focal_loss(torch.tensor([0.0]), torch.tensor([1.0]), 0.25, 2.0)
    torch.testing.assert_close(value, torch.tensor([0.25 * 0.25 * 0.6931472]))


def test_retinanet_loss_by_hand():
    # one image, 3 anchors, 2 classes: anchor 0 foreground (object 0, class 1), 1 background, 2 ignored
    anchors = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0], [0.0, 0.0, 8.0, 12.0]])
    gt_boxes = torch.tensor([[[1.0, 1.0, 11.0, 11.0]]])
    logits = torch.tensor([[[0.5, -1.0], [2.0, -3.0], [9.0, 9.0]]])
    deltas = torch.zeros(1, 3, 4)
    matches = torch.tensor([[0, BACKGROUND, IGNORED]])
    losses = retinanet_loss(
        logits, deltas, anchors, matches, gt_boxes, torch.tensor([[1]]), box_coder=BoxCoder(), box_loss="l1"
    )
    targets = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    expected_cls = tv_focal_loss(logits[0, :2], targets, 0.25, 2.0, reduction="sum") / 1
    torch.testing.assert_close(losses["classification"], expected_cls)
    # target deltas for a 10×10 box shifted by (1, 1) from a 10×10 anchor: (0.1, 0.1, 0, 0)
    torch.testing.assert_close(losses["box_regression"], torch.tensor(0.2))


def test_retinanet_loss_image_without_objects_is_finite():
    anchors = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 15.0, 15.0]])
    logits = torch.randn(1, 2, 3, requires_grad=True)
    losses = retinanet_loss(
        logits,
        torch.zeros(1, 2, 4),
        anchors,
        torch.full((1, 2), BACKGROUND),
        torch.zeros(1, 0, 4),
        torch.zeros(1, 0, dtype=torch.int64),
        box_coder=BoxCoder(),
    )
    # every anchor is a negative, normalised by max(1, 0 foreground) = 1
    expected = tv_focal_loss(logits[0], torch.zeros(2, 3), 0.25, 2.0, reduction="sum")
    torch.testing.assert_close(losses["classification"], expected)
    assert losses["box_regression"].item() == 0.0
    losses["classification"].backward()
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_retinanet_loss_of_16_bit_outputs_is_reduced_in_float32(gen, dtype):
    # Under autocast the subnets give 16-bit outputs; the loss must equal the float32 loss of the
    # same (rounded) values, be float32, and give the outputs 16-bit gradients.
    anchors = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0], [0.0, 0.0, 8.0, 12.0]])
    gt_boxes = torch.tensor([[[1.0, 1.0, 11.0, 11.0]], [[19.0, 21.0, 30.0, 31.0]]])  # (B=2, G=1, 4)
    matches = torch.tensor([[0, BACKGROUND, IGNORED], [BACKGROUND, 0, 0]])  # (2, 3)
    logits = (torch.randn(2, 3, 2, generator=gen) * 3).to(dtype).requires_grad_()
    deltas = (torch.randn(2, 3, 4, generator=gen) * 0.1).to(dtype).requires_grad_()
    args = (anchors, matches, gt_boxes, torch.tensor([[1], [0]]))
    low = retinanet_loss(logits, deltas, *args, box_coder=BoxCoder())
    full = retinanet_loss(logits.detach().float(), deltas.detach().float(), *args, box_coder=BoxCoder())
    for name in ("classification", "box_regression"):
        assert low[name].dtype == torch.float32, name
        assert torch.equal(low[name], full[name]), name
    sum(low.values()).backward()
    assert logits.grad.dtype == dtype and torch.isfinite(logits.grad).all()
    assert deltas.grad.dtype == dtype and torch.isfinite(deltas.grad).all()
