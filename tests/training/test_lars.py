"""LARS: two steps by hand, a weight matrix (adapted, decayed) and a bias (neither)."""

import torch

from replab.training.lars import LARS


def test_two_lars_steps_by_hand():
    w = torch.nn.Parameter(torch.tensor([[1.0, -2.0], [0.5, 3.0]]))
    b = torch.nn.Parameter(torch.tensor([0.5, -0.5]))
    lr, mom, wd, eta = 0.5, 0.9, 0.1, 0.02
    opt = LARS([w, b], lr=lr, momentum=mom, weight_decay=wd, eta=eta)
    grads = [(torch.tensor([[0.1, 0.2], [-0.3, 0.4]]), torch.tensor([1.0, 2.0])),
             (torch.tensor([[0.0, 0.5], [0.5, 0.0]]), torch.tensor([-1.0, 0.5]))]  # fmt: skip
    ew, eb = w.detach().clone(), b.detach().clone()
    buf_w, buf_b = torch.zeros(2, 2), torch.zeros(2)
    for gw, gb in grads:
        w.grad, b.grad = gw.clone(), gb.clone()
        opt.step()
        g = gw + wd * ew  # weight decay on the matrix only
        trust = min(eta * ew.norm().item() / g.norm().item() / lr, 1.0)
        buf_w = mom * buf_w + trust * g
        buf_b = mom * buf_b + gb  # a bias: plain momentum SGD
        ew, eb = ew - lr * buf_w, eb - lr * buf_b
        torch.testing.assert_close(w.detach(), ew, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(b.detach(), eb, rtol=1e-6, atol=1e-7)
