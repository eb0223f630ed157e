"""The LoRA checks accept correct answers and reject plausible wrong ones."""

from labkit.exercises.lora import check_lora_forward, check_merged_weight


def forward(x, weight, bias, lora_a, lora_b, alpha):
    y = x @ weight.T + (0 if bias is None else bias)
    return y + alpha / lora_a.shape[0] * (x @ lora_a.T) @ lora_b.T


def merged(weight, lora_a, lora_b, alpha, rslora):
    rank = lora_a.shape[0]
    scale = alpha / (rank**0.5 if rslora else rank)
    return weight + scale * lora_b @ lora_a


def test_correct_answers_pass_and_stubs_are_not_done():
    assert check_lora_forward(forward)
    assert check_merged_weight(merged)
    assert check_lora_forward(lambda *a: None).status == "not done"

    def stub(*args):
        raise NotImplementedError

    assert check_merged_weight(stub).status == "not done"


def test_forward_without_the_rank_in_the_scale_is_caught():
    def alpha_only(x, weight, bias, lora_a, lora_b, alpha):
        y = x @ weight.T + (0 if bias is None else bias)
        return y + alpha * (x @ lora_a.T) @ lora_b.T

    result = check_lora_forward(alpha_only)
    assert result.status == "failed"
    assert "alpha / rank" in result.failed_case.hint


def test_forward_with_rslora_scale_or_dropped_bias_is_caught():
    def sqrt_scale(x, weight, bias, lora_a, lora_b, alpha):
        y = x @ weight.T + (0 if bias is None else bias)
        return y + alpha / lora_a.shape[0] ** 0.5 * (x @ lora_a.T) @ lora_b.T

    assert check_lora_forward(sqrt_scale).status == "failed"

    def no_bias(x, weight, bias, lora_a, lora_b, alpha):
        return forward(x, weight, None, lora_a, lora_b, alpha)

    assert "B = 0" in check_lora_forward(no_bias).failed_case.label


def test_forward_with_transposed_weight_is_caught_on_the_non_square_case():
    def transposed(x, weight, bias, lora_a, lora_b, alpha):
        y = x @ weight + (0 if bias is None else bias)
        return y + alpha / lora_a.shape[0] * (x @ lora_a.T) @ lora_b.T

    result = check_lora_forward(transposed)
    assert result.status == "failed"
    assert "raised an error" in result.report or "differ" in result.report


def test_merge_that_ignores_rslora_or_swaps_the_factors_is_caught():
    def always_plain(weight, lora_a, lora_b, alpha, rslora):
        return merged(weight, lora_a, lora_b, alpha, False)

    result = check_merged_weight(always_plain)
    assert result.status == "failed" and "rsLoRA" in result.failed_case.hint

    def swapped(weight, lora_a, lora_b, alpha, rslora):
        rank = lora_a.shape[0]
        scale = alpha / (rank**0.5 if rslora else rank)
        return weight + scale * (lora_a.T @ lora_b.T).T

    assert check_merged_weight(swapped)  # not a bug: (A^T B^T)^T = B A

    def wrong_order(weight, lora_a, lora_b, alpha, rslora):
        rank = lora_a.shape[0]
        scale = alpha / (rank**0.5 if rslora else rank)
        return weight + scale * lora_a.T @ lora_b.T

    result = check_merged_weight(wrong_order)
    assert result.status == "failed"


def test_labkit_is_refused():
    def uses_labkit(weight, lora_a, lora_b, alpha, rslora):
        from labkit.lora import LoRALinear  # noqa: F401

        return merged(weight, lora_a, lora_b, alpha, rslora)

    assert "labkit" in check_merged_weight(uses_labkit).report


def test_merge_that_changes_the_weight_in_place_is_caught():
    def in_place(weight, lora_a, lora_b, alpha, rslora):
        rank = lora_a.shape[0]
        weight += alpha / (rank**0.5 if rslora else rank) * lora_b @ lora_a
        return weight  # the right value, but the caller's weight is gone

    result = check_merged_weight(in_place)
    assert result.status == "failed"
    assert "weight was changed in place" in result.report

    def add_to_b(weight, lora_a, lora_b, alpha, rslora):
        scale = alpha / (lora_a.shape[0] ** 0.5 if rslora else lora_a.shape[0])
        return weight + lora_b.mul_(scale) @ lora_a  # scales B in place

    assert "lora_B was changed in place" in check_merged_weight(add_to_b).report
