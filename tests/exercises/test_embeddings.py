"""The chapter-5 checks accept correct answers and reject plausible wrong ones."""

import torch
import torch.nn.functional as F

from labkit.exercises.embeddings import (
    check_adam_step,
    check_embedding_backward,
    check_masked_cross_entropy,
)


def one_hot_backward(idx, grad_out, vocab_size):
    one_hot = F.one_hot(idx, vocab_size).to(grad_out.dtype)  # (..., V)
    return one_hot.reshape(-1, vocab_size).T @ grad_out.reshape(-1, grad_out.shape[-1])


def index_add_backward(idx, grad_out, vocab_size):
    grad = torch.zeros(vocab_size, grad_out.shape[-1], dtype=grad_out.dtype)
    return grad.index_add_(0, idx.reshape(-1), grad_out.reshape(-1, grad_out.shape[-1]))


def test_correct_embedding_gradients_pass_and_a_stub_is_not_done():
    assert check_embedding_backward(one_hot_backward)
    assert check_embedding_backward(index_add_backward)
    assert check_embedding_backward(lambda idx, g, V: None).status == "not done"

    def stub(idx, g, V):
        raise NotImplementedError

    assert check_embedding_backward(stub).status == "not done"


def test_embedding_gradient_that_drops_repeats_is_rejected():
    def assign_add(idx, grad_out, vocab_size):
        grad = torch.zeros(vocab_size, grad_out.shape[-1])
        grad[idx] += grad_out  # advanced indexing: repeats keep one value
        return grad

    result = check_embedding_backward(assign_add)
    assert result.status == "failed"
    assert result.failed_case.args[0].tolist() == [[1, 1, 1]]
    assert "SUM" in result.report


def test_embedding_gradient_with_rows_only_up_to_the_largest_id_is_rejected():
    def too_few_rows(idx, grad_out, vocab_size):
        return one_hot_backward(idx, grad_out, int(idx.max()) + 1)

    result = check_embedding_backward(too_few_rows)
    assert (
        result.status == "failed" and "shape (3, 3), expected (6, 3)" in result.report
    )


def test_embedding_gradient_by_autograd_is_refused():
    def by_autograd(idx, grad_out, vocab_size):
        w = torch.zeros(vocab_size, grad_out.shape[-1], requires_grad=True)
        w[idx].backward(grad_out)
        return w.grad

    assert "uses '.backward('" in check_embedding_backward(by_autograd).report


