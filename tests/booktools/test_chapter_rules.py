"""Each rule of the checked-chapter standard fires on its defect, and only then."""

import base64

import nbformat as nbf
import numpy as np
import plotly.graph_objects as go

from booktools.chapter_rules import chapter_findings, graded_exercise_count
from booktools.number_rules import significant_figures


def code(src, outputs=(), tags=(), count=1, hidden=False):
    cell = nbf.v4.new_code_cell(src)
    cell.execution_count = count
    cell.outputs = [nbf.from_dict(o) for o in outputs]
    cell.metadata["tags"] = list(tags)
    if hidden:
        cell.metadata["jupyter"] = {"source_hidden": True}
    return cell


def stream(text):
    return {"output_type": "stream", "name": "stdout", "text": text}


def figure(fig):
    return {
        "output_type": "display_data",
        "metadata": {},
        "data": {"application/vnd.plotly.v1+json": fig.to_plotly_json()},
    }


def notebook(*cells):
    nb = nbf.v4.new_notebook()
    nb.cells = list(cells)
    return nbf.from_dict(nb)


def rules(nb):
    return [(f.cell, f.rule) for f in chapter_findings(nb)]


def messages(nb):
    return [f.message for f in chapter_findings(nb)]


# --- numbers in prose ---------------------------------------------------------


def test_significant_figures():
    assert significant_figures("1,114,112", "") == 7
    assert significant_figures("0", ".0990") == 3
    assert significant_figures("150,000", "") == 2
    assert significant_figures("2", ".23") == 3


def test_a_prose_number_must_be_printed_by_the_run():
    printed = code("print(x)", [stream("loss 2.2347 after 1,024 steps\n")])
    ok = nbf.v4.new_markdown_cell("The loss ends at 2.23 after 1024 steps.")
    assert rules(notebook(printed, ok)) == []
    wrong = nbf.v4.new_markdown_cell("The loss ends at 2.24 after 1024 steps.")
    nb = notebook(printed, wrong)
    assert rules(nb) == [(1, "prose-number")]
    assert messages(nb)[0].startswith("2.24 appears in no code or output")


def test_numbers_in_code_percentages_citations_and_short_numbers_pass():
    cells = [
        code("for D in (64, 256, 1024): pass"),
        code("print(share)", [stream("0.455\n")]),
        nbf.v4.new_markdown_cell(
            "Widths 256 and 1024; 45.5% of it; 12 heads, 0.06 each; "
            "U+10FFFF; GPT-2 (Vaswani et al., 2017); https://arxiv.org/abs/2005.14165"
        ),
    ]
    assert rules(notebook(*cells)) == []
    cited = nbf.v4.new_markdown_cell("GPT-2 small has 124,439,808 parameters.")
    assert rules(notebook(cited)) == [(0, "prose-number")]
    cited.metadata["cited"] = ["124,439,808"]
    assert rules(notebook(cited)) == []


# --- exercises ------------------------------------------------------------------

EXERCISE = "### Exercise 1: square\n\nWrite `square(x)`."


def graded(solution_count=2, hidden=True, solution="assert check_square(square)"):
    return notebook(
        nbf.v4.new_markdown_cell(EXERCISE),
        code(
            "def square(x):\n    return None\ncheck_square(square)", tags=["exercise"]
        ),
        code(
            solution,
            tags=["solution", "hide-input"],
            count=solution_count,
            hidden=hidden,
        ),
    )


def test_a_graded_exercise_with_a_folded_executed_solution_passes():
    nb = graded()
    assert rules(nb) == []
    assert graded_exercise_count(nb) == 1


def test_an_unexecuted_unfolded_or_assertless_solution_is_reported():
    assert messages(graded(solution_count=None)) == ["solution cell never executed"]
    assert rules(graded(hidden=False)) == [(2, "exercise")]
    assert messages(graded(solution="check_square(square)")) == [
        "solution cell asserts nothing it claims"
    ]


def test_an_exercise_without_a_solution_and_a_question_without_an_answer():
    nb = notebook(
        nbf.v4.new_markdown_cell(EXERCISE),
        nbf.v4.new_markdown_cell("### Question 2: why?\n\nSay why."),
    )
    assert messages(nb) == [
        "Exercise 1 has no code cell tagged 'solution' after it",
        "Question 2 has no folded answer (<details>...</details>)",
    ]
    answered = nbf.v4.new_markdown_cell(
        "### Question 1: why?\n\n<details><summary>Answer</summary>\n\n"
        "Because.\n\n</details>"
    )
    assert rules(notebook(answered)) == []


