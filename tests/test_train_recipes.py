"""labkit.recipes: the small model is trained once, cached, then loaded."""

import dataclasses

import torch

from labkit import recipes


def test_small_model_is_trained_once_then_loaded_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    small = dataclasses.replace(recipes.SMALL_MODEL, n_layers=1, d_model=32)
    monkeypatch.setattr(recipes, "SMALL_MODEL", small)
    quick = dataclasses.replace(
        recipes.SMALL_TRAIN, steps=4, warmup_steps=1, eval_every=4, eval_batches=1,
        batch_size=2, sample_tokens=4,
    )  # fmt: skip
    monkeypatch.setattr(recipes, "SMALL_TRAIN", quick)
    monkeypatch.setattr(recipes, "CORPUS_BYTES", 50_000)
    model, tok = recipes.load_small_model()
    folder = recipes.models_dir() / recipes.recipe_name()
    assert folder.parent == tmp_path / "models"
    assert (folder / "model.safetensors").exists()
    assert model.cfg == small and not model.training
    assert tok.decode(tok.encode("Once upon")) == "Once upon"

    def no_training(*args, **kwargs):
        raise AssertionError("trained again instead of loading the cache")

    monkeypatch.setattr(recipes, "train_small_model", no_training)
    again, _ = recipes.load_small_model()
    torch.testing.assert_close(again.state_dict(), model.state_dict())


def test_recipe_name_follows_the_recipe(monkeypatch):
    name = recipes.recipe_name()
    other = dataclasses.replace(recipes.SMALL_TRAIN, steps=601)
    monkeypatch.setattr(recipes, "SMALL_TRAIN", other)
    assert recipes.recipe_name() != name and name.startswith("small-stories-")


def test_recipe_names_follow_the_thread_count(monkeypatch):
    """The same recipe on another thread count ends with other weights."""
    small, sft = recipes.recipe_name(), recipes.sft_recipe_name()
    monkeypatch.setattr(recipes, "SFT_THREADS", recipes.SFT_THREADS + 1)
    assert recipes.recipe_name() == small and recipes.sft_recipe_name() != sft
    monkeypatch.setattr(recipes, "SMALL_THREADS", recipes.SMALL_THREADS + 1)
    assert recipes.recipe_name() != small


def test_sft_model_is_fine_tuned_once_with_its_history_then_loaded(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    small = dataclasses.replace(recipes.SMALL_MODEL, n_layers=1, d_model=32)
    monkeypatch.setattr(recipes, "SMALL_MODEL", small)
    quick = dict(steps=4, warmup_steps=1, eval_every=2, eval_batches=1, batch_size=2)
    monkeypatch.setattr(
        recipes, "SMALL_TRAIN",
        dataclasses.replace(recipes.SMALL_TRAIN, sample_tokens=4, **quick),
    )  # fmt: skip
    monkeypatch.setattr(recipes, "CORPUS_BYTES", 50_000)
    monkeypatch.setattr(recipes, "SFT_SPLITS", {"train": 12, "val": 6})
    monkeypatch.setattr(
        recipes, "SFT_TRAIN", dataclasses.replace(recipes.SFT_TRAIN, **quick)
    )
    monkeypatch.setattr(recipes, "SFT_PROBES", 2)
    model, tok = recipes.load_sft_model()
    folder = recipes.models_dir() / recipes.sft_recipe_name()
    assert (folder / "model.safetensors").exists() and not model.training
    assert model.cfg.vocab_size == tok.vocab_size == 259
    assert tok.special_tokens["<|end|>"] == 258
    history = recipes.sft_history()
    assert [h["step"] for h in history] == [2, 4]
    assert all(0 <= h["val_exact"] <= 1 and len(h["answers"]) == 2 for h in history)

    def no_training(*args, **kwargs):
        raise AssertionError("trained again instead of loading the cache")

    monkeypatch.setattr(recipes, "train_sft_model", no_training)
    monkeypatch.setattr(recipes, "train_small_model", no_training)
    again, _ = recipes.load_sft_model()
    torch.testing.assert_close(again.state_dict(), model.state_dict())
    base, _ = recipes.load_small_model()  # the base it started from, kept
    assert not torch.equal(base.blocks[0].mlp.up_proj.weight,
                           again.blocks[0].mlp.up_proj.weight)  # fmt: skip


def test_sft_recipe_name_follows_its_base_and_its_data(monkeypatch):
    name = recipes.sft_recipe_name()
    monkeypatch.setattr(recipes, "SFT_SPLITS", {"train": 10, "val": 5})
    assert recipes.sft_recipe_name() != name
    monkeypatch.undo()
    other = dataclasses.replace(recipes.SMALL_TRAIN, steps=601)
    monkeypatch.setattr(recipes, "SMALL_TRAIN", other)
    assert recipes.sft_recipe_name() != name and name.startswith("sft-stories-")


def test_two_callers_at_once_train_once_and_both_get_the_model(tmp_path):
    """The second caller waits on the lock, then finds the model made
    (without the lock it would delete the folder the first one is writing)."""
    import threading
    import time

    folder = tmp_path / "models" / "small-stories-test"
    calls = []

    def make(f):
        calls.append(f)
        time.sleep(0.3)  # long enough for the other caller to arrive
        assert f.is_dir() and not (f / "model.safetensors").exists()
        (f / "model.safetensors").write_bytes(b"weights")

    threads = [
        threading.Thread(target=recipes._make_once, args=(folder, make, 1))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join()
    assert calls == [folder]
    assert (folder / "model.safetensors").read_bytes() == b"weights"


def test_a_stopped_run_is_made_afresh(tmp_path):
    folder = tmp_path / "models" / "small-stories-test"
    folder.mkdir(parents=True)
    (folder / "half-written").write_text("left by a killed run")

    def make(f):
        assert list(f.iterdir()) == []  # the stopped run's files are gone
        (f / "model.safetensors").write_bytes(b"weights")

    recipes._make_once(folder, make, 1)
    recipes._make_once(folder, lambda f: 1 / 0, 1)  # made: not called again
    assert (folder / "model.safetensors").exists()


def test_a_recipe_trains_on_its_own_thread_count_and_restores_the_callers(tmp_path):
    """Weights depend on the thread count, so the recipe fixes it."""
    seen = []
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        folder = tmp_path / "models" / "small-stories-threads"
        recipes._make_once(folder, lambda f: seen.append(torch.get_num_threads()), 2)
        assert seen == [2]
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