def adam(param, grad, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    return param - lr * m_hat / (v_hat.sqrt() + eps), m, v


def test_adam_as_written_in_the_paper_passes():
    assert check_adam_step(adam)
    assert check_adam_step(lambda *args: None).status == "not done"


def test_adam_without_bias_correction_is_rejected_on_the_first_step():
    def no_correction(param, grad, m, v, t, lr, beta1, beta2, eps):
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad**2
        return param - lr * m / (v.sqrt() + eps), m, v

    result = check_adam_step(no_correction)
    assert result.status == "failed" and result.failed_case.args[4] == 1
    assert "bias correction" in result.report


def test_adam_with_eps_inside_the_square_root_is_rejected():
    def eps_inside(param, grad, m, v, t, lr, beta1, beta2, eps):
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad**2
        m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
        return param - lr * m_hat / (v_hat + eps).sqrt(), m, v

    result = check_adam_step(eps_inside)
    assert result.status == "failed" and "outside the square root" in result.report


def test_adam_bias_corrected_with_the_previous_step_number_is_rejected():
    def off_by_one(param, grad, m, v, t, lr, beta1, beta2, eps):
        return adam(param, grad, m, v, t + 1, lr, beta1, beta2, eps)[0], *adam(
            param, grad, m, v, t, lr, beta1, beta2, eps
        )[1:]

    assert check_adam_step(off_by_one).status == "failed"


def test_adam_that_ignores_the_given_betas_is_rejected():
    def defaults_only(param, grad, m, v, t, lr, beta1, beta2, eps):
        return adam(param, grad, m, v, t, lr)

    result = check_adam_step(defaults_only)
    assert result.status == "failed" and "beta1=0.5" in result.report


def masked_cross_entropy(logits, targets, ignore_index=-100):
    keep = targets != ignore_index
    z, y = logits[keep], targets[keep]
    z = z - z.max(dim=-1, keepdim=True).values
    log_probs = z - z.exp().sum(dim=-1, keepdim=True).log()
    return -log_probs[torch.arange(len(y)), y].mean()


def test_stable_masked_cross_entropy_passes_and_torch_itself_is_refused():
    assert check_masked_cross_entropy(masked_cross_entropy)
    assert (
        "the reference answer itself"
        in check_masked_cross_entropy(F.cross_entropy).report
    )
    assert check_masked_cross_entropy(lambda z, y, i: None).status == "not done"


def test_cross_entropy_that_averages_over_ignored_targets_is_rejected():
    def mean_over_all(logits, targets, ignore_index=-100):
        keep = targets != ignore_index
        z = logits - logits.max(dim=-1, keepdim=True).values
        log_probs = z - z.exp().sum(dim=-1, keepdim=True).log()
        picked = log_probs[torch.arange(len(targets)), targets.clamp(min=0)]
        return -(picked * keep).sum() / len(targets)

    result = check_masked_cross_entropy(mean_over_all)
    assert result.status == "failed"
    assert "not by N" in result.failed_case.hint


def test_cross_entropy_as_log_of_softmax_is_rejected():
    def log_of_softmax(logits, targets, ignore_index=-100):
        keep = targets != ignore_index
        z, y = logits[keep], targets[keep]
        z = z - z.max(dim=-1, keepdim=True).values
        probs = z.exp() / z.exp().sum(dim=-1, keepdim=True)
        return -probs[torch.arange(len(y)), y].log().mean()

    result = check_masked_cross_entropy(log_of_softmax)
    assert result.status == "failed" and "log(0)" in result.failed_case.hint


def test_cross_entropy_without_the_maximum_subtracted_is_rejected():
    def overflows(logits, targets, ignore_index=-100):
        keep = targets != ignore_index
        z, y = logits[keep], targets[keep]
        log_probs = z - z.exp().sum(dim=-1, keepdim=True).log()
        return -log_probs[torch.arange(len(y)), y].mean()

    result = check_masked_cross_entropy(overflows)
    assert result.status == "failed" and "overflows" in result.failed_case.hint


def test_cross_entropy_through_torch_loss_classes_is_refused():
    def by_loss_class(logits, targets, ignore_index=-100):
        return torch.nn.CrossEntropyLoss(ignore_index=ignore_index)(logits, targets)

    def by_nll_class(logits, targets, ignore_index=-100):
        log_p = torch.nn.LogSoftmax(dim=-1)(logits)
        return torch.nn.NLLLoss(ignore_index=ignore_index)(log_p, targets)

    def by_method(logits, targets, ignore_index=-100):
        keep = targets != ignore_index
        log_p = logits[keep].log_softmax(-1)
        return -log_p[torch.arange(int(keep.sum())), targets[keep]].mean()

    def by_module(logits, targets, ignore_index=-100):
        keep = targets != ignore_index
        log_p = torch.nn.LogSoftmax(dim=-1)(logits[keep])
        return -log_p[torch.arange(int(keep.sum())), targets[keep]].mean()

    for fn, word in (
        (by_loss_class, "CrossEntropyLoss"),
        (by_nll_class, "NLLLoss"),
        (by_module, "LogSoftmax"),
        (by_method, "log_softmax"),
    ):
        logits, targets = 3 * torch.randn(6, 5), torch.tensor([0, 4, -100, 2, 1, 3])
        expected = F.cross_entropy(logits, targets)  # a right answer, refused
        torch.testing.assert_close(fn(logits, targets), expected)
        result = check_masked_cross_entropy(fn)
        assert result.status == "failed" and f"uses {word!r}" in result.report