def test_prose_code_solutions_and_list_exercises_are_reported():
    nb = notebook(
        nbf.v4.new_markdown_cell(
            "## Exercises\n\n1. Do it.\n\n<details><summary>Solution</summary>"
            "\n\n```python\nx = 1\n```\n\n</details>"
        )
    )
    assert len(rules(nb)) == 2
    assert "written as code in prose" in messages(nb)[0]
    assert "numbered list" in messages(nb)[1]


def test_an_exercise_cell_must_call_a_check():
    nb = graded()
    nb.cells[1].source = "def square(x):\n    return None"
    assert messages(nb) == ["exercise cell calls no check_ function"]


# --- printed floats and asserts ---------------------------------------------------


def test_long_printed_floats_are_reported_once_per_cell():
    nb = notebook(
        code("print(lr)", [stream("min_lr=0.00030000000000000003 and 0.1234567\n")]),
        code("print(ok)", [stream("loss 1.8234, version 2.13.0, 12345.5, 430000.0\n")]),
    )
    assert rules(nb) == [(0, "long-float")]
    assert "0.00030000000000000003" in messages(nb)[0]


def test_asserts_that_cannot_fail_and_printed_comparisons():
    nb = notebook(
        code(
            "assert x == x\nassert f(a) == f(a)\nassert True\n"
            "torch.testing.assert_close(y, y)\nassert torch.equal(a, a)\n"
            "assert ok or 1\nprint('same:', a == b)\n"
            "assert f(a) == g(a)\nassert_close(lib(x), ours(x))\n%time assert 1 < 2"
        )
    )
    found = messages(nb)
    assert len(found) == 7, found
    assert found[0] == "line 1 compares `x` with itself: it cannot fail"
    assert "prints the comparison `a == b`" in found[6]


# --- figures ------------------------------------------------------------------------


def slider(ys, title_only=False):
    from labkit.viz import slider_figure

    def draw(i):
        return [go.Scatter(y=ys[0] if title_only else ys[i])]

    return slider_figure(
        draw,
        list(range(len(ys))),
        label="step",
        title=lambda i: f"step {i}",
        xaxis={"title": {"text": "x"}},
        yaxis={"title": {"text": "y"}},
    )


def test_a_slider_whose_steps_differ_passes():
    assert rules(notebook(code("fig", [figure(slider([[1, 2, 3], [3, 1, 2]]))]))) == []


def test_a_slider_whose_steps_change_only_the_title_is_reported():
    nb = notebook(code("fig", [figure(slider([[1, 2, 3], [3, 1, 2]], True))]))
    assert messages(nb) == ["slider steps '0' and '1' show the same data"]


def test_a_slider_whose_steps_barely_move_is_reported():
    nb = notebook(code("fig", [figure(slider([[0, 50, 100], [0, 50.2, 100]]))]))
    assert messages(nb) == [
        "slider steps '0' and '1' look alike: no number moves by 1% of its range"
    ]


def test_a_small_change_beside_a_wide_axis_still_counts():
    """y moves by 0.1 while x spans 0..100: judged against y's own range."""
    from labkit.viz import slider_figure

    def draw(i):
        return [go.Bar(x=[0, 50, 100], y=[0.5, 0.6 + 0.1 * i, 0.7])]

    fig = slider_figure(
        draw,
        [0, 1],
        label="i",
        xaxis={"title": {"text": "x"}},
        yaxis={"title": {"text": "y"}},
    )
    assert rules(notebook(code("fig", [figure(fig)]))) == []


def test_sliders_stored_as_plotly_typed_arrays_are_decoded():
    fig = slider([[1, 2, 3], [1, 2, 3]])
    spec = fig.to_plotly_json()
    for trace in spec["data"]:
        raw = np.asarray(trace["y"], dtype="f8").tobytes()
        trace["y"] = {"dtype": "f8", "bdata": base64.b64encode(raw).decode()}
    output = {
        "output_type": "display_data",
        "metadata": {},
        "data": {"application/vnd.plotly.v1+json": spec},
    }
    assert messages(notebook(code("fig", [output]))) == [
        "slider steps '0' and '1' show the same data"
    ]


def test_every_axis_needs_a_title():
    fig = go.Figure(go.Bar(x=["a", "b"], y=[1, 2]))
    fig.update_layout(yaxis={"title": {"text": "count"}})
    assert messages(notebook(code("fig", [figure(fig)]))) == ["xaxis has no title"]
    fig.update_layout(xaxis={"title": {"text": "letter"}})
    assert rules(notebook(code("fig", [figure(fig)]))) == []
